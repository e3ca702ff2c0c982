"""Friedman, Wilcoxon with Holm, rank-biserial and Kendall's W against scipy/statsmodels."""

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from analysis.stats import AnalysisInputError
from analysis.stats.ratings import friedman, holm, rating_summary, wilcoxon_pairs

SYSTEMS = ["three-stage", "two-stage", "random"]


def rating_table(seed=0, blocks=40):
    """Complete blocks: each (participant, excerpt) rates the three systems on two attributes."""
    rng = np.random.default_rng(seed)
    rows, matrices = [], {}
    for attribute, shift in (("overall coherence", 0.8), ("rhythmic alignment", 0.3)):
        scores = np.clip(np.rint(3 + rng.normal(0, 1, (blocks, 3)) - shift * np.arange(3)), 1, 5)
        matrices[attribute] = scores
        for b in range(blocks):
            for j, system in enumerate(SYSTEMS):
                rows.append((f"p{b % 13}", f"x{b}", system, attribute, int(scores[b, j])))
    df = pd.DataFrame(rows, columns=["participant", "excerpt", "system", "attribute", "score"])
    return df.sample(frac=1.0, random_state=1).reset_index(drop=True), matrices


def test_friedman_and_kendalls_w_match_scipy_and_definition():
    df, matrices = rating_table()
    table = friedman(df).set_index("attribute")
    for attribute, scores in matrices.items():
        reference = stats.friedmanchisquare(*scores.T)
        row = table.loc[attribute]
        assert row.chi2 == pytest.approx(reference.statistic, rel=1e-10)
        assert row.p_value == pytest.approx(reference.pvalue, rel=1e-10)
        n, k = scores.shape
        assert row.kendall_w == pytest.approx(reference.statistic / (n * (k - 1)), rel=1e-10)
        assert (row.n_blocks, row.k, row.blocks_dropped) == (n, k, 0)


def test_kendalls_w_from_its_definition_without_ties():
    # Four judges rank three systems without ties: W = 12 S / (m^2 (n^3 - n)).
    ranks = np.array([[1, 2, 3], [1, 3, 2], [2, 1, 3], [1, 2, 3]], dtype=float)
    rows = [(f"p{i}", "x", s, "a", 4 - r) for i, row in enumerate(ranks) for s, r in zip(SYSTEMS, row)]
    df = pd.DataFrame(rows, columns=["participant", "excerpt", "system", "attribute", "score"])
    m, n = ranks.shape
    rank_sums = ranks.sum(axis=0)
    w = 12 * np.sum((rank_sums - rank_sums.mean()) ** 2) / (m**2 * (n**3 - n))
    assert friedman(df).iloc[0].kendall_w == pytest.approx(w)


def test_wilcoxon_pairs_holm_and_rank_biserial():
    df, matrices = rating_table(seed=4)
    table = wilcoxon_pairs(df)
    for attribute, scores in matrices.items():
        part = table[table.attribute == attribute]
        raw = []
        for (i, a), (j, b) in itertools.combinations(enumerate(SYSTEMS), 2):
            row = part[(part.system == a) & (part.opponent == b)].iloc[0]
            reference = stats.wilcoxon(scores[:, i], scores[:, j])
            assert row.p_value == pytest.approx(reference.pvalue, rel=1e-10)
            d = scores[:, i] - scores[:, j]
            d = d[d != 0]
            r = stats.rankdata(np.abs(d))
            assert row.rank_biserial == pytest.approx((r[d > 0].sum() - r[d < 0].sum()) / r.sum())
            raw.append(reference.pvalue)
        expected = multipletests(raw, method="holm")[1]
        assert part.p_holm.to_numpy() == pytest.approx(expected, rel=1e-12)


def test_holm_on_ties_and_ordering():
    p = np.array([0.01, 0.04, 0.03, 0.04, 0.2, 0.0005])
    assert holm(p) == pytest.approx(multipletests(p, method="holm")[1])


def test_incomplete_blocks_are_dropped_and_counted():
    df, _ = rating_table()
    cut = df.drop(df[(df.excerpt == "x3") & (df.system == "random")].index)
    table = friedman(cut).set_index("attribute")
    assert (table.blocks_dropped == 1).all() and (table.n_blocks == 39).all()


def test_rating_errors_name_the_problem():
    df, _ = rating_table()
    with pytest.raises(AnalysisInputError, match="'score'"):
        friedman(df.drop(columns="score"))
    one = df[df.excerpt == "x1"]
    with pytest.raises(AnalysisInputError, match="attribute 'overall coherence' has 1 complete block"):
        friedman(one)
    summary = rating_summary(df)
    assert list(summary[summary.attribute == "overall coherence"].system) == SYSTEMS
