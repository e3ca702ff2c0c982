"""The systems compared in a benchmark, behind one interface.

    system = load_system("three-stage", checkpoint="CKPT", random_pool=[...])
    accompaniment = system.generate(vocal, sample_rate_hz, seed=0, excerpt="acc.wav")
    # float32 [n], the vocal's length and rate

| name | what it returns |
| --- | --- |
| three-stage | semantic -> coarse -> fine, EnCodec-decoded from 8 codebooks (6 kbps) |
| two-stage | semantic -> coarse, decoded from the 4 coarse codebooks (3 kbps) |
| random | the real accompaniment of another excerpt of the pool (drawn with the seed) |
| ground-truth | the excerpt's accompaniment through EnCodec at 6 kbps (encode, decode) |
| ground-truth-raw | the excerpt's accompaniment as is |

`excerpt` is the path of the excerpt's real accompaniment (ground-truth systems; `random` draws
from the pool's other files). The cascade works at 24 kHz internally; other rates are resampled
on the way in and out. Vocals longer than the window are generated in overlapping windows: each
window's target starts with the previous window's tokens over the overlap (forced as a prompt),
so the token streams continue across boundaries and are decoded in one pass: there is no seam
to crossfade (see `generate_windowed`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from hafm_core import constants
from hafm_core.errors import ConfigError
from hafm_core.model import HafmLM
from hafm_core.sampling import SamplingParams, generate

RATE_24K = constants.ACOUSTIC_SAMPLE_RATE_HZ
DTYPES = {name: getattr(torch, name) for name in constants.MODEL_DTYPES}
UNIT_SAMPLES_24K = RATE_24K // 25  # 40 ms: 2 semantic frames, 3 acoustic frames


def _fit_length(samples: np.ndarray, n: int) -> np.ndarray:
    """Cut or zero-pad float32 [m] to [n]."""
    out = np.zeros(n, dtype=np.float32)
    out[: min(n, len(samples))] = samples[:n]
    return out


def _read_at(path: str | Path, sample_rate_hz: int) -> np.ndarray:
    from hafm_core.audio import read_audio

    return read_audio(path, sample_rate_hz=sample_rate_hz, mono=True)[0]


def window_seed(seed: int, window: int) -> int:
    """Independent seed of window `window` of an excerpt seeded `seed`."""
    return int(np.random.SeedSequence([seed, window]).generate_state(1)[0])


def generate_windowed(model: HafmLM, cond_streams: torch.Tensor, seeds: list[int], params: SamplingParams,
                      window_frames: int, overlap_frames: int) -> torch.Tensor:
    """`generate` over conditioning of any length, in overlapping windows.

    cond_streams: local ids int64 [B, n_cond, T_c]; window_frames, overlap_frames: in conditioning
    frames (overlap < window). Window w covers conditioning frames [start, start + window) and
    is forced to begin with the target tokens already generated for its first `overlap` frames.
    Returns local ids int64 [B, K, target_frames(T_c)].
    """
    layout = model.layout
    total = cond_streams.shape[2]
    if total <= window_frames:
        return generate(model, cond_streams, layout.target_frames(total), seeds, params)
    if not 0 <= overlap_frames < window_frames:
        raise ConfigError(f"overlap ({overlap_frames} frames) must be shorter than the window ({window_frames})")
    out = torch.zeros(cond_streams.shape[0], layout.n_target, layout.target_frames(total), dtype=torch.long)
    start, window = 0, 0
    while True:
        end = min(start + window_frames, total)
        t_start, t_end = layout.target_frames(start), layout.target_frames(end)
        prompt = out[:, :, t_start:layout.target_frames(start + overlap_frames)] if window else None
        out[:, :, t_start:t_end] = generate(model, cond_streams[:, :, start:end], t_end - t_start,
                                            [window_seed(s, window) for s in seeds], params, prompt=prompt).cpu()
        if end == total:
            return out
        start, window = end - overlap_frames, window + 1


@dataclass
class CascadeSystem:
    """three-stage (fine stage present) or two-stage (no fine model) generation."""

    name: str
    models: dict[str, HafmLM]
    semantic_tokenizer: object  # hafm_core.tokens.semantic.SemanticTokenizer
    acoustic_tokenizer: object  # hafm_core.tokens.acoustic.AcousticTokenizer
    params: SamplingParams = field(default_factory=SamplingParams)
    window_s: float = constants.EXCERPT_DURATION_S
    overlap_s: float = 2.0
    dtype: str = "float32"  # of the three models' weights and activations (see `DTYPES`)

    def generate(self, vocal: np.ndarray, sample_rate_hz: int, seed: int, excerpt=None) -> np.ndarray:
        return self.generate_batch(np.asarray(vocal, dtype=np.float32)[None], sample_rate_hz, [seed])[0]

    def generate_codes(self, vocals_24k: np.ndarray, seeds: list[int]) -> torch.Tensor:
        """vocals float32 [B, n] at 24 kHz, n a multiple of 960 -> codes int64 [B, 4 or 8, T_a]."""
        from hafm_core.audio import resample

        vocal_16k = np.stack([resample(v, RATE_24K, constants.SEMANTIC_SAMPLE_RATE_HZ) for v in vocals_24k])
        vocal_ids = torch.as_tensor(self.semantic_tokenizer.encode(vocal_16k, seed=seeds)).cpu()  # (B, T_s)
        window = int(self.window_s * constants.SEMANTIC_FRAME_RATE_HZ)
        overlap = int(self.overlap_s * constants.SEMANTIC_FRAME_RATE_HZ)
        accompaniment_ids = generate_windowed(self.models["semantic"], vocal_ids[:, None], seeds,
                                              self.params, window, overlap)[:, 0]  # (B, T_s)
        coarse = generate_windowed(self.models["coarse"], torch.stack([vocal_ids, accompaniment_ids], 1),
                                   seeds, self.params, window, overlap)  # (B, 4, T_a)
        if "fine" not in self.models:
            return coarse
        acoustic_window = int(self.window_s * constants.ACOUSTIC_FRAME_RATE_HZ)
        acoustic_overlap = int(self.overlap_s * constants.ACOUSTIC_FRAME_RATE_HZ)
        fine = generate_windowed(self.models["fine"], coarse, seeds, self.params, acoustic_window,
                                 acoustic_overlap)  # (B, 4, T_a)
        return torch.cat([coarse, fine], dim=1)

    def provenance(self) -> dict:
        """What, besides the checkpoint and the sampling, decides the output: windowing and the
        tokenizers (HuBERT folder, layer and k-means; EnCodec folder)."""
        semantic = self.semantic_tokenizer
        return {"window_s": self.window_s, "overlap_s": self.overlap_s, "dtype": self.dtype,
                "semantic_tokenizer_hash": semantic.weights_hash, "hubert_sha256": semantic.hubert_hash,
                "hubert_layer": semantic.layer, "kmeans_sha256": semantic.kmeans_hash,
                "acoustic_tokenizer_hash": self.acoustic_tokenizer.weights_hash}

    def generate_batch(self, vocals: np.ndarray, sample_rate_hz: int, seeds: list[int]) -> np.ndarray:
        """vocals float32 [B, n] (equal lengths) -> accompaniments float32 [B, n] at the same rate."""
        from hafm_core.audio import resample

        n = vocals.shape[1]
        vocals_24k = np.stack([resample(v, sample_rate_hz, RATE_24K) for v in vocals])
        units = -(-vocals_24k.shape[1] // UNIT_SAMPLES_24K)  # whole 40 ms units, zero-padded
        padded = np.zeros((len(vocals), units * UNIT_SAMPLES_24K), dtype=np.float32)
        padded[:, : vocals_24k.shape[1]] = vocals_24k
        codes = self.generate_codes(padded, seeds).numpy()  # (B, K, T_a)
        # Decoded one excerpt at a time: EnCodec's convolutions round differently with the batch
        # size (3.6e-7 apart, measured), and an excerpt's audio must not depend on its batch.
        audio = [np.asarray(self.acoustic_tokenizer.decode(codes[b:b + 1]))[0] for b in range(len(codes))]
        return np.stack([_fit_length(resample(a, RATE_24K, sample_rate_hz), n) for a in audio])


@dataclass
class RandomSystem:
    """Another track's real accompaniment, drawn from the pool with the seed, cut to the vocal's length.

    Pool files in the excerpt's own folder (other excerpts of the same track) are used only
    when the pool has nothing else.
    """

    name: str
    pool: list[str]

    def generate(self, vocal: np.ndarray, sample_rate_hz: int, seed: int, excerpt=None) -> np.ndarray:
        others = sorted(p for p in map(str, self.pool) if excerpt is None or Path(p) != Path(excerpt))
        # Prefer another track: excerpt files of one track share a folder (hafm data prepare's layout).
        other_tracks = [p for p in others if excerpt is None or Path(p).parent != Path(excerpt).parent]
        others = other_tracks or others
        if not others:
            raise ConfigError("the random system needs a pool with at least one other excerpt's accompaniment")
        choice = others[np.random.default_rng(seed).integers(len(others))]
        return _fit_length(_read_at(choice, sample_rate_hz), len(vocal))


@dataclass
class GroundTruthSystem:
    """The excerpt's own accompaniment, raw or through an EnCodec round trip."""

    name: str
    acoustic_tokenizer: object | None = None  # None: raw
    n_codebooks: int = constants.N_CODEBOOKS

    def provenance(self) -> dict:
        if self.acoustic_tokenizer is None:
            return {}
        return {"acoustic_tokenizer_hash": self.acoustic_tokenizer.weights_hash, "n_codebooks": self.n_codebooks}

    def generate(self, vocal: np.ndarray, sample_rate_hz: int, seed: int, excerpt=None) -> np.ndarray:
        if excerpt is None:
            raise ConfigError(f"the {self.name} system needs the excerpt's accompaniment file")
        if self.acoustic_tokenizer is None:
            return _fit_length(_read_at(excerpt, sample_rate_hz), len(vocal))
        from hafm_core.audio import resample

        accompaniment = _read_at(excerpt, RATE_24K)
        codes = np.asarray(self.acoustic_tokenizer.encode(accompaniment[None]))[:, : self.n_codebooks]
        decoded = np.asarray(self.acoustic_tokenizer.decode(codes))[0]
        return _fit_length(resample(decoded[: len(accompaniment)], RATE_24K, sample_rate_hz), len(vocal))


def load_tokenizers(weights_dir: str | Path | None = None, device: str = "cpu"):
    """(SemanticTokenizer, AcousticTokenizer) from a weights folder (default HAFM_WEIGHTS_DIR)."""
    from hafm_core.tokens.acoustic import AcousticTokenizer
    from hafm_core.tokens.semantic import SemanticTokenizer
    from hafm_core.weights import weights_dir as default_weights_dir
    from hafm_core.weights import weights_path

    root = Path(weights_dir) if weights_dir else default_weights_dir()
    semantic = SemanticTokenizer.from_pretrained(weights_path("hubert", root), weights_path("kmeans", root),
                                                 device=device)
    acoustic = AcousticTokenizer.from_pretrained(weights_path("encodec", root), device=device)
    return semantic, acoustic


def load_system(name: str, checkpoint: str | Path | None = None, random_pool: list[str] | None = None,
                weights_dir: str | Path | None = None, device: str = "cpu",
                params: SamplingParams | None = None, window_s: float = constants.EXCERPT_DURATION_S,
                overlap_s: float = 2.0, dtype: str = "float32"):
    """Build system `name` (one of `constants.SYSTEMS`); loads only what that system needs.

    dtype: the cascade's weights ("float32", "bfloat16" or "float16"; see the README's speed
    table for the token agreement of each with float32).
    """
    from hafm_core.checkpoint import load_cascade

    if name == "ground-truth-raw":
        return GroundTruthSystem(name)
    if name == "random":
        return RandomSystem(name, list(random_pool or []))
    if name not in constants.SYSTEMS:
        raise ConfigError(f"unknown system {name!r}; expected one of {', '.join(constants.SYSTEMS)}")
    semantic, acoustic = load_tokenizers(weights_dir, device)
    if name == "ground-truth":
        return GroundTruthSystem(name, acoustic)
    if checkpoint is None:
        raise ConfigError(f"the {name} system needs --checkpoint (a folder with ar_semantic, ar_coarse"
                          + (", ar_fine)" if name == "three-stage" else ")"))
    stages = ("semantic", "coarse", "fine") if name == "three-stage" else ("semantic", "coarse")
    if dtype not in DTYPES:
        raise ConfigError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    models = {stage: model.to(DTYPES[dtype]) for stage, model in load_cascade(checkpoint, stages, device=device).items()}
    _check_vocabularies(models, semantic, acoustic)
    return CascadeSystem(name, models, semantic, acoustic, params or SamplingParams(), window_s, overlap_s, dtype)


def _check_vocabularies(models: dict[str, HafmLM], semantic, acoustic) -> None:
    from hafm_core.errors import CheckpointError

    vocab = models["semantic"].config.semantic_vocab
    if semantic.n_clusters != vocab:
        raise CheckpointError(f"stage 'semantic': field 'config.semantic_vocab' is {vocab} but the k-means "
                              f"has {semantic.n_clusters} clusters: the checkpoint was trained on other tokens")
    codebook = int(acoustic.model.config.codebook_size)
    if models["coarse"].config.codebook_size != codebook:
        raise CheckpointError(f"stage 'coarse': field 'config.codebook_size' is "
                              f"{models['coarse'].config.codebook_size} but EnCodec has {codebook} entries")
