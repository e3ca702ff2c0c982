"""The reported intervals keep their promise on clustered crowd data with known truth.

Simulated studies as in issue 14: 60 listeners x 20 excerpts per pair, listener and excerpt
random effects of SD 0.6 and 0.5 on the log-odds scale, a listener x excerpt interaction, a
side bias; ratings with system x listener and system x excerpt interactions. The simulation is
vectorised over studies and feeds the same covariance code as `clustered_rates` and
`rating_comparisons` (the first test checks the array path equals the DataFrame path).

With S studies the Monte Carlo SE of a 95% coverage is sqrt(.95 * .05 / S): S = 1500 gives
0.56 points, so 95% and 90% are 9 SEs apart and each assertion allows 3 SEs. A longer run:
`python benchmarks/analysis_coverage.py`.
"""

from dataclasses import replace

import numpy as np
import pytest

from analysis.simulation import (
    CrowdBradleyTerryConfig,
    CrowdPreferenceConfig,
    CrowdRatingConfig,
    bradley_terry_truth,
    preference_frame,
    rating_frame,
    simulate_bradley_terry,
    simulate_preferences,
    simulate_ratings,
)
from analysis.stats.bradley_terry import bradley_terry
from analysis.stats.clustered import (
    clustered_rates,
    grid_rate_inference,
    grid_rating_differences,
    rating_comparisons,
)

N_STUDIES = 1500
SEED = 20261127


def mc_band(rate, n):
    return 3 * np.sqrt(rate * (1 - rate) / n)


def test_vectorised_simulation_path_equals_the_dataframe_path():
    rng = np.random.default_rng(SEED)
    chosen, on_left = simulate_preferences(CrowdPreferenceConfig(n_listeners=15, n_excerpts=8), 3, rng)
    batched = grid_rate_inference(chosen)
    for s in range(3):
        row = clustered_rates(preference_frame(chosen[s], on_left[s])).iloc[0]
        for column in ("rate", "ci_low", "ci_high", "p_value", "se_cluster", "df"):
            assert row[column] == pytest.approx(batched[column].iloc[s], rel=1e-12)
    scores = simulate_ratings(CrowdRatingConfig(n_listeners=9, n_excerpts=7), 2, rng)
    batched = grid_rating_differences(scores)
    for s in range(2):
        table = rating_comparisons(rating_frame(scores[s]))[0]
        for row in table.itertuples(index=False):
            i, j = int(row.system[1:]), int(row.opponent[1:])
            assert row.p_value == pytest.approx(batched[(i, j)]["p_value"][s], rel=1e-10)


@pytest.mark.parametrize("n_excerpts", [20, 10])
def test_headline_preference_interval_covers_the_population_rate_at_95_percent(n_excerpts):
    """20 excerpts: the issue's design. 10 excerpts: the t(min(G) - 1) quantile matters (a
    normal quantile covered 92.2% there in 3000 studies)."""
    rng = np.random.default_rng(SEED + n_excerpts)
    config = CrowdPreferenceConfig(true_rate=0.55, n_excerpts=n_excerpts)
    chosen, _ = simulate_preferences(config, N_STUDIES, rng)
    table = grid_rate_inference(chosen)
    covered = ((table.ci_low <= config.true_rate) & (config.true_rate <= table.ci_high)).mean()
    assert abs(covered - 0.95) < mc_band(0.95, N_STUDIES), covered
    # The independent-judgment (binomial) SE is far too small on these data: design effect > 2.
    assert table.design_effect.median() > 2


def test_headline_preference_test_holds_its_size_under_a_true_null():
    rng = np.random.default_rng(SEED + 2)
    chosen, _ = simulate_preferences(CrowdPreferenceConfig(true_rate=0.5), N_STUDIES, rng)
    rejected = (grid_rate_inference(chosen).p_value < 0.05).mean()
    assert abs(rejected - 0.05) < mc_band(0.05, N_STUDIES), rejected


def test_rating_comparisons_hold_their_size_with_system_interactions():
    rng = np.random.default_rng(SEED + 3)
    scores = simulate_ratings(CrowdRatingConfig(), N_STUDIES, rng)
    results = grid_rating_differences(scores)
    p = np.stack([result["p_value"] for result in results.values()])  # [pairs, S]
    rejected = (p < 0.05).mean()  # per comparison, over 3 x S correlated tests
    assert abs(rejected - 0.05) < mc_band(0.05, N_STUDIES), rejected
    # Holm across the family: at most 5% of studies reject any true null.
    m = p.shape[0]
    family_rejects = (np.sort(p, axis=0)[0] < 0.05 / m).mean()
    assert family_rejects <= 0.05 + mc_band(0.05, N_STUDIES), family_rejects


BT_STUDIES = 1000
BT_BOOT = 200


def test_bradley_terry_intervals_cover_the_true_scores_at_95_percent():
    """4 systems with known strengths, 60 listeners x 20 excerpts (one random pair per cell),
    per-system listener and excerpt effects of SD 0.6 and 0.5, a judgment-level SD of 0.3 and
    a side bias (`CrowdBradleyTerryConfig`); truth: the attenuated scores the fit estimates
    (`bradley_terry_truth`). Each study is fitted by `bradley_terry` itself (BT_BOOT replicates
    per clustering), so this takes about 15 s.

    BT_STUDIES = 1000 studies: the Monte Carlo SE of one interval's coverage near 95% is
    sqrt(.95 * .05 / 1000) = 0.69 points; the mean over a study's three intervals has at most
    that SE. The assertion allows 3 SEs (2.1 points): 90% is 7 SEs below 95%. (Listener-only
    resampling covered 79% in the issue; 3000 studies at 400 replicates gave 94.8%, see
    `benchmarks/analysis_coverage.py`.)"""
    config = CrowdBradleyTerryConfig()
    truth = bradley_terry_truth(config)
    still = replace(config, sd_listener=0.0, sd_excerpt=0.0, sd_interaction=0.0, side_bias=0.0)
    assert bradley_terry_truth(still) == pytest.approx(config.strengths, abs=1e-6)
    assert truth[-1] < config.strengths[-1] - 0.1  # the random effects attenuate the scores
    systems = [f"s{i}" for i in range(1, len(truth))]
    rng = np.random.default_rng(SEED + 4)
    covered = np.empty((BT_STUDIES, len(systems)), dtype=bool)
    for study in range(BT_STUDIES):
        table = bradley_terry(simulate_bradley_terry(config, rng), reference="s0", n_boot=BT_BOOT, seed=study)
        row = table.set_index("system").loc[systems]
        covered[study] = (row.ci_low.to_numpy() <= truth[1:]) & (truth[1:] <= row.ci_high.to_numpy())
    assert abs(covered.mean() - 0.95) < mc_band(0.95, BT_STUDIES), covered.mean(axis=0)
