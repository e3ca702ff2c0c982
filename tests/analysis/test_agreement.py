"""Krippendorff's alpha: a hand-derived case and Krippendorff's (2011) published example."""

import itertools

import numpy as np
import pandas as pd
import pytest

from analysis.stats.agreement import krippendorff_alpha

NAN = np.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", reliability data with
# 4 observers, 12 units and missing values. Published: nominal 0.743, ordinal 0.815,
# interval 0.849.
PUBLISHED = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    "C": [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
}


def long_table(data):
    rows = [(u, rater, v) for rater, values in data.items() for u, v in enumerate(values) if not np.isnan(v)]
    return pd.DataFrame(rows, columns=["excerpt", "participant", "score"])


def pairwise_alpha(data, level):
    """Independent computation over explicit pairs of pairable values (Krippendorff 2004,
    eq. for D_o and D_e): each unit with m values contributes its ordered pairs with weight
    1 / (m - 1)."""
    units = [[v for v in col if not np.isnan(v)] for col in zip(*data.values())]
    units = [u for u in units if len(u) >= 2]
    values = [v for u in units for v in u]
    n = len(values)
    categories = sorted(set(values))
    counts = {c: values.count(c) for c in categories}

    def d2(c, k):
        if level == "nominal":
            return float(c != k)
        if level == "interval":
            return (c - k) ** 2
        lo, hi = sorted((c, k))
        between = sum(counts[g] for g in categories if lo <= g <= hi)
        return (between - (counts[c] + counts[k]) / 2) ** 2

    observed = sum(
        d2(a, b) / (len(u) - 1) for u in units for a, b in itertools.permutations(u, 2)
    ) / n
    expected = sum(d2(a, b) for a, b in itertools.permutations(values, 2)) / (n * (n - 1))
    return 1 - observed / expected


@pytest.mark.parametrize("level,published", [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)])
def test_krippendorff_published_example(level, published):
    result = krippendorff_alpha(long_table(PUBLISHED), units=["excerpt"], by=None, level=level).iloc[0]
    assert result.alpha == pytest.approx(pairwise_alpha(PUBLISHED, level), rel=1e-12)
    assert round(result.alpha, 3) == published
    assert (result.n_values, result.n_units) == (40, 11)  # unit 12 has one value: not pairable


def test_hand_derived_two_raters():
    # Units (1,1), (2,2), (1,2): o_11 = o_22 = 2, o_12 = o_21 = 1; n_1 = n_2 = 3, n = 6.
    # Ordinal d2(1,2) = (6 - 3)^2 = 9; D_o = 18/6 = 3; D_e = 2*3*3*9/30 = 5.4; alpha = 4/9.
    data = {"r1": [1, 2, 1], "r2": [1, 2, 2]}
    table = long_table(data)
    assert krippendorff_alpha(table, units=["excerpt"], by=None).iloc[0].alpha == pytest.approx(4 / 9)


def test_perfect_agreement_and_per_attribute_groups():
    df = pd.DataFrame({
        "excerpt": ["x1", "x1", "x2", "x2", "x1", "x1"], "system": ["a"] * 6,
        "participant": ["p", "q"] * 3, "score": [5, 5, 2, 2, 1, 4],
        "attribute": ["coherence"] * 4 + ["rhythm"] * 2,
    })
    table = krippendorff_alpha(df).set_index("attribute")
    assert table.loc["coherence", "alpha"] == 1.0
    assert table.loc["rhythm", "alpha"] == pytest.approx(0.0)  # one unit, (1, 4): D_o = D_e
