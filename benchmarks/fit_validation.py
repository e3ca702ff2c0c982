"""Paired AUC of every fit metric against every manipulation, on the real stem and synthetic songs.

Claim (issue 16): each metric separates the manipulations it is meant to catch
(`hafm_core.fit.validation.CLAIMS`, AUC >= 0.8) on the real MUSDB18 stem shipped with stempeg
(3 s windows) and on realistic synthetic songs; a failed excerpt counts as the worst score.

    python benchmarks/fit_validation.py [--songs 8] [--duration 6] [--real-only | --synthetic-only]

Prints one table per source (metrics x manipulations) and the claims that fail.
The test suite runs a smaller version (tests/fit/test_validation.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=8, help="synthetic songs (styles in turn; default 8)")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per synthetic song (default 6)")
    parser.add_argument("--seed", type=int, default=1000, help="first song seed (default 1000)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--real-only", action="store_true")
    source.add_argument("--synthetic-only", action="store_true")
    args = parser.parse_args()

    from hafm_core.fit import METRIC_NAMES, fit_excerpts
    from hafm_core.fit.validation import (
        CLAIMS,
        auc_table,
        format_table,
        real_windows,
        synthetic_songs,
    )

    groups = {}
    if not args.synthetic_only:
        import stempeg

        from hafm_core.audio import read_stems

        stems, rate = read_stems(stempeg.example_stem_path(), sample_rate_hz=22_050)
        groups["real stem (stempeg, 3 s windows)"] = real_windows(stems, rate, tempo_bpm=117.0)
    if not args.real_only:
        groups[f"synthetic songs ({args.songs}, {args.duration:g} s)"] = synthetic_songs(
            range(args.seed, args.seed + args.songs), duration_s=args.duration)
    failures = []
    for title, cases in groups.items():
        results = fit_excerpts([c.excerpt for c in cases])
        statuses = sorted({(c.manipulation, r.status) for c, r in zip(cases, results) if not r.ok})
        table = auc_table(cases, results, METRIC_NAMES)
        print(format_table(table, f"paired AUC, {title}"))
        if statuses:
            print("non-ok (manipulation, status):", ", ".join(f"{m}:{s}" for m, s in statuses))
        failures += [f"{title}: {metric} vs {kind} AUC {table[metric][kind]:.2f}"
                     for metric, kinds in CLAIMS.items() for kind in kinds if table[metric][kind] < 0.8]
        print()
    print("claims failing (AUC < 0.8):" if failures else "every claim holds (AUC >= 0.8)")
    for line in failures:
        print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
