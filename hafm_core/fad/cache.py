"""Embedding cache: float32 `.npy` files keyed by everything that changes an embedding.

key = SHA-256 of {audio content hash, protocol, weights hash, embedder code hash}. The audio
hash is of the file's bytes, so a changed file never meets a stale entry, whatever its name
(fadtk keys by file name). Entries are written atomically; a reader sees a whole file or none.
Layout: `<root>/<protocol>/<key[:2]>/<key>.npy`, root `HAFM_CACHE_DIR/fad` by default.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hafm_core.config import cache_dir
from hafm_core.data.files import atomic_output
from hafm_core.fad.embedders.base import Embedder
from hafm_core.provenance import sha256_bytes


class EmbeddingCache:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else cache_dir() / "fad"

    @staticmethod
    def key(audio_sha256: str, embedder: Embedder) -> str:
        fields = {"audio": audio_sha256, "protocol": embedder.protocol,
                  "weights": embedder.weights_hash, "code": embedder.code_hash}
        return sha256_bytes(json.dumps(fields, sort_keys=True).encode())

    def path(self, key: str, protocol: str) -> Path:
        return self.root / protocol / key[:2] / f"{key}.npy"

    def get(self, key: str, protocol: str) -> np.ndarray | None:
        """float32 [T, D], or None when absent."""
        path = self.path(key, protocol)
        if not path.is_file():
            return None
        return np.load(path, allow_pickle=False)

    def put(self, key: str, protocol: str, embeddings: np.ndarray) -> Path:
        path = self.path(key, protocol)
        with atomic_output(path) as tmp:
            np.save(tmp, np.ascontiguousarray(embeddings, dtype=np.float32), allow_pickle=False)
        return path
