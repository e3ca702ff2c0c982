"""Benchmark: the regression gate's error rates, by simulation with a known true FAD.

Songs are drawn from Gaussian worlds whose FAD is known exactly (tests/fad/simulation.py):
frames of a song share a song effect, and a candidate and a baseline generating the same song
share part of it. For each number of songs the script prints, over `--runs` simulated gates:
- the false-alarm rate (equal systems called a regression; the rule promises <= alpha),
- the power against candidates whose true FAD is 5%, 10% and 20% worse,
- the share of inconclusive verdicts and the median smallest detectable worsening (80% power),
- the same false-alarm rate for the old rule (paired bootstrap upper bound of the relative
  change above the margin), side by side.

    .venv/bin/python benchmarks/fad_gate.py                 # 20, 50, 200 songs, 200 runs
    .venv/bin/python benchmarks/fad_gate.py --runs 1000 --dim 16 --frames 10
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hafm_core.fad.gate import regression_gate  # noqa: E402
from hafm_core.fad.songs import SongMoments  # noqa: E402
from hafm_core.fad.uncertainty import paired_bootstrap  # noqa: E402
from tests.fad.simulation import World, paired_systems, real_songs  # noqa: E402


def old_rule_fails(background, candidate, baseline, margin: float, seed: int) -> bool:
    comparison = paired_bootstrap(SongMoments.from_songs(background), SongMoments.from_songs(candidate),
                                  SongMoments.from_songs(baseline), 200, seed)
    return comparison.relative_change_upper > margin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, nargs="+", default=[20, 50, 200])
    parser.add_argument("--worse", type=float, nargs="+", default=[0.05, 0.10, 0.20])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--permutations", type=int, default=199)
    parser.add_argument("--dim", type=int, default=8)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--margin", type=float, default=0.05)
    parser.add_argument("--alpha", type=float, default=0.05)
    args = parser.parse_args()
    world = World(dim=args.dim, frames=args.frames)
    mc = np.sqrt(args.alpha * (1 - args.alpha) / args.runs)
    print(f"d={args.dim}, {args.frames} frames/song, true baseline FAD {world.baseline_fad}, "
          f"margin {args.margin:.0%}, alpha {args.alpha}, {args.runs} runs, "
          f"{args.permutations} permutations (Monte Carlo s.e. of a 5% rate: {mc:.3f})")
    header = (f"{'songs':>6} {'worse':>6} {'regression':>11} {'pass':>6} {'inconcl.':>9} "
              f"{'median mde':>11} {'old rule fails':>15}")
    print(header)
    for n_songs in args.songs:
        for worse in [0.0, *args.worse]:
            rng = np.random.default_rng(1000 * n_songs + int(1000 * worse))
            verdicts, mdes, old = [], [], 0
            for run in range(args.runs):
                background = real_songs(rng, world, n_songs)
                candidate, baseline = paired_systems(rng, world, n_songs, worse)
                result = regression_gate(background, candidate, baseline, args.margin, args.alpha,
                                         args.permutations, seed=run)
                verdicts.append(result.verdict)
                mdes.append(result.detectable_relative_worsening)
                if worse == 0.0:
                    old += old_rule_fails(background, candidate, baseline, args.margin, run)
            rates = {v: verdicts.count(v) / args.runs for v in ("regression", "pass", "inconclusive")}
            old_text = f"{old / args.runs:.3f}" if worse == 0.0 else "-"
            print(f"{n_songs:>6} {worse:>6.0%} {rates['regression']:>11.3f} {rates['pass']:>6.3f} "
                  f"{rates['inconclusive']:>9.3f} {np.median(mdes):>11.1%} {old_text:>15}", flush=True)
    print("'regression' at worse=0% is the false-alarm rate; at 5/10/20% it is the power.")


if __name__ == "__main__":
    main()
