"""Preference rates of 2AFC judgments: Wilson intervals, exact binomial tests, side bias.

All functions take the preference export (`participant, excerpt, system_left, system_right,
chosen`) and return tidy DataFrames, one row per pair of systems or per group.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis.stats.encoding import encode_judgments
from analysis.stats.validation import (
    AnalysisInputError,
    check_preferences,
    label_codes,
    require_columns,
)


def wilson_interval(
    successes: np.ndarray, n: np.ndarray, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided Wilson score interval for a binomial proportion (Wilson 1927).

    Args:
        successes, n: int arrays of the same shape, n > 0.
        confidence: coverage of the two-sided interval.

    Returns:
        (low, high): float64 arrays of the shape of `n`. Same as statsmodels
        `proportion_confint(method="wilson")`.
    """
    successes = np.asarray(successes, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    z = stats.norm.ppf(1.0 - (1.0 - confidence) / 2.0)
    p = successes / n
    denom = 1.0 + z**2 / n
    center = (p + z**2 / (2.0 * n)) / denom
    half = z / denom * np.sqrt(p * (1.0 - p) / n + z**2 / (4.0 * n**2))
    return center - half, center + half


def binomial_p_half(successes: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Exact two-sided binomial p-value against p = 0.5, vectorised.

    For p = 0.5 the distribution is symmetric, so the likelihood-ordering rule of
    `scipy.stats.binomtest` reduces to 2 * P(X <= min(k, n - k)), capped at 1.
    """
    successes = np.asarray(successes)
    n = np.asarray(n)
    tail = stats.binom.cdf(np.minimum(successes, n - successes), n, 0.5)
    return np.minimum(1.0, 2.0 * tail)


def preference_rates(df: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Preference rate of each pair with a Wilson CI and an exact binomial test against 0.5.

    `rate` = wins / n of `system` against `opponent`, over both side orders; ties do not exist
    (2AFC). The orientation of each pair is canonical (see `analysis.stats.encoding`).

    Returns:
        One row per pair: system, opponent, n, wins, rate, ci_low, ci_high, p_value.

    Example:
        >>> preference_rates(prefs)[["system", "opponent", "rate"]]  # doctest: +SKIP
    """
    coded = encode_judgments(df)
    n, wins = coded.pair_counts()
    low, high = wilson_interval(wins, n, confidence)
    return pd.DataFrame(
        {
            "system": [p[0] for p in coded.pairs],
            "opponent": [p[1] for p in coded.pairs],
            "n": n,
            "wins": wins,
            "rate": wins / n,
            "ci_low": low,
            "ci_high": high,
            "p_value": binomial_p_half(wins, n),
        }
    )


def non_inferiority(
    df: pd.DataFrame, reference: str = "ground-truth", margin: float = 0.05, alpha: float = 0.05
) -> pd.DataFrame:
    """One-sided exact non-inferiority test of every system against `reference`.

    H0: p <= 0.5 - margin, H1: p > 0.5 - margin, where p is the rate at which the system is
    preferred over `reference`. The p-value is P(X >= wins | n, 0.5 - margin) (exact binomial,
    as `scipy.stats.binomtest(..., alternative="greater")`); `lower_bound` is the one-sided
    Clopper-Pearson (1934) 1 - alpha lower confidence bound, which exceeds 0.5 - margin exactly
    when the test rejects. The margin must be stated before the study (Piaggio et al. 2012).

    Returns:
        One row per system compared with `reference`: system, reference, n, wins, rate,
        margin, null_rate, p_value, lower_bound, non_inferior.
    """
    if not 0.0 <= margin < 0.5:
        raise AnalysisInputError(f"non-inferiority margin must be in [0, 0.5), got {margin}")
    rates = preference_rates(df)
    rows = []
    for row in rates.itertuples(index=False):
        if reference not in (row.system, row.opponent):
            continue
        flipped = row.system == reference
        system = row.opponent if flipped else row.system
        wins = row.n - row.wins if flipped else row.wins
        rows.append((system, int(row.n), int(wins)))
    if not rows:
        raise AnalysisInputError(
            f"preferences: no pair involves the reference system {reference!r}"
        )
    systems, n, wins = (np.array(col) for col in zip(*rows))
    null_rate = 0.5 - margin
    p_value = stats.binom.sf(wins - 1, n, null_rate)
    lower = np.where(wins > 0, stats.beta.ppf(alpha, np.maximum(wins, 1), n - wins + 1), 0.0)
    return pd.DataFrame(
        {
            "system": systems.astype(object),
            "reference": reference,
            "n": n,
            "wins": wins,
            "rate": wins / n,
            "margin": margin,
            "null_rate": null_rate,
            "p_value": p_value,
            "lower_bound": lower,
            "non_inferior": p_value < alpha,
        }
    )


def side_bias(df: pd.DataFrame, by: str | None = None, confidence: float = 0.95) -> pd.DataFrame:
    """How often the left clip was chosen, overall or per group (e.g. by="participant").

    A fair listener chooses left half the time whatever the systems, because sides are
    randomised; the exact binomial test against 0.5 and a Wilson CI flag a position bias.

    Returns:
        One row (or one per group, with the group column first): n, left, rate_left, ci_low,
        ci_high, p_value.
    """
    check_preferences(df)
    chosen_code, chosen_labels = label_codes(df["chosen"])
    chose_left = (np.array(chosen_labels, dtype=object) == "left")[chosen_code]
    if by is None:
        n = np.array([chose_left.size])
        left = np.array([int(chose_left.sum())])
        out = pd.DataFrame(index=[0])
    else:
        require_columns(df, [by], "preferences")
        codes, groups = pd.factorize(df[by])
        n = np.bincount(codes)
        left = np.bincount(codes, weights=chose_left).astype(np.int64)
        out = pd.DataFrame({by: np.asarray(groups)})
    low, high = wilson_interval(left, n, confidence)
    out["n"] = n
    out["left"] = left
    out["rate_left"] = left / n
    out["ci_low"] = low
    out["ci_high"] = high
    out["p_value"] = binomial_p_half(left, n)
    return out
