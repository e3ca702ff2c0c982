"""Tracks -> vocal-active excerpts written as 24 kHz mono wavs + a JSON Lines manifest.

Each excerpt is stored as two float32 mono wavs at 24 kHz (EnCodec's rate; the semantic
tokenizer resamples to 16 kHz itself): the vocal and the accompaniment (drums + bass + other).
Stems are resampled once per track with soxr before cutting, so excerpt boundaries are exact
sample indices: `start_s * 24 000` and `duration_s * 24 000`, both multiples of 960 (40 ms).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hafm_core import constants
from hafm_core.audio import check_audio, samples_sha256, write_audio
from hafm_core.data.excerpts import choose_excerpts
from hafm_core.data.manifest import MANIFEST_NAME, ExcerptRecord, write_manifest
from hafm_core.data.sources import Track, load_stems
from hafm_core.errors import DatasetError, OutputPathError
from hafm_core.provenance import sha256_bytes

log = logging.getLogger(__name__)

EXCERPT_SAMPLE_RATE_HZ = constants.ACOUSTIC_SAMPLE_RATE_HZ


@dataclass(frozen=True)
class PrepareConfig:
    excerpt_s: float = constants.EXCERPT_DURATION_S
    stride_s: float | None = None  # None: excerpt_s (no overlap)
    max_excerpts_per_track: int | None = None


@dataclass(frozen=True)
class PrepareResult:
    manifest_path: Path
    n_tracks: int
    n_excerpts: int
    excerpts_by_split: dict[str, int] = field(default_factory=dict)
    tracks_without_vocals: tuple[str, ...] = ()
    replaced: str | None = None  # what an `overwrite` replaced, e.g. "a manifest of 12 excerpts"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "track"


def _track_label(track: Track) -> str:
    return track.path or track.name


def excerpts_of_track(track: Track, out_dir: Path, config: PrepareConfig) -> list[ExcerptRecord]:
    """Cut one track into excerpt wavs under `out_dir/audio/SPLIT/TRACK/` and describe them."""
    rate = EXCERPT_SAMPLE_RATE_HZ
    stems = load_stems(track, rate)
    vocal = stems["vocals"]
    accompaniment = (stems["drums"] + stems["bass"] + stems["other"]).astype(np.float32)
    label = _track_label(track)
    check_audio(vocal, rate, f"{label} (vocals)", min_duration_s=config.excerpt_s)
    for name in ("drums", "bass", "other"):  # one stem may be silent; their float sum may exceed 1
        check_audio(stems[name], rate, f"{label} ({name})", allow_silent=True)
    if float(np.abs(accompaniment).max()) < 1e-5:
        check_audio(accompaniment, rate, f"{label} (drums+bass+other)")  # raises: all silent
    spans = choose_excerpts(vocal, rate, config.excerpt_s, config.stride_s, config.max_excerpts_per_track)
    folder = Path("audio") / track.split / _slug(track.name)
    records = []
    for span in spans:
        start = int(round(span.start_s * rate))
        stop = start + int(round(span.duration_s * rate))
        stem = f"{int(round(span.start_s * 1000)):07d}ms"
        vocal_rel = folder / f"{stem}.vocal.wav"
        accompaniment_rel = folder / f"{stem}.accompaniment.wav"
        write_audio(out_dir / vocal_rel, vocal[start:stop], rate)
        write_audio(out_dir / accompaniment_rel, accompaniment[start:stop], rate)
        vocal_sha = samples_sha256(vocal[start:stop], rate)
        accompaniment_sha = samples_sha256(accompaniment[start:stop], rate)
        records.append(ExcerptRecord(
            excerpt_id=f"{_slug(track.name)}@{stem}", track=track.name, split=track.split,
            source=track.source, start_s=span.start_s, duration_s=span.duration_s, sample_rate_hz=rate,
            vocal_path=vocal_rel.as_posix(), accompaniment_path=accompaniment_rel.as_posix(),
            vocal_sha256=vocal_sha, accompaniment_sha256=accompaniment_sha,
            content_sha256=sha256_bytes(f"{vocal_sha}:{accompaniment_sha}".encode()),
            vocal_active_fraction=round(span.active_fraction, 4),
        ))
    return records


def describe_existing(out_dir: Path) -> str | None:
    """What a prepared folder holds ("a manifest of N excerpts and M files"), None when empty."""
    if not out_dir.is_dir():
        return None
    files = [p for p in out_dir.rglob("*") if p.is_file()]
    if not files:
        return None
    manifest = out_dir / MANIFEST_NAME
    if manifest.is_file():
        n_lines = sum(1 for line in manifest.read_text(errors="replace").splitlines() if line.strip())
        return f"a manifest of {n_lines} excerpts and {len(files)} files"
    return f"{len(files)} files"


def refuse_replacing(out_dir: Path, overwrite: bool) -> str | None:
    """What `out_dir` holds (see `describe_existing`); `OutputPathError` if it holds anything
    and `overwrite` is False."""
    existing = describe_existing(Path(out_dir))
    if existing and not overwrite:
        raise OutputPathError(f"output folder {out_dir} already holds {existing}; pass --overwrite "
                              "to replace it or choose another --out")
    return existing


def prepare_dataset(tracks: list[Track], out_dir: str | Path, config: PrepareConfig = PrepareConfig(),
                    progress: bool = False, overwrite: bool = False) -> PrepareResult:
    """Write every track's excerpts and `out_dir/manifest.jsonl`; tracks with no active vocal are skipped.

    All-or-nothing: the folder is built in a hidden sibling and swapped into place at the end,
    so a failure (bad track, full disk, Ctrl-C) leaves an existing `out_dir` exactly as it
    was. A non-empty `out_dir` is an `OutputPathError` unless `overwrite`; then it is replaced
    as a whole (no stale wavs of the old manifest stay) and `PrepareResult.replaced` says what.
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    existing = refuse_replacing(out_dir, overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        records: list[ExcerptRecord] = []
        without_vocals = []
        for track in tqdm(tracks, desc="tracks", unit="track", disable=not progress):
            track_records = excerpts_of_track(track, staging, config)
            if not track_records:
                log.warning("%s: no %g s excerpt with an active vocal; skipped", _track_label(track),
                            config.excerpt_s)
                without_vocals.append(track.name)
            records.extend(track_records)
        if not records:
            raise DatasetError(f"no excerpt with an active vocal in {len(tracks)} track(s) "
                               f"({', '.join(t.name for t in tracks[:5])}): nothing to write")
        write_manifest(staging / MANIFEST_NAME, records)
        staging.chmod(0o755)
        _swap_into_place(staging, out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return PrepareResult(out_dir / MANIFEST_NAME, len(tracks), len(records),
                         dict(Counter(r.split for r in records)), tuple(without_vocals), existing)


def _swap_into_place(staging: Path, out_dir: Path) -> None:
    """Rename `staging` to `out_dir`; an existing `out_dir` is moved aside first, then deleted."""
    if not out_dir.exists():
        os.rename(staging, out_dir)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.replaced-", dir=out_dir.parent))
    os.rename(out_dir, retired / out_dir.name)
    try:
        os.rename(staging, out_dir)
    except OSError:
        os.rename(retired / out_dir.name, out_dir)  # put the old folder back
        raise
    shutil.rmtree(retired, ignore_errors=True)
