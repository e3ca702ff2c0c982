"""Power of the preference test and the number of judgments still needed.

Effect size: Cohen's h = 2 asin(sqrt(p1)) - 2 asin(sqrt(0.5)) (statsmodels
`proportion_effectsize`); power of the two-sided one-sample z test with n judgments:
Phi(|h| sqrt(n) - z) + Phi(-|h| sqrt(n) - z), z = Phi^-1(1 - alpha/2) (Cohen 1988, ch. 6;
statsmodels `NormalIndPower` with ratio=0). Repeated listeners and excerpts inflate the
variance by the design effect (Kish 1965), so a study needs design_effect * n judgments for
the power that n independent judgments would have.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, stats

from analysis.stats.validation import AnalysisInputError, require_columns


def cohens_h(rate: float, null_rate: float = 0.5) -> float:
    """Cohen's h between two proportions."""
    return float(2.0 * np.arcsin(np.sqrt(rate)) - 2.0 * np.arcsin(np.sqrt(null_rate)))


def power_at(n: np.ndarray, effect_size: float, alpha: float = 0.05) -> np.ndarray:
    """Power of the two-sided z test for effect size h with n (effective) judgments."""
    z = stats.norm.ppf(1.0 - alpha / 2.0)
    shift = abs(effect_size) * np.sqrt(np.asarray(n, dtype=np.float64))
    return stats.norm.sf(z - shift) + stats.norm.cdf(-z - shift)


def judgments_required(effect_size: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Independent judgments needed for `power` at effect size h (not rounded)."""
    if effect_size == 0:
        raise AnalysisInputError("power: the target rate equals 0.5, no sample size detects it")
    z = stats.norm.ppf(1.0 - alpha / 2.0)
    guess = ((z + stats.norm.ppf(power)) / abs(effect_size)) ** 2
    return float(optimize.brentq(lambda n: power_at(n, effect_size, alpha) - power, 1e-9, 4 * guess + 10))


def power_analysis(
    pairs: pd.DataFrame,
    target_rate: float = 0.55,
    alpha: float = 0.05,
    power: float = 0.8,
    n: str = "n",
    design_effect: str | None = None,
) -> pd.DataFrame:
    """Achieved power and judgments still needed, per row of a pair table.

    Args:
        pairs: a table with a count column `n` (e.g. `preference_rates` output).
        target_rate: the preference rate the study should detect against 0.5.
        design_effect: optional column of design effects (e.g. from `cluster_bootstrap`);
            values below 1 or missing count as 1.

    Returns:
        `pairs` with added columns: target_rate, effect_size, design_effect, effective_n,
        power, n_required (independent judgments), n_required_clustered, judgments_needed.
    """
    if not 0.0 < target_rate < 1.0:
        raise AnalysisInputError(f"power: target rate must be in (0, 1), got {target_rate}")
    require_columns(pairs, [n] + ([design_effect] if design_effect else []), "pair table")
    h = cohens_h(target_rate)
    required = judgments_required(h, alpha, power)
    deff = np.ones(len(pairs))
    if design_effect:
        deff = np.nan_to_num(pairs[design_effect].to_numpy(np.float64), nan=1.0)
        deff = np.maximum(deff, 1.0)
    counts = pairs[n].to_numpy(np.float64)
    out = pairs.copy()
    out["target_rate"] = target_rate
    out["effect_size"] = h
    out["design_effect"] = deff
    out["effective_n"] = counts / deff
    out["power"] = power_at(counts / deff, h, alpha)
    out["n_required"] = int(np.ceil(required))
    out["n_required_clustered"] = np.ceil(required * deff).astype(np.int64)
    out["judgments_needed"] = np.maximum(0, np.ceil(required * deff) - counts).astype(np.int64)
    return out
