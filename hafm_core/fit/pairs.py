"""Fit over files: vocal/accompaniment pairs by name, and a summary with bootstrap CIs in which a failed excerpt counts.

`fit_path_pairs` is the entry point for callers that hold paths (the `hafm fit` command, a
Celery task of a benchmark run): it reads a chunk of pairs at a time, so memory stays bounded
for any number of excerpts, and an unreadable file becomes status `unreadable`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hafm_core.errors import AudioError, DatasetError
from hafm_core.fit.excerpt import (
    DEFAULT_CONFIG,
    METRIC_NAMES,
    METRIC_RANGES,
    Excerpt,
    FitConfig,
    FitResult,
    fit_excerpts,
)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3", ".m4a", ".mp4")


@dataclass(frozen=True)
class Pairing:
    """Files matched by their path relative to each folder, without the suffix."""

    pairs: list[tuple[str, Path, Path]]  # (name, vocal, accompaniment), sorted by name
    vocals_only: list[str]
    accompaniments_only: list[str]


def _audio_files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a folder of audio files")
    files: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in AUDIO_SUFFIXES:
            name = path.relative_to(folder).with_suffix("").as_posix()
            if name in files:
                raise DatasetError(f"{files[name]} and {path} have the same name; keep one of them")
            files[name] = path
    return files


def pair_folders(vocals_dir: str | Path, accompaniments_dir: str | Path) -> Pairing:
    """Pair `VOCALS/a/b.wav` with `ACCOMPANIMENTS/a/b.flac` (any audio suffix)."""
    vocals = _audio_files(Path(vocals_dir))
    accompaniments = _audio_files(Path(accompaniments_dir))
    return Pairing(
        pairs=[(name, vocals[name], accompaniments[name]) for name in sorted(vocals.keys() & accompaniments.keys())],
        vocals_only=sorted(vocals.keys() - accompaniments.keys()),
        accompaniments_only=sorted(accompaniments.keys() - vocals.keys()),
    )


def _read_excerpt(name: str, vocal_path: Path, accompaniment_path: Path) -> Excerpt | FitResult:
    from hafm_core.audio import read_audio

    try:
        vocal, vocal_rate = read_audio(vocal_path, mono=True)
        accompaniment, accompaniment_rate = read_audio(accompaniment_path, mono=True)
    except AudioError as error:
        return FitResult(name, "unreadable", str(error))
    return Excerpt(name, vocal, accompaniment, vocal_rate, accompaniment_rate)


def fit_path_pairs(pairs: Sequence[tuple[str | Path, str | Path]], names: Sequence[str] | None = None,
                   model=None, config: FitConfig = DEFAULT_CONFIG,
                   progress: Callable[[int], object] | None = None, pitch_cache=None) -> list[FitResult]:
    """[(vocal path, accompaniment path), ...] -> one FitResult each, in order.

    names default to the vocal file names without suffix. Safe to call from a worker:
    arguments and results are plain paths and dataclasses (`FitResult.to_dict()` for JSON).
    pitch_cache: a `hafm_core.fit.pitch_cache.PitchCache` shared with the processes that fit
    the same vocals (other systems, other runs), or None.
    """
    from hafm_core.crepe import CrepeTiny

    names = list(names) if names is not None else [Path(v).stem for v, _ in pairs]
    if len(names) != len(pairs):
        raise ValueError(f"{len(names)} names for {len(pairs)} pairs")
    results: list[FitResult] = []
    for start in range(0, len(pairs), config.pitch_batch_excerpts):
        chunk = [_read_excerpt(name, Path(v), Path(a))
                 for name, (v, a) in zip(names[start:], pairs[start:start + config.pitch_batch_excerpts])]
        excerpts = [item for item in chunk if isinstance(item, Excerpt)]
        if excerpts and model is None:
            model = CrepeTiny.load()
        measured = iter(fit_excerpts(excerpts, model, config, progress, pitch_cache))
        for item in chunk:
            if isinstance(item, FitResult) and progress:
                progress(1)
            results.append(item if isinstance(item, FitResult) else next(measured))
    return results


def bootstrap_mean_ci(values: np.ndarray, n_resamples: int = 2000, confidence: float = 0.95,
                      seed: int = 0) -> tuple[float, float] | None:
    """Percentile bootstrap CI of the mean of float [n] over excerpts; None when n < 2."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return None
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n_resamples, len(values)))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def summarize(results: Sequence[FitResult], n_resamples: int = 2000, confidence: float = 0.95,
              seed: int = 0) -> dict:
    """Mean of each metric over *all* excerpts, a failed (non-ok) one counting as the metric's
    worst value, with its bootstrap CI; beside it the failure rate and the mean over ok ones.

    A system cannot raise its mean by failing: an excerpt it spoils (silence, noise, a crash)
    scores the worst, not nothing. `{"n_excerpts", "n_ok", "n_failed", "failure_rate",
    "statuses": {status: count}, "confidence", "metrics": {name: {"mean", "ci_low", "ci_high",
    "n", "mean_ok", "n_ok"}}}`; means are None with no excerpt, the CI is None with one.
    """
    ok = [r for r in results if r.ok]
    metrics = {}
    for name in METRIC_NAMES:
        worst = METRIC_RANGES[name][0]
        values = np.array([getattr(r, name) if r.ok else worst for r in results], dtype=np.float64)
        ok_values = np.array([getattr(r, name) for r in ok], dtype=np.float64)
        ci = bootstrap_mean_ci(values, n_resamples, confidence, seed)
        metrics[name] = {
            "mean": float(values.mean()) if len(values) else None,
            "ci_low": ci[0] if ci else None,
            "ci_high": ci[1] if ci else None,
            "n": len(values),
            "mean_ok": float(ok_values.mean()) if len(ok_values) else None,
            "n_ok": len(ok_values),
        }
    return {
        "n_excerpts": len(results),
        "n_ok": len(ok),
        "n_failed": len(results) - len(ok),
        "failure_rate": (len(results) - len(ok)) / len(results) if results else None,
        "statuses": dict(Counter(r.status for r in results)),
        "confidence": confidence,
        "metrics": metrics,
    }
