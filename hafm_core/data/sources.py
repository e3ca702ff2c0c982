"""Where tracks come from, and how their four stems are loaded.

Layouts understood:
- MUSDB18 (`--musdb PATH`): `PATH/{train,test}/NAME.stem.mp4` (the compressed release, five
  streams mixture/drums/bass/other/vocals) or `PATH/{train,test}/NAME/{vocals,drums,bass,other}.wav`
  (MUSDB18-HQ). Splits: see `splits`.
- A stem folder (`--stems PATH`): `PATH/TRACK/{vocals,drums,bass,other}.{wav,flac}`; with
  `train/` and `test/` sub-folders it is read like MUSDB18-HQ.
- The stempeg sample (`--sample`): the real MUSDB18-format `.stem.mp4` that ships inside the
  stempeg wheel (6.08 s, stereo, 44.1 kHz).
- Synthetic tracks (`--synthetic N`): `hafm_core.synth.synthesize_multitrack(seed=i)`.

Only vocals, drums, bass and other are used; the accompaniment is drums + bass + other (the
mixture stream is ignored, so the vocal and accompaniment always add up to what was heard).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hafm_core.data.splits import SPLITS, assign_splits, musdb_split
from hafm_core.errors import DatasetError

STEMS = ("vocals", "drums", "bass", "other")
STEM_SUFFIXES = (".wav", ".flac")
SYNTHETIC_DURATION_S = 12.0


@dataclass(frozen=True)
class Track:
    """One multitrack: `kind` is "stem_mp4", "stem_folder" or "synthetic"."""

    name: str
    split: str
    source: str  # "musdb", "stems", "sample" or "synthetic"
    kind: str
    path: str = ""  # the .stem.mp4 file or the stem folder
    seed: int = 0  # synthetic tracks only
    duration_s: float = SYNTHETIC_DURATION_S  # synthetic tracks only


def load_stems(track: Track, sample_rate_hz: int) -> dict[str, np.ndarray]:
    """{vocals, drums, bass, other}: float32 mono [n] at `sample_rate_hz`, all the same length."""
    from hafm_core.audio import read_audio, read_stems

    if track.kind == "synthetic":
        from hafm_core.synth import synthesize_multitrack

        multitrack = synthesize_multitrack(track.seed, track.duration_s, sample_rate_hz)
        stems = {name: multitrack.stems[name].astype(np.float32) for name in STEMS}
    elif track.kind == "stem_mp4":
        streams, _ = read_stems(track.path, sample_rate_hz)
        stems = {name: streams[name] for name in STEMS}
    elif track.kind == "stem_folder":
        stems = {name: read_audio(_stem_file(Path(track.path), name), sample_rate_hz)[0] for name in STEMS}
    else:
        raise ValueError(f"unknown track kind {track.kind!r}")
    length = min(s.shape[-1] for s in stems.values())
    return {name: s[:length] for name, s in stems.items()}


def _stem_file(folder: Path, stem: str) -> Path | None:
    for suffix in STEM_SUFFIXES:
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return None


def _stem_folder_track(folder: Path) -> bool:
    """True when `folder` holds all four stems; a partial set is a `DatasetError`."""
    present = [stem for stem in STEMS if _stem_file(folder, stem) is not None]
    if present and len(present) < len(STEMS):
        missing = [stem for stem in STEMS if stem not in present]
        raise DatasetError(f"{folder} holds {', '.join(present)} but not {', '.join(missing)} "
                           f"(expected {'/'.join(STEMS)}.wav)")
    return bool(present)


def _tracks_in(folder: Path, folder_split: str, source: str) -> list[Track]:
    tracks = []
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and entry.name.lower().endswith(".stem.mp4"):
            name = entry.name[: -len(".stem.mp4")]
            tracks.append(Track(name, musdb_split(folder_split, name), source, "stem_mp4", str(entry)))
        elif entry.is_dir() and _stem_folder_track(entry):
            tracks.append(Track(entry.name, musdb_split(folder_split, entry.name), source, "stem_folder",
                                str(entry)))
    return tracks


def _require_dir(root: Path) -> Path:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"dataset path {root} is not a folder")
    return root


def musdb_tracks(root: str | Path) -> list[Track]:
    """MUSDB18 (.stem.mp4) or MUSDB18-HQ (wav folders) under `root/train` and `root/test`."""
    root = _require_dir(Path(root))
    if not any((root / split).is_dir() for split in ("train", "test")):
        raise DatasetError(f"{root} has no train/ or test/ folder: expected the MUSDB18 layout "
                           "ROOT/{train,test}/NAME.stem.mp4 or ROOT/{train,test}/NAME/vocals.wav ...")
    tracks = [track for split in ("train", "test") if (root / split).is_dir()
              for track in _tracks_in(root / split, split, "musdb")]
    if not tracks:
        raise DatasetError(f"{root} holds no stems: no NAME.stem.mp4 and no NAME/{{{','.join(STEMS)}}}.wav "
                           "under train/ or test/")
    return tracks


def stem_folder_tracks(root: str | Path, split: str = "auto") -> list[Track]:
    """`root/TRACK/{vocals,drums,bass,other}.wav`; `split="auto"` uses `assign_splits`."""
    root = _require_dir(Path(root))
    if any((root / s).is_dir() for s in ("train", "test")):
        return musdb_tracks(root)
    tracks = [t for t in _tracks_in(root, "train", "stems") if t.kind == "stem_folder"]
    if not tracks:
        raise DatasetError(f"{root} holds no stems: expected sub-folders TRACK/ with "
                           f"{', '.join(s + '.wav' for s in STEMS)}")
    return _with_splits(tracks, split)


def sample_track(split: str = "train") -> list[Track]:
    """The stempeg wheel's MUSDB18-format sample, 'The Easton Ellises - Falcon 69' (6.08 s)."""
    import shutil

    if shutil.which("ffmpeg") is None:
        raise DatasetError("the stempeg sample is a .stem.mp4: decoding it needs ffmpeg (apt-get install ffmpeg)")
    from importlib.util import find_spec

    spec = find_spec("stempeg")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("stempeg is not installed, so its sample stem is not available")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    files = sorted(folder.glob("*.stem.mp4"))
    if not files:
        raise DatasetError(f"{folder} holds no .stem.mp4 sample; reinstall stempeg")
    return [Track(f.name[: -len(".stem.mp4")], _checked_split(split), "sample", "stem_mp4", str(f))
            for f in files]


def synthetic_tracks(count: int, duration_s: float = SYNTHETIC_DURATION_S, split: str = "auto",
                     first_seed: int = 0) -> list[Track]:
    if count < 1:
        raise DatasetError(f"--synthetic needs at least 1 track, got {count}")
    tracks = [Track(f"synthetic-{seed:04d}", "train", "synthetic", "synthetic", seed=seed, duration_s=duration_s)
              for seed in range(first_seed, first_seed + count)]
    return _with_splits(tracks, split)


def _checked_split(split: str) -> str:
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)} or auto")
    return split


def _with_splits(tracks: list[Track], split: str) -> list[Track]:
    from dataclasses import replace

    if split == "auto":
        splits = assign_splits([t.name for t in tracks])
        return [replace(t, split=splits[t.name]) for t in tracks]
    return [replace(t, split=_checked_split(split)) for t in tracks]
