"""Mixed-effects logistic model of preferences with listener and excerpt random intercepts.

For each pair of systems, with y = 1 when the pair's `system` was chosen:

    logit P(y = 1) = b0 + b_side * s + u_listener + v_excerpt,
    u ~ N(0, sd_participant^2), v ~ N(0, sd_excerpt^2) (crossed),

where s = +1/2 when `system` was on the left and -1/2 otherwise, so b0 is the log-odds of
preferring `system` for a typical listener and excerpt at balanced sides, and b_side / 2 the
left bias on the logit scale. Fitted by the Laplace approximation of
`analysis.stats.glmm.fit_crossed_logistic` (lme4 `glmer(..., nAGQ = 0)`); the interval is
b0 +/- z * SE mapped through the logistic function.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit

from analysis.stats.clustered import P_FLOOR, holm
from analysis.stats.encoding import encode_judgments
from analysis.stats.glmm import fit_crossed_logistic

COLUMNS = ["system", "opponent", "n", "log_odds", "log_odds_se", "rate", "ci_low", "ci_high", "p_value", "p_holm",
           "left_bias_log_odds", "sd_participant", "sd_excerpt", "method", "unit"]
UNIT = "listener and excerpt (crossed random intercepts)"
METHOD = "Laplace GLMM (lme4 glmer nAGQ=0 equivalent), crossed listener and excerpt intercepts"


def mixed_table_for_display(table: pd.DataFrame) -> pd.DataFrame:
    """The table with the common method text dropped and exceptions kept as a `note`."""
    if "method" not in table.columns:
        return table
    note = table["method"].where(table["method"] != METHOD, "")
    return table.drop(columns="method").assign(note=note)


def mixed_logistic(df: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per pair, the preference rate for a typical listener and excerpt under a mixed model.

    Returns:
        One row per pair: system, opponent, n, log_odds, log_odds_se, rate, ci_low, ci_high,
        p_value (Wald test of log_odds = 0), p_holm (Holm across the pairs of this table),
        left_bias_log_odds, sd_participant, sd_excerpt,
        method.
    """
    coded = encode_judgments(df)
    z = stats.norm.ppf(1.0 - (1.0 - confidence) / 2.0)
    rows = []
    for index, (system, opponent) in enumerate(coded.pairs):
        mask = coded.pair == index
        y = coded.system_won[mask].astype(np.float64)
        n_listeners, n_excerpts = np.unique(coded.participant[mask]).size, np.unique(coded.excerpt[mask]).size
        if min(n_listeners, n_excerpts) < 2:
            rows.append({"system": system, "opponent": opponent, "n": int(mask.sum()),
                         "method": f"not estimable: needs at least 2 listeners and 2 excerpts "
                                   f"(has {n_listeners} and {n_excerpts})"})
            continue
        if y.min() == y.max():
            # Complete separation: the log-odds has no finite estimate; say so, don't fit.
            rows.append({"system": system, "opponent": opponent, "n": int(mask.sum()),
                         "method": "not estimable: every judgment chose the same system"})
            continue
        side = np.where(coded.system_on_left[mask], 0.5, -0.5)
        exog = np.column_stack([np.ones_like(side), side])
        groups = [pd.factorize(coded.participant[mask])[0], pd.factorize(coded.excerpt[mask])[0]]
        fit = fit_crossed_logistic(y, exog, groups)
        b0, b_side = fit.params
        se = fit.bse[0]
        rows.append(
            {
                "system": system,
                "opponent": opponent,
                "n": int(mask.sum()),
                "log_odds": b0,
                "log_odds_se": se,
                "rate": expit(b0),
                "ci_low": expit(b0 - z * se),
                "ci_high": expit(b0 + z * se),
                "p_value": max(2.0 * stats.norm.sf(abs(b0) / se), P_FLOOR),
                "left_bias_log_odds": b_side / 2.0,
                "sd_participant": fit.sd[0],
                "sd_excerpt": fit.sd[1],
                "method": METHOD,
            }
        )
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["p_holm"] = holm(table["p_value"].to_numpy(np.float64))
    table["unit"] = UNIT
    return table
