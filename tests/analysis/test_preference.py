"""Preference rates, non-inferiority and side bias against scipy and statsmodels."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from statsmodels.stats.proportion import proportion_confint

from analysis.stats import AnalysisInputError
from analysis.stats.preference import non_inferiority, preference_rates, side_bias


def judgments(rows):
    """rows: (participant, excerpt, left, right, chosen)."""
    return pd.DataFrame(rows, columns=["participant", "excerpt", "system_left", "system_right", "chosen"])


def fixed_table():
    # three-stage vs ground-truth: 7 judgments, three-stage chosen 5 times over both side orders.
    rows = [
        ("p1", "x1", "three-stage", "ground-truth", "left"),
        ("p1", "x2", "ground-truth", "three-stage", "right"),
        ("p2", "x1", "ground-truth", "three-stage", "right"),
        ("p2", "x2", "three-stage", "ground-truth", "right"),
        ("p3", "x1", "ground-truth", "three-stage", "left"),
        ("p3", "x3", "three-stage", "ground-truth", "left"),
        ("p4", "x3", "ground-truth", "three-stage", "right"),
        # random vs three-stage: three-stage chosen 4 of 4.
        ("p1", "x3", "random", "three-stage", "right"),
        ("p2", "x3", "three-stage", "random", "left"),
        ("p3", "x2", "random", "three-stage", "right"),
        ("p4", "x1", "three-stage", "random", "left"),
    ]
    return judgments(rows)


def test_rates_match_hand_counts_scipy_and_statsmodels():
    table = preference_rates(fixed_table()).set_index(["system", "opponent"])
    gt = table.loc[("three-stage", "ground-truth")]
    assert (gt.n, gt.wins) == (7, 5)
    assert gt.rate == pytest.approx(5 / 7)
    low, high = proportion_confint(5, 7, alpha=0.05, method="wilson")
    assert (gt.ci_low, gt.ci_high) == pytest.approx((low, high), rel=1e-12)
    assert gt.p_value == pytest.approx(binomtest(5, 7, 0.5).pvalue, rel=1e-12)
    rnd = table.loc[("three-stage", "random")]
    assert (rnd.n, rnd.wins, rnd.rate) == (4, 4, 1.0)
    assert rnd.p_value == pytest.approx(binomtest(4, 4, 0.5).pvalue)


@pytest.mark.parametrize("wins,n", [(0, 10), (5, 10), (6, 10), (412, 800), (515, 1000), (3, 1), (17, 20)])
def test_binomial_p_and_wilson_on_many_counts(wins, n):
    wins = min(wins, n)
    rows = [("p", "x", "three-stage", "two-stage", "left")] * wins
    rows += [("p", "x", "three-stage", "two-stage", "right")] * (n - wins)
    row = preference_rates(judgments(rows)).iloc[0]
    assert row.p_value == pytest.approx(binomtest(wins, n, 0.5).pvalue, rel=1e-10)
    assert (row.ci_low, row.ci_high) == pytest.approx(
        proportion_confint(wins, n, alpha=0.05, method="wilson"), rel=1e-10, abs=1e-14
    )


def test_paper_figure_is_indistinguishable_from_chance_with_800_judgments():
    rows = [("p", "x", "three-stage", "ground-truth", "left")] * 412
    rows += [("p", "x", "three-stage", "ground-truth", "right")] * 388
    row = preference_rates(judgments(rows)).iloc[0]
    assert row.ci_low < 0.5 < row.ci_high
    assert row.ci_low == pytest.approx(0.480, abs=0.002) and row.ci_high == pytest.approx(0.549, abs=0.002)


def test_non_inferiority_matches_one_sided_exact_test():
    rows = [("p", "x", "ground-truth", "three-stage", "right")] * 108  # three-stage chosen
    rows += [("p", "x", "ground-truth", "three-stage", "left")] * 92
    result = non_inferiority(judgments(rows), reference="ground-truth", margin=0.05, alpha=0.05).iloc[0]
    assert result.system == "three-stage" and (result.n, result.wins) == (200, 108)
    reference = binomtest(108, 200, 0.45, alternative="greater")
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-10)
    low, _ = proportion_confint(108, 200, alpha=0.10, method="beta")
    assert result.lower_bound == pytest.approx(low, rel=1e-10)
    assert result.non_inferior == (reference.pvalue < 0.05)
    assert result.non_inferior == (result.lower_bound > 0.45)


def test_side_bias_overall_and_per_listener():
    table = fixed_table()
    overall = side_bias(table).iloc[0]
    n_left = int((table.chosen == "left").sum())
    assert (overall.n, overall.left) == (len(table), n_left)
    assert overall.p_value == pytest.approx(binomtest(n_left, len(table), 0.5).pvalue)
    per = side_bias(table, by="participant").set_index("participant")
    assert per.loc["p4", "n"] == 2 and per.loc["p4", "left"] == 1


def test_bad_input_names_the_problem():
    table = fixed_table()
    with pytest.raises(AnalysisInputError, match="'chosen'"):
        preference_rates(table.drop(columns="chosen"))
    bad = table.copy()
    bad.loc[3, "chosen"] = "both"
    with pytest.raises(AnalysisInputError, match="'both'"):
        preference_rates(bad)
    with pytest.raises(AnalysisInputError, match="no rows"):
        preference_rates(table.iloc[:0])
    with pytest.raises(AnalysisInputError, match="reference system 'two-stage'"):
        non_inferiority(table, reference="two-stage")
    empty_cell = table.copy()
    empty_cell.loc[2, "excerpt"] = np.nan
    with pytest.raises(AnalysisInputError, match="'excerpt' is empty"):
        preference_rates(empty_cell)
