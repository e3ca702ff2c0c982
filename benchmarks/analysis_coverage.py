"""Coverage and null rejection of the headline statistics on clustered crowd data (long run).

The longer version of tests/analysis/test_coverage.py: simulated studies with known truth
(`analysis.simulation`: 60 listeners x 20 excerpts per pair, listener SD 0.6 and excerpt SD 0.5
on the log-odds scale, a listener x excerpt interaction, a side bias; ratings with system x
listener SD 0.3 and system x excerpt SD 0.4). Prints, side by side, the two-way clustered
interval (t with min(G) - 1 df), the same with a normal quantile, and the independent-judgment
Wilson / binomial figures, each with its Monte Carlo standard error; and for ratings the
clustered test against Wilcoxon on (listener, excerpt) blocks (a sample of studies); and for
Bradley-Terry scores (`CrowdBradleyTerryConfig`: 4 systems, per-system listener and excerpt
effects) the coverage of the two-way interval at its 95% and a 90% level, on the same studies and
replicates.

    python benchmarks/analysis_coverage.py [--studies 5000] [--bt-studies 3000] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis.simulation import (  # noqa: E402
    CrowdBradleyTerryConfig,
    CrowdPreferenceConfig,
    CrowdRatingConfig,
    bradley_terry_truth,
    rating_frame,
    simulate_bradley_terry,
    simulate_preferences,
    simulate_ratings,
)
from analysis.stats.bradley_terry import bradley_terry  # noqa: E402
from analysis.stats.clustered import grid_rate_inference, grid_rating_differences  # noqa: E402
from analysis.stats.preference import binomial_p_half, wilson_interval  # noqa: E402
from analysis.stats.ratings import wilcoxon_pairs  # noqa: E402


def share(hits: np.ndarray) -> str:
    rate = float(np.mean(hits))
    return f"{100 * rate:5.1f}% +/- {100 * np.sqrt(rate * (1 - rate) / hits.size):.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=5000)
    parser.add_argument("--bt-studies", type=int, default=3000)
    parser.add_argument("--bt-boot", type=int, default=400)
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
    bradley_terry_coverage(args.bt_studies, args.bt_boot, rng)
    return 0


def bradley_terry_coverage(n_studies: int, n_boot: int, rng: np.random.Generator) -> None:
    """Coverage of the true Bradley-Terry scores (system s0 the anchor), per system, by the
    reported two-way interval at its 95% and at a 90% level (same studies, same replicates)."""
    config = CrowdBradleyTerryConfig()
    truth = bradley_terry_truth(config)[1:]
    systems = [f"s{i}" for i in range(1, len(config.strengths))]
    covered = {level: np.empty((n_studies, len(systems)), dtype=bool) for level in (0.95, 0.90)}
    for study in range(n_studies):
        judgments = simulate_bradley_terry(config, rng)
        for level, hits in covered.items():
            row = (bradley_terry(judgments, reference="s0", n_boot=n_boot, seed=study, confidence=level)
                   .set_index("system").loc[systems])
            hits[study] = (row.ci_low.to_numpy() <= truth) & (truth <= row.ci_high.to_numpy())
    print(f"Bradley-Terry, 4 systems, 60 listeners x 20 excerpts, {n_studies} studies, {n_boot} replicates per "
          f"clustering; coverage of the true scores of {', '.join(systems)}:")
    for level, hits in covered.items():
        print(f"  nominal {100 * level:.0f}%: " + "; ".join(share(hits[:, i]) for i in range(len(systems))))

if __name__ == "__main__":
    sys.exit(main())
