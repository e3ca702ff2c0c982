"""`hafm regress --candidate DIR_OR_RUN --baseline DIR_OR_RUN --background DIR`.

A CI step for new checkpoints. Songs are paired by file name. Exit codes:
  0  pass: not detectably worse, and a worsening of `--max-relative-increase` would have been
     detected (80% power) at this number of songs;
  1  regression: the candidate's FAD is worse than the baseline's (paired permutation test,
     one-sided, false-alarm rate at most `--alpha` for equal systems at any number of songs);
  3  inconclusive: not detectably worse, but too few songs to detect a worsening of the margin;
     the output names the smallest detectable worsening and the songs needed;
  2  bad input or any failure (never 1: a crash must not read as a regression).
"""

from __future__ import annotations

import argparse
import json

from hafm_core.cli.args import (
    check_cache_dir,
    int_at_least,
    open_unit_interval,
    positive_float,
    seed,
)

HELP = ("Regression gate: is a candidate's FAD worse than a baseline's? "
        "(exit 0 pass, 1 regression, 3 inconclusive, 2 error)")
EXIT_CODES = {"pass": 0, "regression": 1, "inconclusive": 3}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--candidate", required=True, help="folder of the new checkpoint's audio, or a run")
    parser.add_argument("--baseline", required=True, help="folder of the reference checkpoint's audio, or a run")
    parser.add_argument("--background", required=True, help="folder of real accompaniments")
    parser.add_argument("--max-relative-increase", type=positive_float, default=0.05,
                        help="the FAD worsening (fraction of the baseline's n-free FAD) the gate must be "
                             "able to detect before it passes (default 0.05)")
    parser.add_argument("--alpha", type=open_unit_interval, default=0.05,
                        help="false-alarm rate for equal systems (default 0.05)")
    parser.add_argument("--embedder", default="vggish", help="logmel, vggish, encodec or crepe (default vggish)")
    parser.add_argument("--protocol", help="embedder protocol (default: the embedder's first)")
    parser.add_argument("--permutations", "--resamples", dest="permutations", type=int_at_least(99),
                        default=999, help="random song swaps of the permutation test (default 999)")
    parser.add_argument("--seed", type=seed, default=0, help="permutation seed (default 0)")
    parser.add_argument("--device", help="torch device (default HAFM_DEVICE, else cuda when available)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def format_verdict(data: dict) -> str:
    lines = [
        f"{data['verdict'].upper()}: candidate FAD {data['fad_candidate']:.4f}, baseline FAD "
        f"{data['fad_baseline']:.4f} at n={data['n_songs']} paired songs ({data['embedder']}, "
        f"{data['protocol']})",
        f"difference {data['difference']:+.4f}, {data['relative_change']:+.2%} of the baseline's "
        f"n-free FAD {data['fad_baseline_inf']:.4f}; one-sided p = {data['p_value']:.4f} "
        f"(alpha {data['alpha']}, {data['method']})",
        f"smallest worsening detectable at this n ({data['power']:.0%} power): "
        f"{data['detectable_relative_worsening']:+.2%} (margin {data['max_relative_increase']:+.2%})",
    ]
    if data["verdict"] == "inconclusive":
        more = (f"about {data['songs_needed']} songs would detect the margin"
                if data["songs_needed"] else "the baseline's n-free FAD is not positive")
        lines.append(f"too few songs to tell: {more}")
    return "\n".join(lines)


def run(args) -> int:
    import sys

    from hafm_core.fad.cache import EmbeddingCache
    from hafm_core.fad.embedders import load_embedder
    from hafm_core.fad.regression import check_regression, resolve_set

    check_cache_dir(not args.no_cache)
    background = resolve_set(args.background, "background")
    candidate = resolve_set(args.candidate, "candidate")
    baseline = resolve_set(args.baseline, "baseline")
    embedder = load_embedder(args.embedder, args.protocol, args.device)
    if not args.json:  # --json: stderr carries errors only
        print(f"hafm regress: embedding with {embedder.protocol} ...", file=sys.stderr)
    verdict = check_regression(background, candidate, baseline, embedder,
                               cache=None if args.no_cache else EmbeddingCache(),
                               max_relative_increase=args.max_relative_increase,
                               n_permutations=args.permutations, seed=args.seed, alpha=args.alpha)
    data = verdict.to_json()
    print(json.dumps(data) if args.json else format_verdict(data))
    return EXIT_CODES[verdict.verdict]
