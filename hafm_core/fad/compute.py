"""FAD of two folders of audio: embed (batched, cached) -> statistics -> distance -> uncertainty.

The same pieces serve the local command (`compute_fad`) and the Celery map/reduce: a map step
is `shard_statistics` over some files, the reduce step is `report_from_stats`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hafm_core.errors import InvalidAudioError
from hafm_core.fad.cache import EmbeddingCache
from hafm_core.fad.distance import frechet_distance
from hafm_core.fad.embedders.base import Embedder
from hafm_core.fad.errors import EmbeddingShapeError, TooFewFilesError
from hafm_core.fad.files import list_audio_files, read_clip
from hafm_core.fad.songs import SongMoments
from hafm_core.fad.stats import EmbeddingStats, merge_all
from hafm_core.fad.uncertainty import (
    FadInfinity,
    Interval,
    fad_inf_interval,
    fad_infinity,
    jackknife_interval,
)
from hafm_core.provenance import code_version, sha256_file

Progress = Callable[[int], None]  # called with the number of files just finished
DEFAULT_BATCH_FILES = 8


@dataclass(frozen=True)
class FileEmbedding:
    path: str
    audio_sha256: str
    cache_key: str
    embeddings: np.ndarray  # float32 [T, D]

    def record(self) -> dict:
        """What a shard reports per file (the embeddings themselves stay in the cache)."""
        return {"path": self.path, "audio_sha256": self.audio_sha256, "cache_key": self.cache_key,
                "n_frames": int(len(self.embeddings))}


def _checked_embeddings(path: Path, embeddings: np.ndarray, embedder: Embedder, n_samples: int) -> np.ndarray:
    if embeddings.ndim != 2 or embeddings.shape[1] != embedder.dim:
        raise EmbeddingShapeError(f"{path}: {embedder.protocol} gave embeddings of shape "
                                  f"{embeddings.shape}, expected [frames, {embedder.dim}]")
    if len(embeddings) == 0:
        raise InvalidAudioError(
            f"{path}: {n_samples / embedder.sample_rate_hz:.2f} s is shorter than the "
            f"{embedder.min_duration_s:g} s window of {embedder.protocol}: it gives no embedding frame"
        )
    if not np.all(np.isfinite(embeddings)):
        raise InvalidAudioError(f"{path}: {embedder.protocol} gave NaN or Inf embeddings")
    return embeddings


def embed_files(paths: Sequence[str | Path], embedder: Embedder, cache: EmbeddingCache | None = None,
                batch_files: int = DEFAULT_BATCH_FILES, progress: Progress | None = None) -> list[FileEmbedding]:
    """Per-file embeddings float32 [T_i, D], from the cache or computed `batch_files` at a time."""
    results: list[FileEmbedding] = []
    for start in range(0, len(paths), batch_files):
        batch = [Path(p) for p in paths[start:start + batch_files]]
        hashes = [sha256_file(path) for path in batch]
        keys = [EmbeddingCache.key(digest, embedder) for digest in hashes]
        found = [cache.get(key, embedder.protocol, embedder.dim) if cache else None for key in keys]
        missing = [i for i, value in enumerate(found) if value is None]
        clips = [read_clip(batch[i], embedder.sample_rate_hz) for i in missing]
        for i, clip, embeddings in zip(missing, clips, embedder.embed_batch(clips)):
            found[i] = _checked_embeddings(batch[i], embeddings, embedder, len(clip))
            if cache is not None:
                cache.put(keys[i], embedder.protocol, found[i])
        results += [FileEmbedding(str(path), digest, key, value)
                    for path, digest, key, value in zip(batch, hashes, keys, found)]
        if progress is not None:
            progress(len(batch))
    return results


def statistics_of(files: Sequence[FileEmbedding]) -> EmbeddingStats:
    """Merged float64 statistics of all frames of `files`."""
    return merge_all([EmbeddingStats.from_embeddings(f.embeddings) for f in files])


def shard_statistics(paths: Sequence[str | Path], embedder: Embedder, cache: EmbeddingCache | None,
                     progress: Progress | None = None) -> tuple[EmbeddingStats, list[dict]]:
    """The map step: mergeable statistics of one shard and a record per file."""
    files = embed_files(paths, embedder, cache, progress=progress)
    return statistics_of(files), [f.record() for f in files]


@dataclass(frozen=True)
class FadReport:
    fad: float
    n_background: int
    n_eval: int
    n_background_frames: int
    n_eval_frames: int
    embedder: str
    protocol: str
    dim: int
    weights_hash: str
    embedder_code_hash: str
    code_version: str
    seed: int
    background: str
    eval: str
    ci: Interval | None = None  # of the FAD at these n (the plug-in's expectation), not the true FAD
    ci_standard_error: float | None = None
    fad_inf_ci: Interval | None = None  # of the n-free FAD (jackknife bias-corrected)
    fad_inf: FadInfinity | None = None

    def to_json(self) -> dict:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for name in ("ci", "fad_inf_ci", "fad_inf"):
            value = getattr(self, name)
            data[name] = value.to_json() if value else None
        return data


def report_from_stats(background: EmbeddingStats, evaluation: EmbeddingStats, *, embedder_info: dict,
                      n_background: int, n_eval: int, background_path: str, eval_path: str,
                      background_songs: Sequence[np.ndarray] | None = None,
                      eval_songs: Sequence[np.ndarray] | None = None,
                      with_fad_inf: bool = False, seed: int = 0) -> FadReport:
    """The reduce step: the distance, and with per-song embeddings the jackknife CI (and FAD-inf).

    embedder_info: `Embedder.describe()` of the embedder that made every frame.
    """
    for label, stats, n in (("background", background, n_background), ("eval", evaluation, n_eval)):
        if n < 2 or stats.count < 2:
            raise TooFewFilesError(f"{label} set {background_path if label == 'background' else eval_path}: "
                                   f"{n} files and {stats.count} frames; FAD needs at least two of each")
    fad = frechet_distance(background.mean, background.covariance, evaluation.mean, evaluation.covariance)
    ci = se = infinity = inf_ci = None
    if background_songs is not None and eval_songs is not None:
        bg_moments = SongMoments.from_songs(background_songs, "background")
        ev_moments = SongMoments.from_songs(eval_songs, "eval")
        ci, se = jackknife_interval(bg_moments, ev_moments)
        inf_ci = fad_inf_interval(bg_moments, ev_moments)
        if with_fad_inf:
            infinity = fad_infinity(bg_moments, ev_moments, seed=seed)
    return FadReport(
        fad=fad, n_background=n_background, n_eval=n_eval,
        n_background_frames=background.count, n_eval_frames=evaluation.count,
        embedder=embedder_info["embedder"], protocol=embedder_info["protocol"], dim=embedder_info["dim"],
        weights_hash=embedder_info["weights_hash"], embedder_code_hash=embedder_info["embedder_code_hash"],
        code_version=code_version(), seed=seed, background=background_path, eval=eval_path,
        ci=ci, ci_standard_error=se, fad_inf_ci=inf_ci, fad_inf=infinity,
    )


def compute_fad(background: str | Path, evaluation: str | Path, embedder: Embedder,
                cache: EmbeddingCache | None = None, with_ci: bool = False, with_fad_inf: bool = False,
                seed: int = 0, batch_files: int = DEFAULT_BATCH_FILES,
                progress: Progress | None = None) -> FadReport:
    """FAD between the audio under two folders, in one process (no broker)."""
    bg_paths = list_audio_files(background, "background")
    ev_paths = list_audio_files(evaluation, "eval")
    bg_files = embed_files(bg_paths, embedder, cache, batch_files, progress)
    ev_files = embed_files(ev_paths, embedder, cache, batch_files, progress)
    want_songs = with_ci or with_fad_inf
    return report_from_stats(
        statistics_of(bg_files), statistics_of(ev_files), embedder_info=embedder.describe(),
        n_background=len(bg_files), n_eval=len(ev_files),
        background_path=str(background), eval_path=str(evaluation),
        background_songs=[f.embeddings for f in bg_files] if want_songs else None,
        eval_songs=[f.embeddings for f in ev_files] if want_songs else None,
        with_fad_inf=with_fad_inf, seed=seed,
    )
