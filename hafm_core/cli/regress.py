"""`hafm regress --candidate DIR_OR_RUN --baseline DIR_OR_RUN --background DIR`.

Exit 0 when the candidate's FAD is not worse than the baseline's by more than
`--max-relative-increase` with 95% confidence (paired bootstrap over songs paired by file
name), 1 when it may be, 2 on bad input. Meant as a CI step for new checkpoints.
"""

from __future__ import annotations

import argparse
import json

from hafm_core.cli.args import check_cache_dir, int_at_least, nonnegative_float, seed

HELP = "Regression gate: is a candidate's FAD worse than a baseline's beyond a margin? (exit 1 if so)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--candidate", required=True, help="folder of the new checkpoint's audio, or a run")
    parser.add_argument("--baseline", required=True, help="folder of the reference checkpoint's audio, or a run")
    parser.add_argument("--background", required=True, help="folder of real accompaniments")
    parser.add_argument("--max-relative-increase", type=nonnegative_float, default=0.05,
                        help="allowed FAD increase as a fraction of the baseline's (default 0.05)")
    parser.add_argument("--embedder", default="vggish", help="logmel, vggish, encodec or crepe (default vggish)")
    parser.add_argument("--protocol", help="embedder protocol (default: the embedder's first)")
    parser.add_argument("--resamples", type=int_at_least(100), default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--seed", type=seed, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--device", help="torch device (default HAFM_DEVICE, else cuda when available)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def format_verdict(data: dict) -> str:
    diff, rel = data["difference"], data["relative_change"]
    verdict = "PASS" if data["passed"] else "REGRESSION"
    return "\n".join([
        f"{verdict}: candidate FAD {data['fad_candidate']:.4f}, baseline FAD {data['fad_baseline']:.4f} "
        f"({data['embedder']}, {data['protocol']}, {data['n_songs']} paired songs)",
        f"difference {diff['estimate']:+.4f} (95% CI {diff['low']:+.4f} to {diff['high']:+.4f})",
        f"relative change {rel['estimate']:+.2%} (95% CI {rel['low']:+.2%} to {rel['high']:+.2%}; "
        f"one-sided 95% upper bound {data['relative_change_upper']:+.2%}, margin {data['max_relative_increase']:+.2%})",
    ])


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
                               n_resamples=args.resamples, seed=args.seed)
    data = verdict.to_json()
    print(json.dumps(data) if args.json else format_verdict(data))
    return 0 if verdict.passed else 1
