"""On-disk cache of vocal pitch tracks, shared by the processes that fit the same vocals.

A benchmark run measures each system in its own task (`evalsite.services.benchmark_work.
measure_fit`) and every system shares the run's vocals; `hafm fit` is run once per system's
folder against one folder of vocals. CREPE, about three quarters of a fit's CPU time, then
runs once per vocal: the first process writes the pitch, the others read it.

key = SHA-256 of {vocal: `audio.samples_sha256` of the vocal as measured (cut to the
excerpt's common length) and its rate, weights: SHA-256 of the CREPE model's state dict,
device: its type (CPU and GPU kernels round differently), hop: samples at 16 kHz, code:
SHA-256 of the source of `hafm_core.crepe` and of `vocal.crepe_pitch`, resampler: soxr's
version and setting}. Whatever changes a pitch track changes its key.

Layout: `<root>/<key[:2]>/<key>.pitch`, root `HAFM_CACHE_DIR/fit-pitch` by default. A file is
the SHA-256 of its payload (32 bytes) then the payload, f0 in Hz and periodicity as
little-endian float32 [2, T]. Writes are atomic (temp file beside the target, `os.replace`):
concurrent workers that compute the same vocal each write a whole file and the last stays;
a reader sees a whole file or none. An entry whose digest does not match its payload (a
truncated or corrupt file, a disk error) is deleted with a warning and recomputed: a broken
cache never fails a fit, and neither does one that cannot be written.
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

log = logging.getLogger(__name__)
DIGEST_BYTES = 32


@functools.cache
def _code_version() -> str:
    from hafm_core import crepe
    from hafm_core.fad.cache import resampler_version
    from hafm_core.fit import vocal

    source = inspect.getsource(crepe) + inspect.getsource(vocal.crepe_pitch)
    return f"{hashlib.sha256(source.encode()).hexdigest()} {resampler_version()}"


def model_fingerprint(model) -> str:
    """SHA-256 of a CREPE model's state dict (names and values) and its device type."""
    digest = hashlib.sha256(model.device.type.encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def pitch_key(vocal_sha256: str, model_sha256: str, hop_samples: int) -> str:
    fields = {"vocal": vocal_sha256, "model": model_sha256, "hop": hop_samples, "code": _code_version()}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


class PitchCache:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else cache_dir() / "fit-pitch"

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.pitch"

    def get(self, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(f0_hz float32 [T], periodicity float32 [T]), or None when absent or corrupt (deleted)."""
        path = self.path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:  # an unreadable cache folder: the fit goes on without it
            log.warning("fit pitch cache: could not read %s (%s)", path, error)
            return None
        digest, payload = data[:DIGEST_BYTES], data[DIGEST_BYTES:]
        if len(payload) == 0 or len(payload) % 8 or hashlib.sha256(payload).digest() != digest:
            log.warning("discarding corrupt fit pitch cache entry %s (%d bytes, digest mismatch); recomputing it",
                        path, len(data))
            path.unlink(missing_ok=True)
            return None
        f0_hz, periodicity = np.frombuffer(payload, dtype="<f4").reshape(2, -1).astype(np.float32)
        return f0_hz, periodicity

    def put(self, key: str, f0_hz: np.ndarray, periodicity: np.ndarray) -> Path | None:
        """Store a pitch track; a cache that cannot be written (full disk, read-only folder) is
        logged and skipped, never a failed fit. The path written, or None."""
        payload = np.stack([f0_hz, periodicity]).astype("<f4").tobytes()  # (2, T)
        path = self.path(key)
        try:
            with atomic_output(path) as tmp:
                tmp.write_bytes(hashlib.sha256(payload).digest() + payload)
        except OSError as error:
            log.warning("fit pitch cache: could not write %s (%s); the fit goes on without it", path, error)
            return None
        return path
