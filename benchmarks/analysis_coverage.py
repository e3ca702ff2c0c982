"""Coverage and null rejection of the headline statistics on clustered crowd data (long run).

The longer version of tests/analysis/test_coverage.py: simulated studies with known truth
(`analysis.simulation`: 60 listeners x 20 excerpts per pair, listener SD 0.6 and excerpt SD 0.5
on the log-odds scale, a listener x excerpt interaction, a side bias; ratings with system x
listener SD 0.3 and system x excerpt SD 0.4). Prints, side by side, the two-way clustered
interval (t with min(G) - 1 df), the same with a normal quantile, and the independent-judgment
Wilson / binomial figures, each with its Monte Carlo standard error; and for ratings the
clustered test against Wilcoxon on (listener, excerpt) blocks (a sample of studies).

    python benchmarks/analysis_coverage.py [--studies 5000] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis.simulation import (  # noqa: E402
    CrowdPreferenceConfig,
    CrowdRatingConfig,
    rating_frame,
    simulate_preferences,
    simulate_ratings,
)
from analysis.stats.clustered import grid_rate_inference, grid_rating_differences  # noqa: E402
from analysis.stats.preference import binomial_p_half, wilson_interval  # noqa: E402
from analysis.stats.ratings import wilcoxon_pairs  # noqa: E402


def share(hits: np.ndarray) -> str:
    rate = float(np.mean(hits))
    return f"{100 * rate:5.1f}% +/- {100 * np.sqrt(rate * (1 - rate) / hits.size):.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"{args.studies} simulated studies per line; +/- is one Monte Carlo standard error")
    for n_excerpts in (20, 10):
        truth = CrowdPreferenceConfig(true_rate=0.55, n_excerpts=n_excerpts)
        chosen, _ = simulate_preferences(truth, args.studies, rng)
        table = grid_rate_inference(chosen)
        covered = (table.ci_low <= 0.55) & (0.55 <= table.ci_high)
        z = 1.959963984540054
        normal = (np.abs(table.rate - 0.55) <= z * table.se_cluster)
        n = chosen.shape[1] * chosen.shape[2]
        wins = chosen.sum(axis=(1, 2))
        low, high = wilson_interval(wins, np.full_like(wins, n))
        print(f"60 listeners x {n_excerpts} excerpts, coverage of the true 0.55: clustered t {share(covered)}, "
              f"clustered normal {share(normal)}, Wilson {share((low <= 0.55) & (0.55 <= high))}")
        null, _ = simulate_preferences(CrowdPreferenceConfig(true_rate=0.5, n_excerpts=n_excerpts), args.studies, rng)
        table = grid_rate_inference(null)
        wins = null.sum(axis=(1, 2))
        print(f"  rejection of a true 0.5 at 5%: clustered t {share(table.p_value < 0.05)}, "
              f"binomial {share(binomial_p_half(wins, np.full_like(wins, n)) < 0.05)}")
    scores = simulate_ratings(CrowdRatingConfig(), args.studies, rng)
    p = np.stack([r["p_value"] for r in grid_rating_differences(scores).values()])
    print(f"ratings, equal systems with interactions, rejection at 5% per comparison: clustered t {share(p < 0.05)}; "
          f"Holm family-wise {share(np.sort(p, axis=0)[0] < 0.05 / p.shape[0])}")
    sample = min(300, args.studies)
    wilcoxon = np.concatenate([wilcoxon_pairs(rating_frame(scores[s]))["p_value"].to_numpy() for s in range(sample)])
    print(f"  Wilcoxon on (listener, excerpt) blocks, {sample} studies: {share(wilcoxon < 0.05)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
