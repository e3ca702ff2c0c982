"""`logmel`: a seeded random projection of VGGish log-mel patches. Fast, weight-free, for tests.

Protocol `logmel-rp-v1`: 16 kHz mono, VGGish log-mel, patches of 96 frames (0.96 s) every
48 frames (0.48 s), each flattened (96 x 64) and projected to 64 dimensions by a fixed
Gaussian matrix drawn from `numpy.random.default_rng(0)`, scaled by 1/sqrt(6144).
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from hafm_core.fad.embedders import base, melspec
from hafm_core.provenance import sha256_bytes

PROTOCOLS = ("logmel-rp-v1",)
DIM = 64
SEED = 0
HOP_FRAMES = 48


class LogMelEmbedder(base.Embedder):
    name = "logmel"
    dim = DIM
    sample_rate_hz = melspec.SAMPLE_RATE_HZ
    min_duration_s = (melspec.WINDOW_SAMPLES + (melspec.EXAMPLE_FRAMES - 1) * melspec.HOP_SAMPLES) / melspec.SAMPLE_RATE_HZ

    def __init__(self, protocol: str = PROTOCOLS[0], device: str = "cpu"):
        self.protocol = protocol
        self.device = torch.device(device)
        patch = melspec.EXAMPLE_FRAMES * melspec.N_MELS
        matrix = np.random.default_rng(SEED).standard_normal((patch, DIM)) / np.sqrt(patch)
        self.projection = torch.from_numpy(matrix.astype(np.float32)).to(self.device)  # (6144, 64)
        self.weights_hash = sha256_bytes(matrix.astype("<f4").tobytes())
        self.code_hash = base.source_hash([base, melspec, sys.modules[__name__]])

    @torch.inference_mode()
    def embed_equal_length(self, batch: np.ndarray) -> np.ndarray:
        audio = torch.from_numpy(batch).to(self.device)  # (B, n)
        if audio.shape[1] < melspec.WINDOW_SAMPLES:
            return np.empty((len(batch), 0, DIM), np.float32)
        patches = melspec.examples(melspec.log_mel(audio), HOP_FRAMES)  # (B, E, 96, 64)
        return (patches.flatten(start_dim=2) @ self.projection).cpu().numpy()  # (B, E, 64)
