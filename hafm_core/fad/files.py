"""The audio files of a FAD set: listing a folder, naming songs, reading and checking samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hafm_core.audio import FFMPEG_SUFFIXES, SOUNDFILE_SUFFIXES, check_audio, read_audio
from hafm_core.errors import DatasetError
from hafm_core.fad.errors import TooFewFilesError

AUDIO_SUFFIXES = SOUNDFILE_SUFFIXES + FFMPEG_SUFFIXES


def list_audio_files(folder: str | Path, label: str) -> list[Path]:
    """Audio files under `folder` (recursive, sorted, hidden files skipped); at least two.

    Raises DatasetError naming the folder when it is missing, not a folder or holds no audio,
    and TooFewFilesError when it holds a single file.
    """
    folder = Path(folder)
    if not folder.exists():
        raise DatasetError(f"{label} folder {folder} does not exist")
    if not folder.is_dir():
        raise DatasetError(f"{label} path {folder} is not a folder of audio files")
    files = sorted(
        path for path in folder.rglob("*")
        if path.suffix.lower() in AUDIO_SUFFIXES and not path.name.startswith(".")
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )
    if not files:
        raise DatasetError(f"{label} folder {folder} holds no audio files "
                           f"(looked for {', '.join(AUDIO_SUFFIXES)})")
    if len(files) < 2:
        raise TooFewFilesError(f"{label} folder {folder} holds {len(files)} audio file; FAD needs at "
                               "least two (a covariance over songs)")
    return files


def song_name(folder: str | Path, path: str | Path) -> str:
    """The pairing key of a file: its path relative to the set's folder, without the suffix."""
    relative = Path(path).relative_to(folder).as_posix()
    lowered = relative.lower()
    for suffix in (".stem.mp4", *AUDIO_SUFFIXES):
        if lowered.endswith(suffix):
            return relative[: -len(suffix)]
    return relative


def read_clip(path: Path, sample_rate_hz: int) -> np.ndarray:
    """Mono float32 [n] at `sample_rate_hz`; NaN/Inf or silence is an InvalidAudioError naming the file."""
    samples, _ = read_audio(path, sample_rate_hz, mono=True)
    return check_audio(samples, sample_rate_hz, path)
