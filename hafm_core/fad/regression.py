"""The checkpoint regression gate: is a candidate's FAD worse than a baseline's beyond a margin?

Both systems generated accompaniments for the same songs (paired by file name). A paired
bootstrap over songs gives the distribution of the relative change `FAD_c / FAD_b - 1`; the
candidate passes when the one-sided upper 95% bound of that change is at most the margin:
"not worse by more than the margin, with 95% confidence" (a non-inferiority test). A point
estimate below the margin with a wide interval does not pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hafm_core.config import media_dir
from hafm_core.errors import DatasetError
from hafm_core.fad.cache import EmbeddingCache
from hafm_core.fad.compute import DEFAULT_BATCH_FILES, Progress, embed_files
from hafm_core.fad.embedders.base import Embedder
from hafm_core.fad.files import list_audio_files, song_name
from hafm_core.fad.songs import SongMoments
from hafm_core.fad.uncertainty import PairedComparison, paired_bootstrap, paired_moments
from hafm_core.provenance import code_version


def resolve_set(value: str | Path, label: str) -> Path:
    """A folder of audio, or a run's folder `HAFM_MEDIA_DIR/runs/<RUN>[/<system>]`."""
    path = Path(value)
    if path.is_dir():
        return path
    run_path = media_dir() / "runs" / str(value)
    if run_path.is_dir():
        return run_path
    raise DatasetError(f"{label} {value!r} is neither a folder nor a run (looked at {path} and {run_path})")


@dataclass(frozen=True)
class RegressionVerdict:
    passed: bool
    max_relative_increase: float
    comparison: PairedComparison
    embedder_info: dict
    background: str
    candidate: str
    baseline: str
    n_background: int

    def to_json(self) -> dict:
        c = self.comparison
        return {
            "verdict": "pass" if self.passed else "regression",
            "passed": self.passed,
            "max_relative_increase": self.max_relative_increase,
            "fad_candidate": c.fad_candidate,
            "fad_baseline": c.fad_baseline,
            "difference": c.difference.to_json(),
            "relative_change": c.relative_change.to_json(),
            "relative_change_upper": c.relative_change_upper,
            "n_songs": c.n_songs, "n_background": self.n_background,
            "n_resamples": c.n_resamples, "seed": c.seed,
            "background": self.background, "candidate": self.candidate, "baseline": self.baseline,
            **self.embedder_info, "code_version": code_version(),
        }


def _songs(folder: Path, label: str, embedder: Embedder, cache: EmbeddingCache | None,
           progress: Progress | None) -> dict:
    paths = list_audio_files(folder, label)
    files = embed_files(paths, embedder, cache, DEFAULT_BATCH_FILES, progress)
    return {song_name(folder, f.path): f.embeddings for f in files}


def check_regression(background: Path, candidate: Path, baseline: Path, embedder: Embedder,
                     cache: EmbeddingCache | None = None, max_relative_increase: float = 0.05,
                     n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95,
                     progress: Progress | None = None) -> RegressionVerdict:
    """Paired bootstrap verdict of `candidate` against `baseline` over the same background."""
    background_songs = _songs(background, "background", embedder, cache, progress)
    moments_c, moments_b, _ = paired_moments(
        _songs(candidate, "candidate", embedder, cache, progress),
        _songs(baseline, "baseline", embedder, cache, progress),
        ("candidate", "baseline"),
    )
    comparison = paired_bootstrap(SongMoments.from_songs(list(background_songs.values()), "background"),
                                  moments_c, moments_b, n_resamples, seed, confidence)
    return RegressionVerdict(
        passed=comparison.relative_change_upper <= max_relative_increase,
        max_relative_increase=max_relative_increase,
        comparison=comparison,
        embedder_info=embedder.describe(),
        background=str(background), candidate=str(candidate), baseline=str(baseline),
        n_background=len(background_songs),
    )
