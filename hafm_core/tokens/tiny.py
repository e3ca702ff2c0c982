"""Tiny random-init, seeded stand-ins for the HuBERT and EnCodec weights folders.

Tests and the demo cannot download `facebook/hubert-base-ls960` or `facebook/encodec_24khz`.
`write_tiny_weights` writes Hugging Face folders with the same *interfaces* (sample rates,
hops, frame rates, number and size of codebooks, 6 kbps bandwidth) and tiny widths, so every
shape downstream is the real one while a forward pass costs milliseconds:

- `hubert-base-ls960/`: `HubertModel` at 16 kHz, the real conv strides (hop 320 -> 50 Hz,
  receptive field 400 samples), 10 transformer layers of width 32 (layer 9 selectable).
- `encodec_24khz/`: `EncodecModel` at 24 kHz, the real up-sampling ratios (hop 320 -> 75 Hz),
  bandwidths 1.5/3/6 kbps -> 8 codebooks of 1024 entries at 6 kbps, width 32.

Random-init EnCodec would not behave like a codec: its codebooks are all zeros in transformers
(every code would be 0), its encoder frames are nearly constant and its decoder output is the
biases' pattern whatever the codes. So, fitted to a seeded synthetic track: the encoder's
frames are standardised per channel, each residual codebook gets seeded Gaussian entries at
the scale of its residual, and the decoder gets unit gains and no biases. Codes then follow
the audio, and the decoded audio follows the codes and the number of codebooks (3 vs 6 kbps),
as with the real model (tested).

The same seed writes byte-identical folders (torch's CPU generator is deterministic and
safetensors files carry no timestamps).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np

from hafm_core import constants

log = logging.getLogger(__name__)

HUBERT_FOLDER = "hubert-base-ls960"
ENCODEC_FOLDER = "encodec_24khz"
KMEANS_FILE = "kmeans.npy"
TINY_HIDDEN = 32
TINY_HUBERT_LAYERS = 10


def tiny_hubert_config():
    from transformers import HubertConfig

    return HubertConfig(
        hidden_size=TINY_HIDDEN,
        num_hidden_layers=TINY_HUBERT_LAYERS,
        num_attention_heads=2,
        intermediate_size=2 * TINY_HIDDEN,
        conv_dim=(TINY_HIDDEN,) * 7,  # real strides/kernels kept: hop 320, receptive field 400
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        feat_extract_norm="group",
        do_stable_layer_norm=False,
        apply_spec_augment=False,
        layerdrop=0.0,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
    )


def tiny_encodec_config():
    from transformers import EncodecConfig

    return EncodecConfig(
        sampling_rate=constants.ACOUSTIC_SAMPLE_RATE_HZ,
        target_bandwidths=(1.5, 3.0, constants.ENCODEC_BANDWIDTH_KBPS),  # 6 kbps -> 8 codebooks
        upsampling_ratios=(8, 5, 4, 2),  # hop 320 -> 75 Hz
        hidden_size=TINY_HIDDEN,
        num_filters=4,
        num_lstm_layers=1,
        codebook_size=constants.CODEBOOK_SIZE,
        normalize=False,
        chunk_length_s=None,
        use_causal_conv=True,
    )


def _save_atomically(model, target: Path) -> Path:
    """save_pretrained into a temp folder beside `target`, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(staging)
        staging.chmod(0o755)
        for file in staging.iterdir():
            file.chmod(0o644)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target


def _weight_normed(module) -> list:
    """The weight-normalised convolutions under `module`, in forward order."""
    return [m for m in module.modules() if hasattr(m, "parametrizations") and hasattr(m.parametrizations, "weight")]


def _reference_audio(seed: int):
    """float32 [1, 1, n]: a seeded 4 s synthetic mixture at 24 kHz, what the weights are fitted to."""
    import torch

    from hafm_core.synth import synthesize_multitrack

    track = synthesize_multitrack(seed, duration_s=4.0, sample_rate_hz=constants.ACOUSTIC_SAMPLE_RATE_HZ)
    return torch.from_numpy(track.mixture.astype(np.float32))[None, None]


def _normalize_encoder(model, audio) -> None:
    """Fold a per-channel standardisation into the encoder's last convolution.

    Random-init encoder frames are almost constant per channel (the biases dominate: the
    time-varying part is ~2% of the level), so codes would barely follow the audio. After
    this, each channel of the reference audio's frames has mean 0 and std 1.
    """
    import torch

    last = _weight_normed(model.encoder)[-1]
    with torch.no_grad():
        frames = model.encoder(audio)[0]  # (D, T)
        mean, std = frames.mean(dim=1), frames.std(dim=1).clamp_min(1e-6)
        last.parametrizations.weight.original0.div_(std[:, None, None])  # gain per output channel
        last.bias.copy_((last.bias - mean) / std)


def _seed_encodec_codebooks(model, audio, seed: int) -> None:
    """Fill each residual codebook with seeded Gaussian entries at the scale of its residual.

    Stage k's entries have the std of what stages < k left over on the reference audio, as a
    residual quantizer's codebooks do: every stage, fine ones included, moves the decoded
    frames by a comparable amount, and nearest-code assignment spreads over many entries.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        residual = model.encoder(audio)  # (1, D, T)
        for layer in model.quantizer.layers:
            codebook = layer.codebook
            embed = residual.std() * torch.randn(codebook.embed.shape, generator=generator)  # (1024, D)
            codebook.embed.copy_(embed)
            codebook.embed_avg.copy_(embed)
            residual = residual - layer.decode(layer.encode(residual))


def _scale_decoder(model, audio, level: float = 0.1) -> None:
    """Unit weight-norm gains and zero biases in the decoder, then output std `level` on the
    reference audio's codes.

    The default init (gains ~0.58, biases) shrinks the signal at every layer until the output
    is the biases' pattern whatever the codes (random vs real codes differed by 5e-5 at std
    0.034); unit gains keep the codes' variation alive to the output.
    """
    import torch

    layers = _weight_normed(model.decoder)
    with torch.no_grad():
        for layer in layers:
            layer.parametrizations.weight.original0.fill_(1.0)
            if layer.bias is not None:
                layer.bias.zero_()
        codes = model.encode(audio, bandwidth=constants.ENCODEC_BANDWIDTH_KBPS).audio_codes
        decoded = model.decode(codes, [None]).audio_values
        layers[-1].parametrizations.weight.original0.mul_(level / decoded.std())


def write_tiny_hubert(out_dir: Path, seed: int = 0) -> Path:
    import torch
    from transformers import HubertModel

    torch.manual_seed(seed)
    model = HubertModel(tiny_hubert_config()).eval()
    return _save_atomically(model, Path(out_dir) / HUBERT_FOLDER)


def write_tiny_encodec(out_dir: Path, seed: int = 0) -> Path:
    import torch
    from transformers import EncodecModel

    torch.manual_seed(seed)
    model = EncodecModel(tiny_encodec_config()).eval()
    audio = _reference_audio(seed)
    _normalize_encoder(model, audio)
    _seed_encodec_codebooks(model, audio, seed)
    _scale_decoder(model, audio)
    return _save_atomically(model, Path(out_dir) / ENCODEC_FOLDER)


def write_tiny_kmeans(out_dir: Path, seed: int = 0, n_clusters: int = constants.KMEANS_CLUSTERS,
                      n_tracks: int = 4, duration_s: float = 12.0) -> Path:
    """Fit k-means on the tiny HuBERT's layer-9 features of seeded synthetic vocals.

    Needs `out_dir/hubert-base-ls960` (written by `write_tiny_hubert`). 4 tracks x 12 s give
    2 400 frames, enough for 500 clusters; it takes a few seconds on one CPU core.
    """
    from hafm_core.synth import synthesize_multitrack
    from hafm_core.tokens.semantic import SemanticTokenizer, fit_kmeans, save_kmeans

    hubert = SemanticTokenizer.load_hubert(Path(out_dir) / HUBERT_FOLDER, device="cpu")

    def features():
        for index in range(n_tracks):
            track = synthesize_multitrack(seed * 1000 + index, duration_s=duration_s,
                                          sample_rate_hz=constants.SEMANTIC_SAMPLE_RATE_HZ)
            vocal = track.stems["vocals"][None].astype(np.float32)
            yield hubert.features(vocal, noise_sigma=constants.VOCAL_NOISE_SIGMA, seed=index)[0]

    centroids = fit_kmeans(features(), n_clusters=n_clusters, seed=seed)
    path = Path(out_dir) / KMEANS_FILE
    save_kmeans(centroids, path, layer=hubert.layer, hubert_sha256=hubert.hubert_hash)
    return path


def write_tiny_weights(out_dir: Path, seed: int = 0, kmeans: bool = False,
                       n_clusters: int = constants.KMEANS_CLUSTERS) -> Path:
    """Write `out_dir/hubert-base-ls960/` and `out_dir/encodec_24khz/` (and `kmeans.npy` if asked).

    Returns `out_dir`, ready to be used as `HAFM_WEIGHTS_DIR`.
    """
    out_dir = Path(out_dir)
    write_tiny_hubert(out_dir, seed)
    write_tiny_encodec(out_dir, seed)
    if kmeans:
        write_tiny_kmeans(out_dir, seed, n_clusters=n_clusters)
    log.info("tiny random-init weights written to %s (seed %d)", out_dir, seed)
    return out_dir
