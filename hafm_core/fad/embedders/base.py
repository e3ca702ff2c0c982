"""One interface for every FAD embedder: a named, versioned protocol and a batch embed.

An embedder turns mono float32 clips at its own sample rate into per-file embeddings
float32 [T, D]. Everything that changes the embeddings is recorded with a result and keys
the cache: `protocol` (framing, normalisation, layer), `weights_hash` (the model file's
content) and `code_hash` (the source of the modules that compute it).
"""

from __future__ import annotations

import hashlib
import inspect
from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import ModuleType

import numpy as np


def source_hash(modules: Sequence[ModuleType]) -> str:
    """SHA-256 of the source files of `modules`: changes when their code changes."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(module.__name__.encode())
        digest.update(inspect.getsource(module).encode())
    return digest.hexdigest()


class Embedder(ABC):
    """name: "vggish"; protocol: "vggish-google-v1"; dim: D; sample_rate_hz: input rate."""

    name: str
    protocol: str
    dim: int
    sample_rate_hz: int
    min_duration_s: float  # shorter clips give no frame
    weights_hash: str
    code_hash: str

    @abstractmethod
    def embed_equal_length(self, batch: np.ndarray) -> np.ndarray:
        """batch: float32 [B, n] at `sample_rate_hz` -> float32 [B, T, D] (T may be 0)."""

    def embed_batch(self, clips: Sequence[np.ndarray]) -> list[np.ndarray]:
        """clips: mono float32 [n_i] at `sample_rate_hz` -> one float32 [T_i, D] per clip.

        Each clip runs through the model on its own (its frames are still batched together):
        float32 kernels round differently at different batch shapes, so a clip embedded next
        to other clips would differ in the last bits from the same clip alone, and a
        distributed job (other shard sizes) would not reproduce a local run exactly.
        """
        return [np.ascontiguousarray(self.embed_equal_length(np.asarray(clip, np.float32)[None])[0],
                                     dtype=np.float32)  # (T, D)
                for clip in clips]

    def embed(self, clip: np.ndarray) -> np.ndarray:
        """clip: mono float32 [n] -> float32 [T, D]."""
        return self.embed_batch([clip])[0]

    def describe(self) -> dict:
        return {"embedder": self.name, "protocol": self.protocol, "dim": self.dim,
                "sample_rate_hz": self.sample_rate_hz, "weights_hash": self.weights_hash,
                "embedder_code_hash": self.code_hash}
