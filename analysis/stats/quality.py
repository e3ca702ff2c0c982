"""Listener quality: catch-trial accuracy, side bias and agreement with the majority."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.stats.encoding import encode_judgments
from analysis.stats.exclusions import flag_column
from analysis.stats.preference import binomial_p_half, wilson_interval


def catch_summary(catch_trials: pd.DataFrame) -> pd.DataFrame:
    """Accuracy per catch kind (`trial_type`, else one row 'catch') with a Wilson CI.

    Returns:
        trial_type, n, passed, accuracy, ci_low, ci_high; empty without catch rows.
    """
    columns = ["trial_type", "n", "passed", "accuracy", "ci_low", "ci_high"]
    if len(catch_trials) == 0 or "catch_passed" not in catch_trials.columns:
        return pd.DataFrame(columns=columns)
    if "trial_type" in catch_trials.columns:
        kind = catch_trials["trial_type"].astype(str)
    else:
        kind = pd.Series("catch", index=catch_trials.index)
    passed = pd.Series(flag_column(catch_trials["catch_passed"]), index=catch_trials.index)
    table = passed.groupby(kind).agg(n="size", passed="sum").reset_index(names="trial_type")
    low, high = wilson_interval(table["passed"].to_numpy(), table["n"].to_numpy())
    table["accuracy"] = table["passed"] / table["n"]
    table["ci_low"], table["ci_high"] = low, high
    return table[columns]


def listener_quality(
    preferences: pd.DataFrame, catch_trials: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per listener: judgments, left-choice rate and its binomial p (a listener who
    always presses one side shows up), agreement with the majority choice of each pair,
    catch accuracy, median response times when the export has them: `median_response_time_ms`
    from `response_time_ms`, measured by the server (trial served to answer received), and
    `median_response_time_client_ms` from the client's own figure (may be missing or forged).
    """
    coded = encode_judgments(preferences)
    n, wins = coded.pair_counts()
    majority_is_system = wins * 2 >= n  # per pair
    agrees = coded.system_won == majority_is_system[coded.pair]
    g = coded.participant
    count = np.bincount(g)
    left = np.bincount(g, weights=coded.chose_left).astype(np.int64)
    out = pd.DataFrame({
        "participant": [str(p) for p in coded.participants],
        "n": count,
        "rate_left": left / count,
        "side_p_value": binomial_p_half(left, count),
        "majority_agreement": np.bincount(g, weights=agrees) / count,
    })
    low, _ = wilson_interval(left, count)
    out["rate_left_ci_low"] = low
    if catch_trials is not None and len(catch_trials) and "catch_passed" in catch_trials.columns:
        passed = pd.Series(flag_column(catch_trials["catch_passed"]), index=catch_trials.index)
        accuracy = passed.groupby(catch_trials["participant"].astype(str)).mean()
        out["catch_accuracy"] = out["participant"].map(accuracy)
    for column in ("response_time_ms", "response_time_client_ms"):
        if column in preferences.columns:
            times = pd.to_numeric(preferences[column], errors="coerce")
            median = times.groupby(preferences["participant"].astype(str), observed=True).median()
            out[f"median_{column}"] = out["participant"].map(median)
    return out.sort_values("majority_agreement", ignore_index=True)
