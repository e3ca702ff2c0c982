"""Cluster bootstrap of preference rates over listeners and excerpts.

Judgments by one listener, or on one excerpt, are not independent: a listener who likes
busy drums prefers the same system again. The binomial CI then is too narrow. Listeners and
excerpts are crossed (every listener hears many excerpts and vice versa), so neither a
listener-only nor a nested bootstrap is right. We use the two-way cluster variance of
Cameron, Gelbach & Miller (2011, "Robust inference with multiway clustering"),

    V = V_listener + V_excerpt - V_(listener x excerpt),

with each one-way variance estimated by a seeded cluster bootstrap (see
`analysis.stats.resampling`). In large samples each term equals the CRV sandwich that
statsmodels computes with `cov_type="cluster"` (the tests check this). If sampling noise makes
V smaller than the larger one-way variance, the larger one-way variance is used (never
narrower than clustering on one dimension). The interval is rate +/- z * sqrt(V).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis.stats.encoding import EncodedJudgments, combined_codes, encode_judgments
from analysis.stats.resampling import group_sums, resampled_sums
from analysis.stats.validation import AnalysisInputError, require_columns


def _rate_variance(coded: EncodedJudgments, cluster: np.ndarray, n_boot: int, rng) -> np.ndarray:
    """Bootstrap variance of each pair's rate when clusters `cluster` (int64 [N]) are resampled."""
    n_pairs = len(coded.pairs)
    n_sums = group_sums(cluster, coded.pair, np.ones(coded.n), n_pairs)
    win_sums = group_sums(cluster, coded.pair, coded.system_won, n_pairs)
    replicates = resampled_sums(np.concatenate([n_sums, win_sums], axis=1), n_boot, rng)
    n_b, wins_b = replicates[:, :n_pairs], replicates[:, n_pairs:]
    with np.errstate(invalid="ignore", divide="ignore"):
        rate_b = wins_b / n_b
    return np.nanvar(rate_b, axis=0, ddof=1)


def _cluster_codes(df: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    """int64 [N] code of the combination of the columns `names`."""
    return combined_codes(*(pd.factorize(df[name], sort=True)[0].astype(np.int64) for name in names))


def cluster_bootstrap(
    df: pd.DataFrame,
    clusters: Sequence[str] = ("participant", "excerpt"),
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Preference rate of each pair with a cluster-bootstrap standard error and CI.

    Args:
        df: preference export.
        clusters: one or two column names to cluster on (two: two-way CGM combination).
        n_boot: bootstrap replicates per clustering.
        seed: seed of numpy's default generator; the same seed gives the same result.
        confidence: coverage of the normal interval rate +/- z * se_cluster.

    Returns:
        One row per pair: system, opponent, n, rate, se_binomial, se_<cluster> for each
        clustering, se_cluster, ci_low, ci_high, p_value (normal test of rate = 0.5 with the
        cluster se), design_effect (V / binomial variance), n_boot.
    """
    clusters = tuple(clusters)
    if not 1 <= len(clusters) <= 2:
        raise AnalysisInputError(f"cluster bootstrap: 1 or 2 cluster columns, got {clusters}")
    if n_boot < 2:
        raise AnalysisInputError(f"cluster bootstrap: n_boot must be at least 2, got {n_boot}")
    require_columns(df, clusters, "preferences")
    coded = encode_judgments(df)
    n, wins = coded.pair_counts()
    rate = wins / n
    rng = np.random.default_rng(seed)
    out = pd.DataFrame(
        {
            "system": [p[0] for p in coded.pairs],
            "opponent": [p[1] for p in coded.pairs],
            "n": n,
            "rate": rate,
            "se_binomial": np.sqrt(rate * (1.0 - rate) / n),
        }
    )
    variances = {}
    for name in clusters:
        variances[name] = _rate_variance(coded, _cluster_codes(df, [name]), n_boot, rng)
        out[f"se_{name}"] = np.sqrt(variances[name])
    if len(clusters) == 2:
        cell = "_x_".join(clusters)
        v_cell = _rate_variance(coded, _cluster_codes(df, clusters), n_boot, rng)
        out[f"se_{cell}"] = np.sqrt(v_cell)
        one_way = np.maximum(variances[clusters[0]], variances[clusters[1]])
        variance = np.maximum(variances[clusters[0]] + variances[clusters[1]] - v_cell, one_way)
    else:
        variance = variances[clusters[0]]
    se = np.sqrt(variance)
    z = stats.norm.ppf(1.0 - (1.0 - confidence) / 2.0)
    out["se_cluster"] = se
    out["ci_low"] = np.clip(rate - z * se, 0.0, 1.0)
    out["ci_high"] = np.clip(rate + z * se, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["p_value"] = 2.0 * stats.norm.sf(np.abs(rate - 0.5) / se)
        out["design_effect"] = variance / (rate * (1.0 - rate) / n)
    out["n_boot"] = n_boot
    return out
