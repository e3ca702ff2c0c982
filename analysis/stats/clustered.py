"""Two-way (listener and excerpt) cluster-robust inference: the headline method of a report.

Judgments by one listener, or on one excerpt, are correlated, and listeners and excerpts are
crossed. For an estimator that is a mean per group (a preference rate; the mean rating of
each system), we use the multiway cluster-robust variance of Cameron, Gelbach & Miller (2011,
"Robust inference with multiway clustering", J. Bus. Econ. Stat. 29(2)):

    V = c_L M_L + c_E M_E - c_LE M_LE,   M_g = sum over clusters of U_g U_g^T,

where U_g is the cluster's sum of influence values (residual / group size) and c_g =
G/(G-1) * (N-1)/(N-K) the CR1 small-sample factor of each clustering (G clusters, N rows, K
means). This is what statsmodels computes for OLS with `cov_type="cluster"` and a two-column
`groups` (tests check it). If V of a contrast falls below the larger one-way variance, the
larger one-way variance is used (CGM 2011, section 2.3: never narrower than one-way
clustering). Intervals and tests use Student's t with min(G_listener, G_excerpt) - 1 degrees
of freedom (CGM 2011, section 4.2; Cameron & Miller 2015, section VI.C), the small-sample
correction that brought coverage from ~92.6% (normal quantile) to the nominal 95% on simulated
crowd data (tests/analysis/test_coverage.py; benchmarks/analysis_coverage.py).

Rule (documented in the README): the CI and p-value need at least 2 listeners and 2 excerpts
and a non-zero variance. Otherwise, e.g. every judgment chose one system (separation), a
single judgment, one listener or one excerpt, they are "not estimable" (NaN, with a note),
never a zero-width interval or p = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from analysis.stats.encoding import attribute_systems, combined_codes, encode_judgments
from analysis.stats.preference import binomial_p_half, wilson_interval

UNIT = "listener and excerpt (two-way clustered)"
RATE_METHOD = "two-way cluster-robust (CGM 2011, CR1) with t(min(G_listener, G_excerpt) - 1)"
DIFFERENCE_METHOD = RATE_METHOD
# A p-value is computed in double precision: values below this are not distinguishable.
P_FLOOR = 1e-16


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values (as statsmodels multipletests method="holm");
    NaN entries (not estimable) stay NaN and do not count in the family."""
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = finite.size
    if m == 0:
        return adjusted
    order = finite[np.argsort(p[finite])]
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def _meat(u: np.ndarray) -> np.ndarray:
    """sum_g U_g U_g^T: u [..., G, K] -> [..., K, K]."""
    return np.einsum("...gk,...gl->...kl", u, u)


def _factor(n_clusters: np.ndarray, n_obs: np.ndarray, n_means: int) -> np.ndarray:
    """CR1 factor G/(G-1) * (N-1)/(N-K); NaN where G < 2 or N <= K."""
    g = np.asarray(n_clusters, dtype=np.float64)
    n = np.asarray(n_obs, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = g / (g - 1.0) * (n - 1.0) / (n - n_means)
    return np.where((g >= 2) & (n > n_means), out, np.nan)


@dataclass(frozen=True)
class TwoWayCovariance:
    """Covariance of K group means under two-way clustering, per batch element.

    listener, excerpt, cell: [..., K, K] CR1-scaled one-way covariances (cell = listener x
    excerpt intersection). g_listener, g_excerpt: [...] clusters with data. df: [...]
    min(G_listener, G_excerpt) - 1.
    """

    listener: np.ndarray
    excerpt: np.ndarray
    cell: np.ndarray
    g_listener: np.ndarray
    g_excerpt: np.ndarray

    @property
    def df(self) -> np.ndarray:
        return np.minimum(self.g_listener, self.g_excerpt) - 1.0

    def contrast(self, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(variance, one-way listener, one-way excerpt, cell) variances of c' mean; c [K]."""
        parts = [np.einsum("k,...kl,l->...", c, m, c) for m in (self.listener, self.excerpt, self.cell)]
        combined = parts[0] + parts[1] - parts[2]
        combined = np.maximum(combined, np.maximum(parts[0], parts[1]))
        return combined, parts[0], parts[1], parts[2]


def two_way_covariance(
    u_listener: np.ndarray, u_excerpt: np.ndarray, u_cell: np.ndarray,
    g_listener: np.ndarray, g_excerpt: np.ndarray, g_cell: np.ndarray, n_obs: np.ndarray,
) -> TwoWayCovariance:
    """CGM two-way covariance from per-cluster influence sums.

    Args:
        u_listener, u_excerpt, u_cell: float64 [..., G, K], the sum over each cluster's rows of
            (value - mean of its group) / (rows of its group) in the group's column; clusters
            without rows are rows of zeros (they add nothing).
        g_listener, g_excerpt, g_cell: [...] number of clusters with rows.
        n_obs: [...] rows.
    """
    k = u_listener.shape[-1]

    def scaled(u, g):
        return _meat(u) * _factor(g, n_obs, k)[..., None, None]

    return TwoWayCovariance(scaled(u_listener, g_listener), scaled(u_excerpt, g_excerpt),
                            scaled(u_cell, g_cell), np.asarray(g_listener, np.float64),
                            np.asarray(g_excerpt, np.float64))


def t_inference(estimate: np.ndarray, variance: np.ndarray, df: np.ndarray, null: float | np.ndarray,
                confidence: float = 0.95) -> dict[str, np.ndarray]:
    """Two-sided t interval and test of `estimate` = `null`; NaN where not estimable (df < 1,
    zero or undefined variance). p-values are floored at P_FLOOR, never 0."""
    se = np.sqrt(np.asarray(variance, dtype=np.float64))
    df = np.asarray(df, dtype=np.float64)
    ok = np.isfinite(se) & (se > 0) & (df >= 1)
    safe_df = np.where(ok, df, 1.0)
    safe_se = np.where(ok, se, 1.0)
    q = stats.t.ppf(1.0 - (1.0 - confidence) / 2.0, safe_df)
    t = (estimate - null) / safe_se
    p = np.maximum(2.0 * stats.t.sf(np.abs(t), safe_df), P_FLOOR)
    nan = np.nan
    return {
        "se": np.where(ok, se, nan),
        "df": np.where(ok, df, nan),
        "ci_low": np.where(ok, estimate - q * safe_se, nan),
        "ci_high": np.where(ok, estimate + q * safe_se, nan),
        "t": np.where(ok, t, nan),
        "p_value": np.where(ok, p, nan),
    }


def _cluster_influence(cluster: np.ndarray, column: np.ndarray, residual: np.ndarray,
                       n_columns: int) -> tuple[np.ndarray, np.ndarray]:
    """[K, G, 1] influence sums per (column, cluster) and [K] clusters with rows per column."""
    n_clusters = int(cluster.max()) + 1 if cluster.size else 0
    flat = cluster * n_columns + column
    sums = np.bincount(flat, weights=residual, minlength=n_clusters * n_columns).reshape(n_clusters, n_columns)
    present = np.bincount(flat, minlength=n_clusters * n_columns).reshape(n_clusters, n_columns) > 0
    return sums.T[:, :, None], present.sum(axis=0)


def rate_inference_from_sums(n: np.ndarray, wins: np.ndarray, rate: np.ndarray, cov: TwoWayCovariance,
                             confidence: float = 0.95) -> pd.DataFrame:
    """Columns of the headline preference table from a (batched, K = 1) covariance."""
    one = np.ones(1)
    variance, v_listener, v_excerpt, v_cell = cov.contrast(one)
    result = t_inference(rate, variance, cov.df, 0.5, confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        design_effect = variance / (rate * (1.0 - rate) / n)
    return pd.DataFrame({
        "rate": rate, **{k: result[k] for k in ("ci_low", "ci_high", "p_value")},
        "se_cluster": result["se"], "df": result["df"],
        "se_listener": np.sqrt(v_listener), "se_excerpt": np.sqrt(v_excerpt), "se_cell": np.sqrt(v_cell),
        "g_listeners": cov.g_listener.astype(np.int64), "g_excerpts": cov.g_excerpt.astype(np.int64),
        "design_effect": design_effect,
    })


def grid_rate_inference(y: np.ndarray, confidence: float = 0.95) -> pd.DataFrame:
    """The headline inference for S simulated studies of one pair on a complete grid.

    y: bool/0-1 [S, L, E], one judgment per listener and excerpt. The same computation as
    `clustered_rates` on the long table (tests check both agree), vectorised over studies.
    """
    y = np.asarray(y, dtype=np.float64)
    s, n_listeners, n_excerpts = y.shape
    n = np.full(s, float(n_listeners * n_excerpts))
    wins = y.sum(axis=(1, 2))
    rate = wins / n
    residual = (y - rate[:, None, None]) / n[:, None, None]
    cov = two_way_covariance(residual.sum(axis=2)[..., None], residual.sum(axis=1)[..., None],
                             residual.reshape(s, -1)[..., None], np.full(s, n_listeners),
                             np.full(s, n_excerpts), n, n)
    return rate_inference_from_sums(n, wins, rate, cov, confidence)


def _not_estimable_reason(n: int, wins: int, g_listeners: int, g_excerpts: int, system: str, opponent: str) -> str:
    if g_listeners < 2 or g_excerpts < 2:
        return (f"not estimable: a clustered interval needs judgments from at least 2 listeners and 2 excerpts "
                f"(has {g_listeners} and {g_excerpts})")
    if wins in (0, n):
        winner = system if wins == n else opponent
        return (f"not estimable: all {n} judgments chose {winner} (separation), so the clustered variance is 0; "
                "the exact Wilson/binomial figures assume independent judgments")
    return "not estimable: the clustered variance is 0"


def clustered_rates(df: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """The headline preference table: rate of each pair with its two-way clustered t interval
    and p-value (against 0.5), Holm across the pairs, and the independent-judgment Wilson CI
    and exact binomial p as labelled secondary figures.

    Returns:
        One row per pair: system, opponent, n, wins, rate, ci_low, ci_high, p_value, p_holm,
        method, unit, se_cluster, df, se_listener, se_excerpt, se_cell, g_listeners,
        g_excerpts, design_effect, ci_low_wilson, ci_high_wilson, p_value_binomial, note.
    """
    coded = encode_judgments(df)
    n_pairs = len(coded.pairs)
    n, wins = coded.pair_counts()
    rate = wins / n
    residual = (coded.system_won - rate[coded.pair]) / n[coded.pair]
    cell = combined_codes(coded.participant, coded.excerpt)
    u_l, g_l = _cluster_influence(coded.participant, coded.pair, residual, n_pairs)
    u_e, g_e = _cluster_influence(coded.excerpt, coded.pair, residual, n_pairs)
    u_c, g_c = _cluster_influence(cell, coded.pair, residual, n_pairs)
    cov = two_way_covariance(u_l, u_e, u_c, g_l, g_e, g_c, n)
    table = rate_inference_from_sums(n, wins, rate, cov, confidence)
    low, high = wilson_interval(wins, n, confidence)
    out = pd.DataFrame({"system": [p[0] for p in coded.pairs], "opponent": [p[1] for p in coded.pairs],
                        "n": n.astype(np.int64), "wins": wins.astype(np.int64)})
    out = pd.concat([out, table], axis=1)
    out["ci_low"] = out["ci_low"].clip(0.0, 1.0)
    out["ci_high"] = out["ci_high"].clip(0.0, 1.0)
    out["p_holm"] = holm(out["p_value"].to_numpy())
    out["method"] = RATE_METHOD
    out["unit"] = UNIT
    out["ci_low_wilson"], out["ci_high_wilson"] = low, high
    out["p_value_binomial"] = np.maximum(binomial_p_half(wins, n), P_FLOOR)
    out["note"] = [
        "" if np.isfinite(row.p_value) else
        _not_estimable_reason(row.n, row.wins, row.g_listeners, row.g_excerpts, row.system, row.opponent)
        for row in out.itertuples(index=False)
    ]
    return out


def one_sided_lower(estimate: np.ndarray, se: np.ndarray, df: np.ndarray, null: float,
                    alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """(lower confidence bound at 1 - alpha, p-value of H0: parameter <= null), t with `df`;
    NaN where `se` or `df` is NaN."""
    ok = np.isfinite(se) & np.isfinite(df)
    safe_df = np.where(ok, df, 1.0)
    safe_se = np.where(ok, se, 1.0)
    lower = estimate - stats.t.ppf(1.0 - alpha, safe_df) * safe_se
    p = np.maximum(stats.t.sf((estimate - null) / safe_se, safe_df), P_FLOOR)
    return np.where(ok, lower, np.nan), np.where(ok, p, np.nan)


def _rating_rows(attribute: str, systems: list[str], estimate: np.ndarray, cov: TwoWayCovariance,
                 confidence: float) -> tuple[list[dict], list[dict]]:
    """(pairwise differences, per-system means) rows of one attribute."""
    k = len(systems)
    eye = np.eye(k)
    comparisons, means = [], []
    for i in range(k):
        variance = cov.contrast(eye[i])[0]
        result = {key: float(v) for key, v in t_inference(estimate[i], variance, cov.df, 0.0, confidence).items()}
        means.append({"attribute": attribute, "system": systems[i], "mean": estimate[i], "se_cluster": result["se"],
                      "ci_low": result["ci_low"], "ci_high": result["ci_high"], "df": result["df"]})
        for j in range(i + 1, k):
            variance = cov.contrast(eye[i] - eye[j])[0]
            result = {key: float(v) for key, v in
                      t_inference(estimate[i] - estimate[j], variance, cov.df, 0.0, confidence).items()}
            comparisons.append({
                "attribute": attribute, "system": systems[i], "opponent": systems[j],
                "mean_difference": estimate[i] - estimate[j], "se_cluster": result["se"], "df": result["df"],
                "ci_low": result["ci_low"], "ci_high": result["ci_high"], "p_value": result["p_value"],
            })
    return comparisons, means


def rating_comparisons(df: pd.DataFrame, confidence: float = 0.95, alpha: float = 0.05
                       ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Headline rating inference: mean score of each system per attribute and every pairwise
    difference, with two-way clustered t intervals and tests; Holm across ALL reported rating
    comparisons (every attribute and pair: one family).

    The means are the coefficients of OLS of score on system indicators over the attribute's
    ratings; the covariance is the CGM two-way cluster-robust one (statsmodels
    `cov_type="cluster"` with listener and excerpt groups gives the same).

    Returns:
        (comparisons, means). comparisons: attribute, system, opponent, n_system, n_opponent,
        mean_difference (system - opponent), se_cluster, df, ci_low, ci_high, p_value, p_holm,
        significant (p_holm < alpha), method, unit, note. means: attribute, system, n, mean,
        se_cluster, df, ci_low, ci_high, method, unit.
    """
    from analysis.stats.validation import check_ratings, label_codes

    check_ratings(df)
    participant, _ = label_codes(df["participant"])
    excerpt, _ = label_codes(df["excerpt"])
    cell_all = combined_codes(participant, excerpt)
    score_all = df["score"].to_numpy(np.float64)
    comparisons, means = [], []
    for attribute, rows, system, systems in attribute_systems(df["attribute"], df["system"]):
        k = len(systems)
        counts = np.bincount(system, minlength=k).astype(np.float64)
        estimate = np.bincount(system, weights=score_all[rows], minlength=k) / counts
        residual = (score_all[rows] - estimate[system]) / counts[system]
        influence, n_clusters = [], []
        for codes in (participant[rows], excerpt[rows], cell_all[rows]):
            dense = pd.factorize(codes)[0].astype(np.int64)
            g = int(dense.max()) + 1
            influence.append(np.bincount(dense * k + system, weights=residual, minlength=g * k).reshape(g, k))
            n_clusters.append(g)
        cov = two_way_covariance(*influence, *n_clusters, float(rows.sum()))
        part_comparisons, part_means = _rating_rows(attribute, systems, estimate, cov, confidence)
        for row in part_comparisons:
            row["n_system"] = int(counts[systems.index(row["system"])])
            row["n_opponent"] = int(counts[systems.index(row["opponent"])])
            row["note"] = "" if np.isfinite(row["p_value"]) else (
                f"not estimable: needs ratings from at least 2 listeners and 2 excerpts and a non-zero "
                f"clustered variance (has {n_clusters[0]} listeners, {n_clusters[1]} excerpts)")
        for row, n in zip(part_means, counts):
            row["n"] = int(n)
        comparisons.extend(part_comparisons)
        means.extend(part_means)
    columns = ["attribute", "system", "opponent", "n_system", "n_opponent", "mean_difference", "se_cluster", "df",
               "ci_low", "ci_high", "p_value"]
    comparisons = pd.DataFrame(comparisons, columns=columns + ["note"])
    comparisons["p_holm"] = holm(comparisons["p_value"].to_numpy(np.float64))
    comparisons["significant"] = comparisons["p_holm"] < alpha
    comparisons["method"] = DIFFERENCE_METHOD + "; Holm across all rating comparisons"
    comparisons["unit"] = UNIT
    comparisons = comparisons[columns + ["p_holm", "significant", "method", "unit", "note"]]
    means = pd.DataFrame(means, columns=["attribute", "system", "n", "mean", "se_cluster", "df", "ci_low", "ci_high"])
    means["method"] = RATE_METHOD
    means["unit"] = UNIT
    return comparisons, means


def grid_rating_differences(scores: np.ndarray, confidence: float = 0.95) -> dict[tuple[int, int], dict]:
    """`rating_comparisons` for S simulated studies on a complete grid, vectorised.

    scores: [S, L, E, K], one rating per listener, excerpt and system. Returns, per pair (i, j)
    of systems, the `t_inference` arrays [S] of mean_i - mean_j.
    """
    scores = np.asarray(scores, dtype=np.float64)
    s, n_l, n_e, k = scores.shape
    per_system = n_l * n_e
    estimate = scores.mean(axis=(1, 2))  # [S, K]
    residual = (scores - estimate[:, None, None, :]) / per_system
    n = np.full(s, float(per_system * k))
    cov = two_way_covariance(residual.sum(axis=2), residual.sum(axis=1), residual.reshape(s, n_l * n_e, k),
                             np.full(s, n_l), np.full(s, n_e), np.full(s, n_l * n_e), n)
    eye = np.eye(k)
    out = {}
    for i in range(k):
        for j in range(i + 1, k):
            variance = cov.contrast(eye[i] - eye[j])[0]
            out[(i, j)] = t_inference(estimate[:, i] - estimate[:, j], variance, cov.df, 0.0, confidence)
    return out
