"""Paired AUC of every fit metric against every manipulation, on real and synthetic songs, with song-bootstrap intervals.

Claim (issue 16): each metric separates the manipulations it is meant to catch
(`hafm_core.fit.validation.CLAIMS`, AUC >= 0.8) on real songs and on realistic synthetic
songs; a failed excerpt counts as the worst score.

    python benchmarks/fit_validation.py [--songs 8] [--duration 6] [--real-only | --synthetic-only]
    python benchmarks/fit_validation.py --musdb PATH [--split test|train|all] [--tracks N]
        [--windows-per-track K] [--window-s S] [--chunk-tracks C]

Without `--musdb`: 7 overlapping 3 s windows of the one real MUSDB18 song that ships with
stempeg (tempo 117 BPM, given) and `--songs` synthetic songs (`hafm_core.fit.songs`).

With `--musdb PATH` (your MUSDB18 or MUSDB18-HQ folder: PATH/{train,test}/NAME.stem.mp4 or
PATH/{train,test}/NAME/{vocals,drums,bass,other}.wav; nothing is downloaded), only the MUSDB
tracks are measured: `--tracks` of the `--split` (`train` holds MUSDB's validation tracks too)
in name order, `--windows-per-track` windows of `--window-s` seconds each
(`hafm_core.fit.track_windows`: tempo from librosa's beat tracker on the accompaniment,
folded into 70-140 BPM; windows whose vocal is 20 dB or more below the accompaniment are
skipped and counted). One line per track records its tempo (folded) and the beat tracker's;
check it: a syncopated pattern can be tracked at 4/3 of its tempo, which octave folding does
not fix (the synthetic funk songs at 96 BPM are tracked at 129). Tracks are measured
`--chunk-tracks` at a time (memory stays bounded), progress on stderr. For the 50 test
tracks at 4 windows, about 2,800 excerpts of 3 s: 15-30 min on one CPU core (extrapolated
from tests/fit/test_musdb_validation.py, 84 excerpts in 15-45 s; not measured on MUSDB).
A missing or invalid PATH is exit 2 with one line naming it.

Prints per source the AUC table (metrics x manipulations), its 95% interval table, then the
claims that fail (AUC < 0.8) with their intervals, and the claims met whose interval reaches
below 0.5. The interval is a cluster bootstrap over songs
(`hafm_core.fit.validation.song_bootstrap`): windows of one song share a voice, mix and
tempo, so they are not independent evidence; resampling songs, not windows, gives the range
of AUCs another set of songs like these could give. A lower end below 0.5 means the metric
is not distinguishable from chance on these songs. With one song (the stempeg windows) there
is no interval: its AUC says nothing about other songs.
The test suite runs a smaller version (tests/fit/test_validation.py, tests/fit/test_musdb_validation.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SAMPLE_RATE_HZ = 22_050
SPLITS = {"test": ("test",), "train": ("train", "validation"), "all": ("train", "validation", "test")}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=8, help="synthetic songs (styles in turn; default 8)")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per synthetic song (default 6)")
    parser.add_argument("--seed", type=int, default=1000, help="first song seed (default 1000)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--real-only", action="store_true")
    source.add_argument("--synthetic-only", action="store_true")
    source.add_argument("--musdb", type=Path, help="a MUSDB18 or MUSDB18-HQ folder: measure its tracks only")
    parser.add_argument("--split", choices=tuple(SPLITS), default="test", help="MUSDB tracks (default test)")
    parser.add_argument("--tracks", type=int, default=None, help="first N MUSDB tracks of the split (default all)")
    parser.add_argument("--windows-per-track", type=int, default=4, help="windows per MUSDB track (default 4)")
    parser.add_argument("--window-s", type=float, default=3.0, help="MUSDB window length in s (default 3)")
    parser.add_argument("--chunk-tracks", type=int, default=4, help="MUSDB tracks measured at a time (default 4)")
    return parser.parse_args(argv)


def musdb_selection(root: Path, split: str, count: int | None) -> list:
    """The tracks to measure; a `DatasetError` names what is wrong with `root`."""
    from hafm_core.data.sources import musdb_tracks
    from hafm_core.errors import DatasetError

    tracks = [t for t in musdb_tracks(root) if t.split in SPLITS[split]]
    if not tracks:
        raise DatasetError(f"{root} holds no {split} tracks")
    if count is not None and count < 1:
        raise DatasetError(f"--tracks needs at least 1 track, got {count}")
    return tracks[:count]


def musdb_cases(tracks: list, windows: int, window_s: float, chunk: int) -> tuple[list, list]:
    """(cases without their audio, results) of every track, `chunk` tracks scored at a time."""
    from hafm_core.crepe import CrepeTiny
    from hafm_core.data.sources import load_stems
    from hafm_core.fit import fit_excerpts
    from hafm_core.fit.track_windows import track_windows

    model = CrepeTiny.load()
    kept, results = [], []
    for first in range(0, len(tracks), chunk):
        cases = []
        for track in tracks[first:first + chunk]:
            found = track_windows(load_stems(track, SAMPLE_RATE_HZ), SAMPLE_RATE_HZ, track.name, windows, window_s)
            print("  " + found.summary() + ("" if found.tempo_bpm else ": no beat found, skipped"))
            cases += found.cases
        results += fit_excerpts([c.excerpt for c in cases], model=model)
        kept += [c.without_audio() for c in cases]
        print(f"tracks done: {min(first + chunk, len(tracks))}/{len(tracks)}", file=sys.stderr, flush=True)
    return kept, results


def report(groups: dict) -> None:
    """Tables per source, then the claims that fail and the met claims indistinguishable from chance."""
    from hafm_core.fit import METRIC_NAMES
    from hafm_core.fit.validation import (
        CLAIMS,
        auc_intervals,
        auc_table,
        format_intervals,
        format_table,
    )

    failures, chance = [], []
    for title, (cases, results) in groups.items():
        if not cases:
            print(f"{title}: no windows measured\n")
            continue
        statuses = sorted({(c.manipulation, r.status) for c, r in zip(cases, results) if not r.ok})
        print(format_table(auc_table(cases, results, METRIC_NAMES), f"paired AUC, {title}"))
        intervals = auc_intervals(cases, results, METRIC_NAMES)
        print(format_intervals(intervals, f"paired AUC, {title}"))
        if statuses:
            print("non-ok (manipulation, status):", ", ".join(f"{m}:{s}" for m, s in statuses))
        for metric, kinds in CLAIMS.items():
            for kind in kinds:
                found = intervals[metric][kind]
                line = f"{title}: {metric} vs {kind} {found}"
                if found.auc < 0.8:
                    failures.append(line + (": lower end below 0.5, not distinguishable from chance"
                                            if found.low is not None and found.low < 0.5 else ""))
                elif found.low is not None and found.low < 0.5:
                    chance.append(line)
        print()
    print("claims failing (AUC < 0.8):" if failures else "every claim met (AUC >= 0.8)")
    for line in failures:
        print("  " + line)
    print("claims met (AUC >= 0.8) whose interval reaches below 0.5 (not distinguishable from chance):"
          if chance else "no claim met has an interval reaching below 0.5")
    for line in chance:
        print("  " + line)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from hafm_core.errors import HafmError
    from hafm_core.fit import fit_excerpts
    from hafm_core.fit.validation import real_windows, synthetic_songs

    groups = {}
    if args.musdb is not None:
        try:
            tracks = musdb_selection(args.musdb, args.split, args.tracks)
            title = f"MUSDB18 {args.split} ({len(tracks)} tracks, {args.window_s:g} s windows)"
            print(f"{title}:")
            groups[title] = musdb_cases(tracks, args.windows_per_track, args.window_s, args.chunk_tracks)
        except HafmError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print()
    else:
        if not args.synthetic_only:
            import stempeg

            from hafm_core.audio import read_stems

            stems, rate = read_stems(stempeg.example_stem_path(), sample_rate_hz=SAMPLE_RATE_HZ)
            cases = real_windows(stems, rate, tempo_bpm=117.0, song="stempeg sample")
            groups["real stem (stempeg, 3 s windows)"] = cases, fit_excerpts([c.excerpt for c in cases])
        if not args.real_only:
            cases = synthetic_songs(range(args.seed, args.seed + args.songs), duration_s=args.duration)
            groups[f"synthetic songs ({args.songs}, {args.duration:g} s)"] = \
                cases, fit_excerpts([c.excerpt for c in cases])
    report(groups)
    return 0


if __name__ == "__main__":
    sys.exit(main())
