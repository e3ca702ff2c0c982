"""Do the objective fit metrics agree with listeners? Spearman's rho with CIs, per metric.

Each metric of `hafm_core.fit` stands in for one listening attribute (`DEFAULT_METRIC_ATTRIBUTES`:
the rhythm metrics for "rhythmic alignment", the harmony metrics for "harmonic
compatibility", `fit_score` for "overall coherence"). An item is one (excerpt, system): one
accompaniment. Over the items that have both a metric value and ratings, `rho` is Spearman's
(1904) rank correlation between the metric and the item's mean listener rating; ties get
average ranks, as in `scipy.stats.spearmanr`. Three statements of uncertainty:

- `p_value`: two-sided, from t = rho sqrt((n - 2) / (1 - rho^2)) with n - 2 degrees of
  freedom (as `spearmanr`); it treats the n items as independent.
- `fisher_low, fisher_high`: tanh(atanh(rho) -/+ z se) with se = sqrt((1 + rho^2 / 2) / (n - 3)),
  the variance of Fisher's z of Spearman's rho by Bonett & Wright (2000, Psychometrika 65:23);
  it too treats the items as independent.
- `ci_low, ci_high`: percentile interval of a cluster bootstrap over excerpts (Davison &
  Hinkley 1997, section 3.8). The accompaniments of one excerpt share its vocal, so a hard
  vocal can lower every system's metric and rating at once; resampling whole excerpts keeps
  that dependence. This is the interval to quote. Every (metric, attribute) row draws with a
  generator seeded by `seed`, so metrics over the same excerpts see the same resamples.

The bootstrap is vectorised: a replicate is a multiplicity per excerpt, and the rank
correlation of the resampled items (duplicates included) is a frequency-weighted Pearson
correlation of weighted mid-ranks, computed for a block of replicates at once.

Example:
    >>> table = metric_agreement(metrics, ratings)      # doctest: +SKIP
    >>> table[["metric", "attribute", "n_items", "rho", "ci_low", "ci_high"]]   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from analysis.stats.validation import (
    AnalysisInputError,
    check_ratings,
    require_columns,
    require_rows,
)

METRIC_COLUMNS = ("excerpt", "system", "metric", "value")
DEFAULT_METRIC_ATTRIBUTES = {
    "rhythm_score": "rhythmic alignment",
    "beat_f_measure": "rhythmic alignment",
    "onset_xcorr_contrast": "rhythmic alignment",
    "beat_phase_agreement": "rhythmic alignment",
    "tempo_agreement": "rhythmic alignment",
    "harmony_score": "harmonic compatibility",
    "chord_tone_ratio": "harmonic compatibility",
    "key_agreement": "harmonic compatibility",
    "fit_score": "overall coherence",
}
MIN_ITEMS = 4  # the Fisher interval needs n - 3 > 0
MIN_EXCERPTS = 2  # a bootstrap over one excerpt has nothing to resample
_CELLS_PER_BLOCK = 500_000  # replicates x items computed at once (bounds memory to ~40 MB)


def check_metrics(metrics: pd.DataFrame, what: str = "metrics") -> pd.DataFrame:
    """Validate a long metric table and return it with str labels and float64 values.

    Requires the columns `excerpt, system, metric, value`, no empty label, finite numeric
    values and one value per (excerpt, system, metric).
    """
    require_columns(metrics, METRIC_COLUMNS, what)
    require_rows(metrics, what)
    for column in ("excerpt", "system", "metric"):
        empty = metrics[column].isna().to_numpy()
        if empty.any():
            raise AnalysisInputError(f"{what}: column {column!r} is empty in {int(empty.sum())} row(s), "
                                     f"first at row {int(np.flatnonzero(empty)[0])}")
    values = pd.to_numeric(metrics["value"], errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise AnalysisInputError(
            f"{what}: column 'value' must hold finite numbers; {int(bad.sum())} row(s) do not, first at row "
            f"{row} ({metrics['value'].iloc[row]!r} for metric {metrics['metric'].iloc[row]!r}); leave out "
            "excerpts whose fit status is not ok")
    out = pd.DataFrame({column: metrics[column].astype(str).to_numpy() for column in ("excerpt", "system", "metric")})
    out["value"] = values
    duplicated = out.duplicated(["excerpt", "system", "metric"])
    if duplicated.any():
        row = out[duplicated].iloc[0]
        raise AnalysisInputError(
            f"{what}: {int(duplicated.sum())} duplicated (excerpt, system, metric) row(s), first "
            f"({row.excerpt!r}, {row.system!r}, {row.metric!r}); give each item one value per metric")
    return out


def item_ratings(ratings: pd.DataFrame) -> pd.DataFrame:
    """Mean listener score per (excerpt, system, attribute): excerpt, system, attribute,
    mean_rating, n_ratings (labels as str)."""
    check_ratings(ratings)
    frame = pd.DataFrame({column: ratings[column].astype(str).to_numpy()
                          for column in ("excerpt", "system", "attribute")})
    frame["score"] = ratings["score"].to_numpy(np.float64)
    grouped = frame.groupby(["excerpt", "system", "attribute"], sort=True)["score"]
    return grouped.agg(mean_rating="mean", n_ratings="size").reset_index()


def _weighted_midranks(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mid-ranks of each item in each weighted sample.

    Args:
        values: float64 [n]. weights: float64 [B, n], item i counted weights[b, i] times in
            sample b (0: left out).

    Returns:
        float64 [B, n]: the average rank of item i's value among the sample's values, ties
        (equal values, or copies of one item) sharing the mean of their ranks.
    """
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    starts_group = np.r_[True, sorted_values[1:] != sorted_values[:-1]]  # (n,)
    group = np.empty(values.size, dtype=np.int64)
    group[order] = np.cumsum(starts_group) - 1
    group_weight = np.add.reduceat(weights[:, order], np.flatnonzero(starts_group), axis=1)  # (B, K)
    below = np.cumsum(group_weight, axis=1) - group_weight  # (B, K) copies of smaller values
    return (below + (group_weight + 1.0) / 2.0)[:, group]  # (B, n)


def weighted_spearman(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Spearman's rho of each weighted sample, as if item i appeared weights[b, i] times.

    Args:
        x, y: float64 [n]. weights: float64 [B, n] non-negative integer counts.

    Returns:
        float64 [B]; nan where the sample's x or y is constant.
    """
    rank_x = _weighted_midranks(x, weights)  # (B, n)
    rank_y = _weighted_midranks(y, weights)
    mean_rank = (weights.sum(axis=1, keepdims=True) + 1.0) / 2.0  # (B, 1): ranks 1..N average (N+1)/2
    dx, dy = rank_x - mean_rank, rank_y - mean_rank
    var_x = np.einsum("bi,bi,bi->b", weights, dx, dx)
    var_y = np.einsum("bi,bi,bi->b", weights, dy, dy)
    cov = np.einsum("bi,bi,bi->b", weights, dx, dy)
    rho = np.full(weights.shape[0], np.nan)
    ok = (var_x > 0) & (var_y > 0)
    rho[ok] = np.clip(cov[ok] / np.sqrt(var_x[ok] * var_y[ok]), -1.0, 1.0)
    return rho


def cluster_bootstrap_rho(x: np.ndarray, y: np.ndarray, cluster: np.ndarray, n_boot: int,
                          rng: np.random.Generator) -> np.ndarray:
    """Spearman's rho of `n_boot` resamples of whole clusters (drawn with replacement).

    Args:
        x, y: float64 [n]. cluster: int64 [n] codes 0..G-1 (the excerpt of each item).

    Returns:
        float64 [n_boot]; nan for a resample whose x or y is constant.
    """
    n_clusters = int(cluster.max()) + 1
    block = max(1, _CELLS_PER_BLOCK // max(x.size, n_clusters))
    out = np.empty(n_boot)
    for start in range(0, n_boot, block):
        size = min(block, n_boot - start)
        drawn = rng.integers(0, n_clusters, size=(size, n_clusters))  # (size, G) excerpt indices
        offsets = np.arange(size)[:, None] * n_clusters
        multiplicity = np.bincount((drawn + offsets).ravel(), minlength=size * n_clusters)
        multiplicity = multiplicity.reshape(size, n_clusters).astype(np.float64)  # (size, G)
        out[start:start + size] = weighted_spearman(x, y, multiplicity[:, cluster])
    return out


def spearman_p_value(rho: float, n: int) -> float:
    """Two-sided p of rho = 0 from the t approximation with n - 2 dof (as scipy.stats.spearmanr)."""
    if abs(rho) >= 1.0:
        return 0.0
    t = rho * np.sqrt((n - 2) / (1.0 - rho * rho))
    return float(2.0 * stats.t.sf(abs(t), n - 2))


def fisher_interval(rho: float, n: int, confidence: float) -> tuple[float, float]:
    """Fisher z interval of Spearman's rho with the Bonett-Wright (2000) standard error."""
    if abs(rho) >= 1.0:
        return float(rho), float(rho)
    z = stats.norm.ppf(1.0 - (1.0 - confidence) / 2.0)
    se = np.sqrt((1.0 + rho * rho / 2.0) / (n - 3))
    centre = np.arctanh(rho)
    return float(np.tanh(centre - z * se)), float(np.tanh(centre + z * se))


def _pairs(metrics: pd.DataFrame, items: pd.DataFrame, mapping: Mapping[str, str] | None) -> list[tuple[str, str]]:
    """(metric, attribute) pairs to correlate: all of an explicit mapping (each must be
    present), or those of the default mapping present in both tables."""
    present_metrics, present_attributes = set(metrics["metric"]), set(items["attribute"])
    if mapping is not None:
        for metric, attribute in mapping.items():
            if metric not in present_metrics:
                raise AnalysisInputError(f"metrics: no rows for metric {metric!r}; "
                                         f"found {sorted(present_metrics)}")
            if attribute not in present_attributes:
                raise AnalysisInputError(f"ratings: no rows for attribute {attribute!r} (matched to metric "
                                         f"{metric!r}); found {sorted(present_attributes)}")
        return list(mapping.items())
    pairs = [(m, a) for m, a in DEFAULT_METRIC_ATTRIBUTES.items() if m in present_metrics and a in present_attributes]
    if not pairs:
        raise AnalysisInputError(
            f"metric agreement: no metric matches a rated attribute; metrics {sorted(present_metrics)}, "
            f"attributes {sorted(present_attributes)}; give a mapping metric -> attribute")
    return pairs


def _no_overlap(metric: str, attribute: str, metric_rows: pd.DataFrame, rated: pd.DataFrame) -> AnalysisInputError:
    def examples(frame):
        return ", ".join(f"({e!r}, {s!r})" for e, s in frame[["excerpt", "system"]].head(3).itertuples(index=False))

    return AnalysisInputError(
        f"metric {metric!r} and attribute {attribute!r} share no (excerpt, system) item: the metrics have "
        f"{examples(metric_rows)} ..., the ratings {examples(rated)} ...; the excerpt and system labels "
        "of both tables must match")


def metric_agreement(metrics: pd.DataFrame, ratings: pd.DataFrame, mapping: Mapping[str, str] | None = None,
                     n_boot: int = 2000, seed: int = 0, confidence: float = 0.95,
                     strict: bool = True) -> pd.DataFrame:
    """Spearman's rho between each metric and the mean rating of its attribute, with CIs.

    Args:
        metrics: long table `excerpt, system, metric, value`, one value per item and metric
            (`hafm fit --csv` writes it).
        ratings: rating export `participant, excerpt, system, attribute, score`.
        mapping: metric -> attribute; None: `DEFAULT_METRIC_ATTRIBUTES`, keeping the pairs
            present in both tables. Every pair of an explicit mapping must be present.
        n_boot: cluster-bootstrap replicates over excerpts. seed: their generator's seed.
        confidence: coverage of both intervals.
        strict: raise AnalysisInputError for a pair that cannot be estimated (fewer than
            MIN_ITEMS items or MIN_EXCERPTS excerpts, a constant metric or mean rating);
            False: give it a row with empty statistics and the reason in `note`.
            Items in no common (excerpt, system) raise in both modes.

    Returns:
        One row per (metric, attribute): metric, attribute, n_items, n_excerpts, n_ratings,
        rho, p_value, ci_low, ci_high (bootstrap), fisher_low, fisher_high, confidence,
        n_boot, boot_degenerate (replicates with a constant resample, left out of the
        percentiles), note.
    """
    if n_boot < 2:
        raise AnalysisInputError(f"metric agreement: n_boot must be at least 2, got {n_boot}")
    if not 0.0 < confidence < 1.0:
        raise AnalysisInputError(f"metric agreement: confidence must lie in (0, 1), got {confidence}")
    metrics = check_metrics(metrics)
    items = item_ratings(ratings)
    rows = []
    for metric, attribute in _pairs(metrics, items, mapping):
        metric_rows = metrics[metrics["metric"] == metric]
        rated = items[items["attribute"] == attribute]
        joined = metric_rows.merge(rated, on=["excerpt", "system"], how="inner").sort_values(["excerpt", "system"])
        if joined.empty:
            raise _no_overlap(metric, attribute, metric_rows, rated)
        rows.append(_correlate(metric, attribute, joined, n_boot, seed, confidence, strict))
    return pd.DataFrame(rows)


def _correlate(metric: str, attribute: str, joined: pd.DataFrame, n_boot: int, seed: int, confidence: float,
               strict: bool) -> dict:
    x = joined["value"].to_numpy(np.float64)
    y = joined["mean_rating"].to_numpy(np.float64)
    cluster, excerpts = pd.factorize(joined["excerpt"], sort=True)
    n, n_excerpts = x.size, len(excerpts)
    row = {"metric": metric, "attribute": attribute, "n_items": n, "n_excerpts": n_excerpts,
           "n_ratings": int(joined["n_ratings"].sum()), "rho": np.nan, "p_value": np.nan, "ci_low": np.nan,
           "ci_high": np.nan, "fisher_low": np.nan, "fisher_high": np.nan, "confidence": confidence,
           "n_boot": n_boot, "boot_degenerate": 0, "note": ""}
    problem = None
    if n < MIN_ITEMS or n_excerpts < MIN_EXCERPTS:
        problem = (f"{n} item(s) over {n_excerpts} excerpt(s); need at least {MIN_ITEMS} items "
                   f"and {MIN_EXCERPTS} excerpts")
    elif np.ptp(x) == 0:
        problem = f"the metric is constant ({x[0]:.6g}) over the {n} items"
    elif np.ptp(y) == 0:
        problem = f"the mean rating is constant ({y[0]:.6g}) over the {n} items"
    if problem:
        if strict:
            raise AnalysisInputError(f"metric {metric!r} vs attribute {attribute!r}: {problem}")
        row["note"] = f"not estimable: {problem}"
        return row
    rho = float(weighted_spearman(x, y, np.ones((1, n)))[0])
    replicates = cluster_bootstrap_rho(x, y, cluster.astype(np.int64), n_boot, np.random.default_rng(seed))
    valid = replicates[np.isfinite(replicates)]
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(valid, [tail, 100.0 - tail]) if valid.size else (np.nan, np.nan)
    fisher_low, fisher_high = fisher_interval(rho, n, confidence)
    row.update(rho=rho, p_value=spearman_p_value(rho, n), ci_low=float(low), ci_high=float(high),
               fisher_low=fisher_low, fisher_high=fisher_high, boot_degenerate=int(n_boot - valid.size))
    if valid.size < n_boot:
        row["note"] = f"{n_boot - valid.size} of {n_boot} resamples had a constant metric or rating"
    return row
