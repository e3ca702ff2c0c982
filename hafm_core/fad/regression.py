"""The checkpoint regression gate: is a candidate's FAD worse than a baseline's beyond a margin?

Both systems generated accompaniments for the same songs (paired by file name). The decision
rule (`hafm_core.fad.gate`) is a paired permutation test over songs with an exact false-alarm
rate, plus the smallest worsening it can detect at this number of songs: "regression" when the
candidate is detectably worse, "pass" when it is not and a worsening of the margin would have
been detected (80% power), "inconclusive" when too few songs were given to tell.
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
from hafm_core.fad.gate import GateResult, regression_gate
from hafm_core.fad.uncertainty import paired_names
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
    gate: GateResult
    embedder_info: dict
    background: str
    candidate: str
    baseline: str
    n_background: int

    @property
    def verdict(self) -> str:
        return self.gate.verdict

    def to_json(self) -> dict:
        return {**self.gate.to_json(), "passed": self.gate.verdict == "pass",
                "n_background": self.n_background, "background": self.background,
                "candidate": self.candidate, "baseline": self.baseline,
                **self.embedder_info, "code_version": code_version()}


def _songs(folder: Path, label: str, embedder: Embedder, cache: EmbeddingCache | None,
           progress: Progress | None) -> dict:
    paths = list_audio_files(folder, label)
    files = embed_files(paths, embedder, cache, DEFAULT_BATCH_FILES, progress)
    return {song_name(folder, f.path): f.embeddings for f in files}


def check_regression(background: Path, candidate: Path, baseline: Path, embedder: Embedder,
                     cache: EmbeddingCache | None = None, max_relative_increase: float = 0.05,
                     n_permutations: int = 999, seed: int = 0, alpha: float = 0.05,
                     progress: Progress | None = None) -> RegressionVerdict:
    """The gate's verdict of `candidate` against `baseline` over the same background."""
    background_songs = _songs(background, "background", embedder, cache, progress)
    candidate_songs = _songs(candidate, "candidate", embedder, cache, progress)
    baseline_songs = _songs(baseline, "baseline", embedder, cache, progress)
    names = paired_names(candidate_songs, baseline_songs, ("candidate", "baseline"))
    gate = regression_gate(list(background_songs.values()), [candidate_songs[k] for k in names],
                           [baseline_songs[k] for k in names], max_relative_increase, alpha,
                           n_permutations, seed)
    return RegressionVerdict(gate, embedder.describe(), str(background), str(candidate), str(baseline),
                             len(background_songs))
