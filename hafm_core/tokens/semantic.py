"""Semantic tokens: HuBERT hidden layer (default 9) of 16 kHz audio -> k-means ids at 50 Hz.

Frame count rule: n samples at 16 kHz give `T_s = n // 320` frames. The audio is cut to
`T_s * 320` samples and zero-padded by 40 samples on each side, so HuBERT's convolutional front
end (receptive field 400, hop 320) returns exactly T_s frames, frame t centred on the middle of
the 20 ms span [320 t, 320 (t + 1)). (Without the padding 2 s would give 99 frames, not 100.)

Vocal noise: the SingSong trick. `features` and `encode` add Gaussian noise of standard
deviation `noise_sigma` (default 0.01, `constants.VOCAL_NOISE_SIGMA`) before HuBERT, so the
model cannot key on source-separation artefacts. Row i of a batch gets
`np.random.default_rng(seed_i).standard_normal(n) * sigma`, with `seed` an int (every row) or one
seed per row: the noise of an excerpt does not depend on the batch it is in. Pass
`noise_sigma=0` for the accompaniment.

The waveform is fed raw (no per-utterance normalisation), as HuBERT-base was trained.
Inputs may be numpy arrays or torch tensors; outputs are of the same kind.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from hafm_core import constants
from hafm_core.config import torch_device
from hafm_core.data.files import atomic_output, write_json_atomic
from hafm_core.errors import ConfigError, DatasetError
from hafm_core.provenance import sha256_bytes, sha256_file, sha256_tree
from hafm_core.tokens.loading import (
    HUBERT_SOURCE,
    load_npy,
    load_pretrained,
    require_file,
    require_model_folder,
)
from hafm_core.tokens.tensors import as_audio_batch, as_input_kind

log = logging.getLogger(__name__)

EDGE_PAD_SAMPLES = 40  # (400 - 320) / 2: centres each HuBERT frame on its 20 ms span
DEFAULT_CHUNK_S = 30.0


class SemanticTokenizer:
    """HuBERT features at a chosen layer, and their nearest k-means centroid."""

    def __init__(self, model, layer: int, device: str, hubert_hash: str,
                 centroids: np.ndarray | None = None, kmeans_hash: str | None = None,
                 chunk_s: float = DEFAULT_CHUNK_S):
        n_layers = int(model.config.num_hidden_layers)
        if not 0 <= layer <= n_layers:
            raise ConfigError(f"HuBERT layer {layer} is not available: the model has layers 0..{n_layers}")
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.layer = layer
        self.hubert_hash = hubert_hash
        self.kmeans_hash = kmeans_hash
        self.sample_rate_hz = constants.SEMANTIC_SAMPLE_RATE_HZ
        self.hop_samples = constants.SEMANTIC_HOP_SAMPLES
        self.feature_dim = int(model.config.hidden_size)
        self.chunk_frames = max(1, int(chunk_s * constants.SEMANTIC_FRAME_RATE_HZ))
        self.centroids = None
        if centroids is not None:
            if centroids.ndim != 2 or centroids.shape[1] != self.feature_dim:
                raise ConfigError(
                    f"k-means centroids have shape {centroids.shape}, expected [K, {self.feature_dim}] "
                    "for this HuBERT: refit them with `hafm tokenize --fit-kmeans`"
                )
            self.centroids = torch.from_numpy(centroids.astype(np.float32)).to(self.device)

    @classmethod
    def load_hubert(cls, hubert_path: str | Path, layer: int = constants.HUBERT_LAYER,
                    device: str | None = None) -> SemanticTokenizer:
        """HuBERT only (no k-means): enough for `features`, e.g. to fit the k-means."""
        from transformers import HubertModel

        folder = require_model_folder(hubert_path, HUBERT_SOURCE)
        model = load_pretrained(HubertModel, folder, HUBERT_SOURCE)
        return cls(model, layer, device or torch_device(), sha256_tree(folder))

    @classmethod
    def from_pretrained(cls, hubert_path: str | Path, kmeans_path: str | Path,
                        layer: int = constants.HUBERT_LAYER, device: str | None = None) -> SemanticTokenizer:
        """Load a local HuBERT folder and `kmeans.npy` centroids float32 [K, D] (no network)."""
        from transformers import HubertModel

        folder = require_model_folder(hubert_path, HUBERT_SOURCE)
        kmeans_path = require_file(
            kmeans_path, f"k-means centroids (float32 [{constants.KMEANS_CLUSTERS}, D]) fitted by "
            "`hafm tokenize MANIFEST --fit-kmeans`")
        centroids = load_npy(kmeans_path, "k-means centroids float32 [K, D]; refit them with "
                             "`hafm tokenize MANIFEST --fit-kmeans --overwrite`")
        model = load_pretrained(HubertModel, folder, HUBERT_SOURCE)  # damaged files are named first
        hubert_hash = sha256_tree(folder)
        kmeans_hash = sha256_file(kmeans_path)
        check_kmeans_sidecar(kmeans_path, kmeans_hash, layer, hubert_hash)
        return cls(model, layer, device or torch_device(), hubert_hash, centroids, kmeans_hash)

    @property
    def weights_hash(self) -> str:
        """Hash of everything that determines the ids: HuBERT folder, layer and centroids."""
        return sha256_bytes(f"hubert={self.hubert_hash};layer={self.layer};kmeans={self.kmeans_hash}".encode())

    @property
    def n_clusters(self) -> int:
        return 0 if self.centroids is None else int(self.centroids.shape[0])

    def num_frames(self, n_samples: int) -> int:
        """T_s for n samples at 16 kHz: n // 320."""
        return n_samples // self.hop_samples

    def _noisy(self, batch: torch.Tensor, noise_sigma: float, seed: int | Sequence[int]) -> torch.Tensor:
        if noise_sigma <= 0:
            return batch
        seeds = [seed] * batch.shape[0] if isinstance(seed, int | np.integer) else list(seed)
        if len(seeds) != batch.shape[0]:
            raise ValueError(f"got {len(seeds)} seeds for a batch of {batch.shape[0]}")
        noise = np.stack([np.random.default_rng(int(s)).standard_normal(batch.shape[-1], dtype=np.float32)
                          for s in seeds])
        return batch + noise_sigma * torch.from_numpy(noise).to(batch.device)

    @torch.inference_mode()
    def features(self, audio, noise_sigma: float = constants.VOCAL_NOISE_SIGMA,
                 seed: int | Sequence[int] = 0):
        """audio: float32 [B, n] at 16 kHz -> features float32 [B, T_s, D], T_s = n // 320."""
        batch, kind = as_audio_batch(audio, self.device)
        n_frames = self.num_frames(batch.shape[-1])
        batch = self._noisy(batch[:, : n_frames * self.hop_samples], noise_sigma, seed)
        padded = torch.nn.functional.pad(batch, (EDGE_PAD_SAMPLES, EDGE_PAD_SAMPLES))
        parts = []
        for first in range(0, n_frames, self.chunk_frames):
            frames = min(self.chunk_frames, n_frames - first)
            start = first * self.hop_samples
            piece = padded[:, start:start + frames * self.hop_samples + 2 * EDGE_PAD_SAMPLES]
            hidden = self.model(piece, output_hidden_states=True).hidden_states[self.layer]
            parts.append(hidden)  # (B, frames, D)
        if not parts:
            result = torch.zeros(batch.shape[0], 0, self.feature_dim, device=self.device)
        else:
            result = torch.cat(parts, dim=1).to(torch.float32)
        if result.shape[1] != n_frames:
            raise RuntimeError(f"HuBERT returned {result.shape[1]} frames, expected {n_frames}")
        return as_input_kind(result, kind)

    @torch.inference_mode()
    def quantize(self, features):
        """features float32 [B, T, D] -> ids int64 [B, T]: index of the nearest centroid (Euclidean)."""
        if self.centroids is None:
            raise ConfigError("this SemanticTokenizer has no k-means centroids: load it with from_pretrained")
        is_numpy = isinstance(features, np.ndarray)
        x = torch.as_tensor(features, dtype=torch.float32).to(self.device)
        c = self.centroids
        distances = (x.pow(2).sum(-1, keepdim=True) - 2 * x @ c.T + c.pow(2).sum(-1))  # (B, T, K)
        ids = distances.argmin(dim=-1).to(torch.int64)
        return ids.cpu().numpy() if is_numpy else ids

    def encode(self, audio, noise_sigma: float = constants.VOCAL_NOISE_SIGMA,
               seed: int | Sequence[int] = 0):
        """audio: float32 [B, n] at 16 kHz -> ids int64 [B, T_s] at 50 Hz, T_s = n // 320."""
        return self.quantize(self.features(audio, noise_sigma=noise_sigma, seed=seed))


def fit_kmeans(features_iter: Iterable, n_clusters: int = constants.KMEANS_CLUSTERS, seed: int = 0,
               batch_size: int = 4096, max_rows: int = 250_000, max_iter: int = 100,
               n_init: int = 3) -> np.ndarray:
    """Feature matrices float32 [T, D] (or [B, T, D]) -> k-means centroids float32 [K, D].

    The recipe of HuBERT's own k-means: a uniform sample of at most `max_rows` frames (a
    reservoir with seeded random keys, so memory stays bounded for a whole training split and
    the sample does not depend on how the rows were chunked), then scikit-learn's
    `MiniBatchKMeans.fit` with k-means++ seeding, `n_init` restarts and up to `max_iter` passes
    of shuffled mini-batches. A single streamed pass in track order (what this did before) lets
    the last tracks pull the centroids: on per-track clustered features its inertia was almost
    twice that of a full k-means. Fewer rows than clusters is a `DatasetError`.
    """
    from sklearn.cluster import MiniBatchKMeans

    rows = _reservoir_sample(features_iter, max_rows, seed)
    if len(rows) < n_clusters:
        raise DatasetError(
            f"k-means with {n_clusters} clusters needs at least {n_clusters} feature frames, got {len(rows)} "
            f"({len(rows) / constants.SEMANTIC_FRAME_RATE_HZ:.1f} s of audio): add training audio or lower "
            "the cluster count"
        )
    kmeans = MiniBatchKMeans(n_clusters=n_clusters, random_state=seed, init="k-means++", n_init=n_init,
                             max_iter=max_iter, batch_size=min(len(rows), max(batch_size, 3 * n_clusters)),
                             max_no_improvement=20, reassignment_ratio=0.0)
    kmeans.fit(rows)
    return kmeans.cluster_centers_.astype(np.float32)


def _reservoir_sample(features_iter: Iterable, max_rows: int, seed: int) -> np.ndarray:
    """A uniform sample without replacement of at most `max_rows` rows of all chunks, float32 [N, D]:
    each row gets a seeded uniform key and the `max_rows` smallest keys are kept."""
    rng = np.random.default_rng(seed)
    kept_rows: list[np.ndarray] = []
    kept_keys: list[np.ndarray] = []
    held = 0
    for features in features_iter:
        rows = np.asarray(features, dtype=np.float32).reshape(-1, np.shape(features)[-1])
        kept_rows.append(rows)
        kept_keys.append(rng.random(len(rows)))
        held += len(rows)
        if held > 2 * max_rows:
            kept_rows, kept_keys, held = _smallest_keys(kept_rows, kept_keys, max_rows)
    if not kept_rows:
        return np.zeros((0, 0), np.float32)
    rows, _, _ = _smallest_keys(kept_rows, kept_keys, max_rows)
    return rows[0]


def _smallest_keys(rows: list[np.ndarray], keys: list[np.ndarray], limit: int):
    stacked_rows, stacked_keys = np.concatenate(rows), np.concatenate(keys)
    if len(stacked_keys) > limit:
        keep = np.sort(np.argpartition(stacked_keys, limit - 1)[:limit])
        stacked_rows, stacked_keys = stacked_rows[keep], stacked_keys[keep]
    return [stacked_rows], [stacked_keys], len(stacked_keys)


def check_kmeans_sidecar(kmeans_path: Path, kmeans_hash: str, layer: int, hubert_hash: str) -> None:
    """`ConfigError` when `kmeans.json` (written by `save_kmeans`) says the centroids were fitted
    on another HuBERT layer or other HuBERT weights, or belongs to another `kmeans.npy`.

    Ids from mismatched centroids are well-formed and meaningless: without this check tokens
    fitted on layer 6 would be generated from layer 9 silently. Centroids without a sidecar
    (copied from elsewhere) are accepted with a warning.
    """
    sidecar = Path(kmeans_path).with_suffix(".json")
    if not sidecar.is_file():
        log.warning(
            "%s has no %s: its HuBERT layer and weights cannot be checked", kmeans_path, sidecar.name)
        return
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"{sidecar} is not valid JSON ({error}); refit with `hafm tokenize --fit-kmeans`") from error
    if meta.get("sha256") not in (None, kmeans_hash):
        raise ConfigError(f"{kmeans_path} does not match {sidecar.name} (sha256 {kmeans_hash[:12]} vs "
                          f"{str(meta['sha256'])[:12]}): the centroids were replaced; refit with "
                          "`hafm tokenize --fit-kmeans` or restore the matching pair")
    if meta.get("layer") is not None and int(meta["layer"]) != layer:
        raise ConfigError(f"{kmeans_path} was fitted on HuBERT layer {meta['layer']} but layer {layer} was "
                          f"asked for: pass --layer {meta['layer']} or refit with `hafm tokenize --fit-kmeans`")
    if meta.get("hubert_sha256") not in (None, hubert_hash):
        raise ConfigError(f"{kmeans_path} was fitted on other HuBERT weights (sha256 "
                          f"{str(meta['hubert_sha256'])[:12]}, this folder {hubert_hash[:12]}): refit with "
                          "`hafm tokenize --fit-kmeans`")


def save_kmeans(centroids: np.ndarray, path: str | Path, **metadata) -> str:
    """Write centroids float32 [K, D] to `path` (.npy) atomically, and `path`.json with their hash.

    Returns the sha256 of the .npy file.
    """
    path = Path(path)
    with atomic_output(path) as tmp:
        np.save(tmp, np.asarray(centroids, dtype=np.float32))
    digest = sha256_file(path)
    sidecar = {"sha256": digest, "n_clusters": int(centroids.shape[0]), "dim": int(centroids.shape[1]),
               **metadata}
    write_json_atomic(path.with_suffix(".json"), sidecar)
    return digest
