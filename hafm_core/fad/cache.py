"""Embedding cache: float32 `.npy` files keyed by everything that changes an embedding.

key = SHA-256 of {audio content hash, protocol, weights hash, embedder code hash, resampler}.
The audio hash is of the file's bytes, so a changed file never meets a stale entry, whatever
its name (fadtk keys by file name). The resampler field is soxr's version, its quality setting
and the source of `hafm_core.audio.resample`: a new resampler never meets entries made by an
old one. Entries are written atomically; a reader sees a whole file or none. An entry that
cannot be read back as float32 [T, D] with finite values (a truncated or corrupt file, a disk
error) is deleted with a warning and recomputed: a broken cache never fails a run.
Layout: `<root>/<protocol>/<key[:2]>/<key>.npy`, root `HAFM_CACHE_DIR/fad` by default.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
from pathlib import Path

import numpy as np

from hafm_core.config import cache_dir
from hafm_core.data.files import atomic_output
from hafm_core.fad.embedders.base import Embedder
from hafm_core.provenance import sha256_bytes

log = logging.getLogger(__name__)


@functools.cache
def resampler_version() -> str:
    """soxr's version, the quality used and a hash of the resampling function's source."""
    import soxr

    from hafm_core import audio

    source = hashlib.sha256(inspect.getsource(audio.resample).encode()).hexdigest()[:16]
    return f"soxr {soxr.__version__} {audio.RESAMPLE_QUALITY} resample:{source}"


class EmbeddingCache:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else cache_dir() / "fad"

    @staticmethod
    def key(audio_sha256: str, embedder: Embedder) -> str:
        fields = {"audio": audio_sha256, "protocol": embedder.protocol,
                  "weights": embedder.weights_hash, "code": embedder.code_hash,
                  "resampler": resampler_version()}
        return sha256_bytes(json.dumps(fields, sort_keys=True).encode())

    def path(self, key: str, protocol: str) -> Path:
        return self.root / protocol / key[:2] / f"{key}.npy"

    def get(self, key: str, protocol: str, dim: int | None = None) -> np.ndarray | None:
        """float32 [T, D] (D = `dim` when given), or None when absent or unreadable.

        An unreadable or malformed entry is deleted (with a warning) so it is recomputed.
        """
        path = self.path(key, protocol)
        if not path.is_file():
            return None
        try:
            value = np.load(path, allow_pickle=False)
            problem = _problem(value, dim)
        except (OSError, ValueError, EOFError) as error:
            problem = f"{type(error).__name__}: {error}"
        if problem is None:
            return value
        log.warning("discarding corrupt FAD cache entry %s (%s); recomputing it", path, problem)
        path.unlink(missing_ok=True)
        return None

    def put(self, key: str, protocol: str, embeddings: np.ndarray) -> Path:
        path = self.path(key, protocol)
        with atomic_output(path) as tmp:
            np.save(tmp, np.ascontiguousarray(embeddings, dtype=np.float32), allow_pickle=False)
        return path


def _problem(value: np.ndarray, dim: int | None) -> str | None:
    if value.dtype != np.float32 or value.ndim != 2 or value.shape[0] == 0:
        return f"{value.dtype} array of shape {value.shape}, expected float32 [frames, dim]"
    if dim is not None and value.shape[1] != dim:
        return f"shape {value.shape}, expected [frames, {dim}]"
    if not np.all(np.isfinite(value)):
        return "NaN or Inf values"
    return None
