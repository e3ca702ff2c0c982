"""`encodec`: the continuous encoder output of EnCodec 24 kHz (before quantisation).

Protocol `encodec-24khz-encoder-v1`: 24 kHz mono, no loudness normalisation, one D-dim frame
every 320 samples (75 Hz; D = 128 for facebook/encodec_24khz), frames time-major [T, D]
(the transposition frechet-audio-distance got wrong). The model comes from
`hafm_core.tokens.acoustic.AcousticTokenizer` and `HAFM_WEIGHTS_DIR/encodec_24khz`.
"""

from __future__ import annotations

import sys

import numpy as np

from hafm_core import audio as audio_io
from hafm_core.fad.embedders import base
from hafm_core.tokens import acoustic
from hafm_core.weights import weights_path

PROTOCOLS = ("encodec-24khz-encoder-v1",)


class EncodecEmbedder(base.Embedder):
    name = "encodec"

    def __init__(self, protocol: str = PROTOCOLS[0], device: str = "cpu", path=None):
        self.protocol = protocol
        self.tokenizer = acoustic.AcousticTokenizer.from_pretrained(path or weights_path("encodec"), device=device)
        self.sample_rate_hz = self.tokenizer.sample_rate_hz
        self.dim = self.tokenizer.embedding_dim
        self.min_duration_s = 1.0 / self.sample_rate_hz
        self.weights_hash = self.tokenizer.weights_hash
        self.code_hash = base.source_hash([base, acoustic, audio_io, sys.modules[__name__]])

    def embed_equal_length(self, batch: np.ndarray) -> np.ndarray:
        return self.tokenizer.embed(batch).transpose(0, 2, 1)  # (B, D, T) -> (B, T, D)
