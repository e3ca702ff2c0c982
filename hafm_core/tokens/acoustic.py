"""Acoustic tokens: EnCodec 24 kHz at 6 kbps -> 8 residual codebooks of 1024 entries at 75 Hz.

Codebooks 1-4 are the coarse codes (3 kbps), 5-8 the fine codes. `decode` accepts 4 or 8
codebooks, so the two-stage system decodes at 3 kbps and the three-stage system at 6 kbps.

Frame count rule: audio of n samples at 24 kHz gives `T_a = ceil(n / 320)` frames (EnCodec pads
the last partial hop; tested for every length); decoding T_a frames gives `T_a * 320` samples. Excerpts cut by
`hafm_core.data` are multiples of 40 ms (960 samples), so they map to exactly `3 * units` frames
(see `alignment`).

Long audio is processed in chunks of `chunk_s` seconds (a multiple of the 40 ms unit): the
encoder and decoder are causal, so chunking only resets the LSTM state and the causal padding at
chunk starts; excerpts of 10 s fit in one chunk and are encoded exactly as in one pass.

Inputs may be numpy arrays or torch tensors; outputs are of the same kind (tensor outputs on the
input's device).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from hafm_core import constants
from hafm_core.config import torch_device
from hafm_core.errors import ConfigError
from hafm_core.provenance import sha256_tree
from hafm_core.tokens.loading import ENCODEC_SOURCE, load_pretrained, require_model_folder
from hafm_core.tokens.tensors import as_audio_batch, as_input_kind

DEFAULT_CHUNK_S = 30.0


class AcousticTokenizer:
    """EnCodec around transformers' `EncodecModel`, at 6 kbps (8 codebooks)."""

    def __init__(self, model, weights_hash: str, device: str, chunk_s: float = DEFAULT_CHUNK_S):
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.weights_hash = weights_hash
        self.sample_rate_hz = int(model.config.sampling_rate)
        self.hop_samples = int(model.config.hop_length)
        self.bandwidth_kbps = constants.ENCODEC_BANDWIDTH_KBPS
        self.n_codebooks = model.quantizer.get_num_quantizers_for_bandwidth(self.bandwidth_kbps)
        self.embedding_dim = int(model.config.hidden_size)
        chunk_frames = max(1, int(chunk_s * constants.ACOUSTIC_FRAME_RATE_HZ) // 3) * 3
        self.chunk_frames = chunk_frames
        self._check_protocol()

    def _check_protocol(self) -> None:
        expected = (constants.ACOUSTIC_SAMPLE_RATE_HZ, constants.ACOUSTIC_HOP_SAMPLES, constants.N_CODEBOOKS)
        found = (self.sample_rate_hz, self.hop_samples, self.n_codebooks)
        if found != expected or self.bandwidth_kbps not in self.model.config.target_bandwidths:
            raise ConfigError(
                f"EnCodec model has (sample rate, hop, codebooks at 6 kbps) = {found}, "
                f"expected {expected}: use {ENCODEC_SOURCE}"
            )

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | None = None,
                        chunk_s: float = DEFAULT_CHUNK_S) -> AcousticTokenizer:
        """Load a local folder written by `save_pretrained` (no network: `local_files_only`)."""
        from transformers import EncodecModel

        model = load_pretrained(EncodecModel, path, ENCODEC_SOURCE)
        return cls(model, sha256_tree(require_model_folder(path, ENCODEC_SOURCE)), device or torch_device(),
                   chunk_s)

    def num_frames(self, n_samples: int) -> int:
        """T_a for n samples at 24 kHz: ceil(n / 320)."""
        return math.ceil(n_samples / self.hop_samples)

    @torch.inference_mode()
    def encode(self, audio):
        """audio: float32 [B, n] at 24 kHz -> codes: int64 [B, 8, T_a], T_a = ceil(n / 320)."""
        batch, kind = as_audio_batch(audio, self.device)
        chunk = self.chunk_frames * self.hop_samples
        parts = []
        for start in range(0, batch.shape[-1], chunk):
            piece = batch[:, None, start:start + chunk]  # (B, 1, n_chunk)
            encoded = self.model.encode(piece, bandwidth=self.bandwidth_kbps, return_dict=True)
            parts.append(encoded.audio_codes[0])  # (B, 8, T_chunk)
        codes = torch.cat(parts, dim=-1).to(torch.int64)
        return as_input_kind(codes, kind)

    @torch.inference_mode()
    def decode(self, codes):
        """codes: int64 [B, K, T_a], K in {4, 8} (3 or 6 kbps) -> audio: float32 [B, T_a * 320] at 24 kHz."""
        is_numpy = not isinstance(codes, torch.Tensor)
        out_device = torch.device("cpu") if is_numpy else codes.device
        codes = torch.as_tensor(codes, dtype=torch.int64).to(self.device)
        if codes.ndim != 3 or codes.shape[1] not in (constants.N_COARSE_CODEBOOKS, constants.N_CODEBOOKS):
            raise ValueError(f"codes must have shape [B, 4 or 8, T_a], got {tuple(codes.shape)}")
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.model.config.codebook_size):
            raise ValueError(f"codes must lie in [0, {self.model.config.codebook_size}), "
                             f"got [{int(codes.min())}, {int(codes.max())}]")
        parts = []
        for start in range(0, codes.shape[-1], self.chunk_frames):
            piece = codes[None, :, :, start:start + self.chunk_frames]  # (1, B, K, T_chunk)
            decoded = self.model.decode(piece, [None], return_dict=True).audio_values  # (B, 1, n)
            parts.append(decoded[:, 0, : piece.shape[-1] * self.hop_samples])
        audio = torch.cat(parts, dim=-1).to(torch.float32)
        return audio.cpu().numpy() if is_numpy else audio.to(out_device)

    @torch.inference_mode()
    def embed(self, audio):
        """audio: float32 [B, n] at 24 kHz -> continuous encoder output float32 [B, D, T_a] (D = 128 for the real model)."""
        batch, kind = as_audio_batch(audio, self.device)
        chunk = self.chunk_frames * self.hop_samples
        parts = [self.model.encoder(batch[:, None, start:start + chunk])
                 for start in range(0, batch.shape[-1], chunk)]
        return as_input_kind(torch.cat(parts, dim=-1).to(torch.float32), kind)
