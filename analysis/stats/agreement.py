"""Krippendorff's alpha: agreement among listeners who rated the same stimuli.

alpha = 1 - D_o / D_e = 1 - (n - 1) * sum_ck o_ck d2_ck / sum_ck n_c n_k d2_ck, from the
coincidence matrix o_ck = sum_u (number of c-k value pairs in unit u) / (m_u - 1), where m_u
is the number of values in unit u (units with fewer than 2 are not pairable) and n_c the
marginals (Krippendorff 2011, "Computing Krippendorff's alpha-reliability"; Krippendorff
2004, "Content Analysis", ch. 11). Metrics d2:
nominal 1[c != k]; ordinal (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2; interval (c - k)^2.
Missing ratings are simply absent rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.stats.encoding import combined_codes
from analysis.stats.validation import AnalysisInputError, require_columns, require_rows

LEVELS = ("nominal", "ordinal", "interval")


def _delta2(values: np.ndarray, marginals: np.ndarray, level: str) -> np.ndarray:
    """Squared distance d2 [V, V] between the sorted distinct values."""
    if level == "nominal":
        return 1.0 - np.eye(values.size)
    if level == "interval":
        return (values[:, None] - values[None, :]) ** 2
    cumulative = np.concatenate([[0.0], np.cumsum(marginals)])
    lo = np.minimum.outer(np.arange(values.size), np.arange(values.size))
    hi = np.maximum.outer(np.arange(values.size), np.arange(values.size))
    between = cumulative[hi + 1] - cumulative[lo]
    return (between - (marginals[:, None] + marginals[None, :]) / 2.0) ** 2


def alpha_from_units(unit: np.ndarray, value: np.ndarray, level: str = "ordinal") -> tuple[float, int, int]:
    """Krippendorff's alpha of values grouped into units.

    Args:
        unit: int64 [N] unit code of each value. value: float64 [N] the values.

    Returns:
        (alpha, pairable values n, pairable units); alpha is nan without variation.
    """
    if level not in LEVELS:
        raise AnalysisInputError(f"Krippendorff's alpha: level must be one of {LEVELS}, got {level!r}")
    distinct, value_code = np.unique(value, return_inverse=True)
    n_units, n_values = int(unit.max()) + 1, distinct.size
    counts = np.bincount(unit * n_values + value_code.ravel(), minlength=n_units * n_values)
    counts = counts.reshape(n_units, n_values).astype(np.float64)
    m = counts.sum(axis=1)
    keep = m >= 2
    counts, m = counts[keep], m[keep]
    if counts.shape[0] == 0:
        return float("nan"), 0, 0
    weighted = counts / (m - 1.0)[:, None]
    coincidence = weighted.T @ counts - np.diag(weighted.sum(axis=0))
    marginals = coincidence.sum(axis=1)
    n = marginals.sum()
    d2 = _delta2(distinct.astype(np.float64), marginals, level)
    expected = np.sum(np.outer(marginals, marginals) * d2)
    if expected == 0:
        return float("nan"), int(n), int(counts.shape[0])
    return float(1.0 - (n - 1.0) * np.sum(coincidence * d2) / expected), int(n), int(counts.shape[0])


def krippendorff_alpha(
    df: pd.DataFrame,
    units: Sequence[str] = ("excerpt", "system"),
    value: str = "score",
    by: str | None = "attribute",
    level: str = "ordinal",
) -> pd.DataFrame:
    """Krippendorff's alpha per group (default: per attribute of a rating export).

    A unit is one stimulus (default: an excerpt rendered by a system); the values are the
    scores of the listeners who rated it.

    Returns:
        One row per group: [by], alpha, level, n_values (pairable), n_units (pairable).
    """
    columns = [*units, value] + ([by] if by else [])
    require_columns(df, columns, "ratings")
    require_rows(df, "ratings")
    groups = df.groupby(by, sort=True) if by else [(None, df)]
    rows = []
    for key, part in groups:
        unit_code = combined_codes(*(pd.factorize(part[u])[0].astype(np.int64) for u in units))
        alpha, n, n_units = alpha_from_units(unit_code, part[value].to_numpy(np.float64), level)
        row = {by: key} if by else {}
        row.update({"alpha": alpha, "level": level, "n_values": n, "n_units": n_units})
        rows.append(row)
    return pd.DataFrame(rows)
