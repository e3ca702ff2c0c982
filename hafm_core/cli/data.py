"""`hafm data prepare`: cut a dataset into vocal-active excerpts and write a manifest."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hafm_core.cli.args import check_output_dir, float_at_least, positive_float, positive_int

HELP = "prepare datasets: vocal-active excerpts (24 kHz wavs) and a JSON Lines manifest"
SAMPLE_EXCERPT_S = 6.0  # the stempeg sample lasts 6.08 s
MIN_DURATION_S = 0.04  # one 40 ms unit (2 semantic, 3 acoustic frames): excerpts are whole units
SPLIT_CHOICES = ("auto", "train", "validation", "test")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    prepare = sub.add_parser("prepare", help="cut tracks into excerpts and write OUT/manifest.jsonl")
    source = prepare.add_mutually_exclusive_group(required=True)
    source.add_argument("--musdb", type=Path, metavar="PATH", help="MUSDB18 (.stem.mp4) or MUSDB18-HQ root")
    source.add_argument("--stems", type=Path, metavar="PATH", help="folder of TRACK/{vocals,drums,bass,other}.wav")
    source.add_argument("--sample", action="store_true", help="the MUSDB18-format sample shipped with stempeg")
    source.add_argument("--synthetic", type=positive_int, metavar="N", help="N seeded synthetic tracks")
    prepare.add_argument("--out", type=Path, required=True,
                         help="output folder (built beside it and swapped in when complete)")
    prepare.add_argument("--overwrite", action="store_true",
                         help="replace a folder that already holds files (as a whole: no stale wavs stay)")
    prepare.add_argument("--excerpt-s", type=float_at_least(MIN_DURATION_S), default=None,
                         help=f"excerpt duration (default 10 s; {SAMPLE_EXCERPT_S:g} s for --sample)")
    prepare.add_argument("--stride-s", type=float_at_least(MIN_DURATION_S), default=None,
                         help="start-time grid (default: excerpt duration)")
    prepare.add_argument("--max-per-track", type=positive_int, default=None,
                         help="at most this many excerpts per track")
    prepare.add_argument("--split", default="auto", choices=SPLIT_CHOICES,
                         help="train/validation/test for --stems, --sample, --synthetic (auto: by name; "
                              "--sample: train); MUSDB18 uses its official split")
    prepare.add_argument("--synthetic-duration-s", type=positive_float, default=12.0,
                         help="length of synthetic tracks")
    prepare.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from hafm_core.data import sources
    from hafm_core.data.prepare import PrepareConfig, prepare_dataset, refuse_replacing

    check_output_dir(args.out)
    refuse_replacing(args.out, args.overwrite)  # before any track is read

    if args.musdb is not None:
        tracks = sources.musdb_tracks(args.musdb)
    elif args.stems is not None:
        tracks = sources.stem_folder_tracks(args.stems, args.split)
    elif args.sample:
        tracks = sources.sample_track("train" if args.split == "auto" else args.split)
    else:
        tracks = sources.synthetic_tracks(args.synthetic, args.synthetic_duration_s, args.split)
    excerpt_s = args.excerpt_s if args.excerpt_s is not None else (SAMPLE_EXCERPT_S if args.sample else 10.0)
    config = PrepareConfig(excerpt_s=excerpt_s, stride_s=args.stride_s, max_excerpts_per_track=args.max_per_track)
    result = prepare_dataset(tracks, args.out, config, progress=not args.json, overwrite=args.overwrite)
    summary = {"manifest": str(result.manifest_path), "n_tracks": result.n_tracks, "n_excerpts": result.n_excerpts,
               "excerpts_by_split": result.excerpts_by_split, "excerpt_s": excerpt_s,
               "tracks_without_vocals": list(result.tracks_without_vocals), "replaced": result.replaced}
    if args.json:
        print(json.dumps(summary))
    else:
        if result.replaced:
            print(f"replaced {args.out}, which held {result.replaced}")
        print(f"{result.n_excerpts} excerpts of {excerpt_s:g} s from {result.n_tracks} tracks "
              f"({', '.join(f'{k}: {v}' for k, v in sorted(result.excerpts_by_split.items()))}) -> {result.manifest_path}")
    return 0
