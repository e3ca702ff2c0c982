"""Two-way clustered inference against statsmodels and scipy, and degenerate data reported
honestly (never a zero-width interval or p = 0)."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests

from analysis.simulation import CrowdRatingConfig, rating_frame, simulate_ratings
from analysis.stats.bradley_terry import bradley_terry
from analysis.stats.clustered import clustered_rates, holm, rating_comparisons
from analysis.stats.study import analyze_study


def crowd_preferences(seed=1, n_listeners=25, n_excerpts=12, keep=0.7, pairs=(("three-stage", "ground-truth"),)):
    """An unbalanced crossed design with listener and excerpt effects per pair."""
    rng = np.random.default_rng(seed)
    rows = []
    for system, opponent in pairs:
        u, v = rng.normal(0, 0.6, n_listeners), rng.normal(0, 0.5, n_excerpts)
        for listener in range(n_listeners):
            for excerpt in range(n_excerpts):
                if rng.random() < keep:
                    left = rng.random() < 0.5
                    won = rng.random() < 1 / (1 + np.exp(-(0.2 + u[listener] + v[excerpt])))
                    rows.append((f"p{listener}", f"e{excerpt}", system if left else opponent,
                                 opponent if left else system, "left" if won == left else "right"))
    return pd.DataFrame(rows, columns=["participant", "excerpt", "system_left", "system_right", "chosen"])


def statsmodels_two_way(y, X, df):
    groups = np.column_stack([pd.factorize(df.participant)[0], pd.factorize(df.excerpt)[0]])
    return sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": groups})


def test_rate_interval_is_the_statsmodels_two_way_cluster_robust_one_with_a_t_quantile():
    df = crowd_preferences()
    row = clustered_rates(df).iloc[0]
    y = np.where(df.system_left == "three-stage", df.chosen == "left", df.chosen == "right").astype(float)
    fit = statsmodels_two_way(y, np.ones((len(y), 1)), df)
    assert row.rate == pytest.approx(fit.params[0])
    assert row.se_cluster == pytest.approx(fit.bse[0], rel=1e-10)
    df_t = min(df.participant.nunique(), df.excerpt.nunique()) - 1
    assert row.df == df_t
    q = stats.t.ppf(0.975, df_t)
    assert (row.ci_low, row.ci_high) == pytest.approx((fit.params[0] - q * fit.bse[0], fit.params[0] + q * fit.bse[0]))
    assert row.p_value == pytest.approx(2 * stats.t.sf(abs(fit.params[0] - 0.5) / fit.bse[0], df_t))
    # The independent-judgment figures stay, labelled.
    low, high = sm.stats.proportion_confint(row.wins, row.n, method="wilson")
    assert (row.ci_low_wilson, row.ci_high_wilson) == pytest.approx((low, high))
    assert row.p_value_binomial == pytest.approx(stats.binomtest(int(row.wins), int(row.n)).pvalue)
    assert "two-way" in row.method and "listener and excerpt" in row.unit


def test_holm_across_preference_pairs_matches_statsmodels():
    pairs = (("three-stage", "ground-truth"), ("three-stage", "two-stage"), ("two-stage", "random"))
    table = clustered_rates(crowd_preferences(seed=3, pairs=pairs))
    expected = multipletests(table["p_value"], method="holm")[1]
    assert table["p_holm"].to_numpy() == pytest.approx(expected)
    assert holm(np.array([0.01, np.nan, 0.04])) == pytest.approx(np.array([0.02, np.nan, 0.04]), nan_ok=True)


def test_rating_differences_are_the_statsmodels_two_way_contrasts():
    scores = simulate_ratings(CrowdRatingConfig(n_listeners=12, n_excerpts=9), 1, np.random.default_rng(4))[0]
    df = rating_frame(scores).sample(frac=0.8, random_state=2)  # unbalanced
    comparisons, means = rating_comparisons(df)
    dummies = pd.get_dummies(df.system).astype(float)
    fit = statsmodels_two_way(df.score.to_numpy(float), dummies.to_numpy(), df)
    cov = fit.cov_params()
    names = list(dummies.columns)
    df_t = min(df.participant.nunique(), df.excerpt.nunique()) - 1
    for row in comparisons.itertuples(index=False):
        i, j = names.index(row.system), names.index(row.opponent)
        se = np.sqrt(cov[i, i] + cov[j, j] - 2 * cov[i, j])
        assert row.mean_difference == pytest.approx(fit.params[i] - fit.params[j])
        assert row.se_cluster == pytest.approx(se, rel=1e-10)
        assert row.p_value == pytest.approx(2 * stats.t.sf(abs(row.mean_difference) / se, df_t))
    assert comparisons["p_holm"].to_numpy() == pytest.approx(multipletests(comparisons["p_value"], method="holm")[1])
    for row in means.itertuples(index=False):
        i = names.index(row.system)
        assert row.se_cluster == pytest.approx(fit.bse[i], rel=1e-10)


def test_holm_family_is_every_rating_comparison_across_attributes():
    rng = np.random.default_rng(5)
    scores = simulate_ratings(CrowdRatingConfig(n_listeners=10, n_excerpts=8), 2, rng)
    df = pd.concat([rating_frame(scores[0], "a"), rating_frame(scores[1], "b")], ignore_index=True)
    comparisons, _ = rating_comparisons(df)
    assert len(comparisons) == 6
    assert comparisons["p_holm"].to_numpy() == pytest.approx(multipletests(comparisons["p_value"], method="holm")[1])


def one_way(n, chosen="left", listeners=None, excerpts=None):
    return pd.DataFrame({
        "participant": listeners if listeners is not None else [f"p{i % 30}" for i in range(n)],
        "excerpt": excerpts if excerpts is not None else [f"e{i % 7}" for i in range(n)],
        "system_left": ["three-stage"] * n, "system_right": ["ground-truth"] * n, "chosen": [chosen] * n,
    })


@pytest.mark.parametrize("df, reason", [
    (one_way(300), "separation"),
    (one_way(1), "at least 2 listeners"),
    (one_way(40, listeners=["solo"] * 40).assign(chosen=["left", "right"] * 20), "at least 2 listeners"),
    (one_way(40, excerpts=["only"] * 40).assign(chosen=["left", "right"] * 20), "at least 2 listeners and 2 excerpts"),
])
def test_degenerate_data_is_not_estimable_never_zero_width_or_p_zero(df, reason):
    analysis = analyze_study(df)
    row = analysis.pairs.iloc[0]
    assert np.isnan(row.ci_low) and np.isnan(row.ci_high) and np.isnan(row.p_value)
    assert "not estimable" in row.note and reason in row.note
    assert any(reason in note for note in analysis.notes)
    assert row.p_value_binomial > 0
    json_row = analysis.to_dict()["pairs"][0]
    assert json_row["ci_low"] is None and json_row["p_value"] is None and "not estimable" in json_row["note"]
    verdict = analysis.non_inferiority.iloc[0]
    assert pd.isna(verdict.non_inferior) and np.isnan(verdict.lower_bound)
    assert analysis.to_dict()["paper_comparison"]["preference_vs_ground_truth"]["paper_inside_ci"] is None
    bt = analysis.bradley_terry
    assert not ((bt.ci_high - bt.ci_low) == 0).any()  # NaN (not estimable) or a real width


def test_underflowing_p_value_is_floored_not_zero():
    df = one_way(4000).assign(chosen=["left"] * 3990 + ["right"] * 10,
                              participant=[f"p{i % 200}" for i in range(4000)],
                              excerpt=[f"e{i % 101}" for i in range(4000)])
    row = clustered_rates(df).iloc[0]
    assert 0 < row.p_value_binomial and 0 < row.p_value


def test_bradley_terry_one_listener_has_no_interval_and_says_why():
    df = crowd_preferences(pairs=(("three-stage", "ground-truth"), ("three-stage", "random"),
                                  ("ground-truth", "random")))
    solo = df.assign(participant="solo")
    table = bradley_terry(solo, n_boot=50)
    assert table[["ci_low", "ci_high"]].isna().all().all()
    assert "at least 2 listeners" in table["note"].iloc[0]


def test_disconnected_comparison_graph_is_analysed_per_part_with_a_note():
    df = pd.concat([crowd_preferences(seed=1, pairs=(("three-stage", "ground-truth"),)),
                    crowd_preferences(seed=2, pairs=(("two-stage", "random"),))], ignore_index=True)
    analysis = analyze_study(df)
    bt = analysis.bradley_terry.set_index("system")
    assert bt.loc["three-stage", "part"] == bt.loc["ground-truth", "part"] != bt.loc["two-stage", "part"]
    assert bt.loc["ground-truth", "score"] == 0.0
    assert bt.loc[["two-stage", "random"], "score"].mean() == pytest.approx(0.0)  # no reference in its part
    assert any("2 parts" in note for note in analysis.notes)
    assert bt.drop(index="ground-truth")[["ci_low", "ci_high"]].notna().all().all()


def test_bradley_terry_interval_widens_with_excerpt_clustering():
    """Resampling listeners only ignores the excerpt effect; the two-way interval does not."""
    pairs = (("three-stage", "ground-truth"), ("three-stage", "random"), ("ground-truth", "random"))
    df = crowd_preferences(seed=7, n_listeners=40, n_excerpts=8, keep=0.9, pairs=pairs)
    two_way = bradley_terry(df, n_boot=300, seed=1).set_index("system")
    y = (df.chosen == "left").to_numpy(float)
    systems = ["three-stage", "random"]
    design = np.column_stack([(df.system_left == s).to_numpy(float) - (df.system_right == s).to_numpy(float)
                              for s in systems])
    logit = sm.Logit(y, design).fit(disp=0)
    for k, system in enumerate(systems):
        width = two_way.loc[system, "ci_high"] - two_way.loc[system, "ci_low"]
        assert width > 2 * 1.96 * logit.bse[k]  # wider than the independent-judgment interval
