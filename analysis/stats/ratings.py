"""Attribute ratings: Friedman test, pairwise Wilcoxon signed-rank with Holm, effect sizes.

Ratings come as `participant, excerpt, system, attribute, score`. A block is one
(participant, excerpt) in which a listener rated several systems; repeated ratings of the
same cell are averaged, and only blocks that rated every system enter the tests (Friedman
needs complete blocks; the count of dropped blocks is reported).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats

from analysis.stats.encoding import attribute_systems, combined_codes, system_order
from analysis.stats.validation import AnalysisInputError, check_ratings, label_codes


def rating_blocks(df: pd.DataFrame) -> dict[str, tuple[np.ndarray, list[str], int]]:
    """Complete blocks per attribute.

    Returns:
        attribute -> (scores float64 [n_blocks, K] in system order, the K systems,
        number of incomplete blocks dropped).
    """
    check_ratings(df)
    block_all = combined_codes(label_codes(df["participant"])[0], label_codes(df["excerpt"])[0])
    score_all = df["score"].to_numpy(np.float64)
    out = {}
    for attribute, rows, system_code, systems in attribute_systems(df["attribute"], df["system"]):
        block_code, _ = pd.factorize(block_all[rows])
        n_blocks, k = int(block_code.max()) + 1, len(systems)
        key = block_code * k + system_code
        total = np.bincount(key, weights=score_all[rows], minlength=n_blocks * k)
        count = np.bincount(key, minlength=n_blocks * k)
        complete = (count.reshape(n_blocks, k) > 0).all(axis=1)
        with np.errstate(invalid="ignore"):
            mean = (total / count).reshape(n_blocks, k)
        out[attribute] = (mean[complete], systems, int((~complete).sum()))
    return out


def _usable(attribute: str, scores: np.ndarray, systems: list[str]) -> None:
    if len(systems) < 2:
        raise AnalysisInputError(f"ratings: attribute {attribute!r} rates only {systems}")
    if scores.shape[0] < 2:
        raise AnalysisInputError(
            f"ratings: attribute {attribute!r} has {scores.shape[0]} complete block(s) "
            f"(a participant and excerpt rating all of {systems}); need at least 2"
        )


def friedman(df: pd.DataFrame) -> pd.DataFrame:
    """Friedman (1937) test per attribute, with tie correction, and Kendall's W.

    chi2 = [12 / (n k (k+1)) * sum_j R_j^2 - 3 n (k+1)] / [1 - sum (t^3 - t) / (n (k^3 - k))]
    for n blocks, k systems, rank sums R_j and tie groups t (as scipy.stats.friedmanchisquare).
    Kendall's W = chi2 / (n (k - 1)) (Kendall & Babington Smith 1939; tie-corrected W).

    Returns:
        One row per attribute: attribute, n_blocks, k, chi2, dof, p_value, kendall_w,
        blocks_dropped.
    """
    rows = []
    for attribute, (scores, systems, dropped) in rating_blocks(df).items():
        _usable(attribute, scores, systems)
        n, k = scores.shape
        ranks = stats.rankdata(scores, axis=1)
        rank_sums = ranks.sum(axis=0)
        chi2 = 12.0 / (n * k * (k + 1)) * np.sum(rank_sums**2) - 3.0 * n * (k + 1)
        sorted_scores = np.sort(scores, axis=1)
        new_group = np.ones((n, k), dtype=bool)
        new_group[:, 1:] = sorted_scores[:, 1:] != sorted_scores[:, :-1]
        group_id = np.cumsum(new_group.ravel()) - 1
        sizes = np.bincount(group_id).astype(np.float64)
        ties = np.sum(sizes**3 - sizes)
        correction = 1.0 - ties / (n * (k**3 - k))
        chi2 = chi2 / correction if correction > 0 else np.nan
        rows.append(
            {
                "attribute": attribute,
                "n_blocks": n,
                "k": k,
                "chi2": chi2,
                "dof": k - 1,
                "p_value": stats.chi2.sf(chi2, k - 1),
                "kendall_w": chi2 / (n * (k - 1)),
                "blocks_dropped": dropped,
            }
        )
    return pd.DataFrame(rows)


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values (as statsmodels multipletests method="holm")."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p)
    m = p.size
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def rank_biserial(differences: np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation (Kerby 2014): (R+ - R-) / (R+ + R-).

    Zero differences are dropped (as the Wilcoxon 'wilcox' zero method); ranks of |d| with
    ties averaged. +1: the first system always rated higher; 0: no tendency.
    """
    d = np.asarray(differences, dtype=np.float64)
    d = d[d != 0]
    if d.size == 0:
        return 0.0
    ranks = stats.rankdata(np.abs(d))
    return float((ranks[d > 0].sum() - ranks[d < 0].sum()) / ranks.sum())


def wilcoxon_pairs(df: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Post-hoc pairwise Wilcoxon (1945) signed-rank tests per attribute, Holm-corrected.

    Each pair of systems is compared on the complete blocks of its attribute (two-sided,
    zeros dropped, scipy.stats.wilcoxon); the Holm family is the attribute's pairs.

    Returns:
        One row per attribute and pair: attribute, system, opponent, n_blocks, n_nonzero,
        mean_difference (system - opponent), statistic, p_value, p_holm, rank_biserial,
        significant (p_holm < alpha).
    """
    rows = []
    for attribute, (scores, systems, _) in rating_blocks(df).items():
        _usable(attribute, scores, systems)
        family = []
        for (i, system), (j, opponent) in itertools.combinations(enumerate(systems), 2):
            d = scores[:, i] - scores[:, j]
            nonzero = int(np.count_nonzero(d))
            if nonzero:
                result = stats.wilcoxon(scores[:, i], scores[:, j], zero_method="wilcox")
                statistic, p_value = float(result.statistic), float(result.pvalue)
            else:
                statistic, p_value = 0.0, 1.0
            family.append(
                {
                    "attribute": attribute,
                    "system": system,
                    "opponent": opponent,
                    "n_blocks": scores.shape[0],
                    "n_nonzero": nonzero,
                    "mean_difference": float(d.mean()),
                    "statistic": statistic,
                    "p_value": p_value,
                    "rank_biserial": rank_biserial(d),
                }
            )
        adjusted = holm(np.array([row["p_value"] for row in family]))
        for row, p_holm in zip(family, adjusted):
            row["p_holm"] = p_holm
            row["significant"] = bool(p_holm < alpha)
        rows.extend(family)
    return pd.DataFrame(rows)


def rating_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, SD, median and count of scores per attribute and system (all rows, no blocks)."""
    check_ratings(df)
    grouped = df.groupby(["attribute", "system"], sort=False)["score"]
    out = grouped.agg(n="size", mean="mean", sd="std", median="median").reset_index()
    out["se"] = out["sd"] / np.sqrt(out["n"])
    order = {s: i for i, s in enumerate(system_order(out["system"].astype(str).tolist()))}
    out["_order"] = out["system"].map(order)
    return out.sort_values(["attribute", "_order"]).drop(columns="_order").reset_index(drop=True)


def rating_distribution(df: pd.DataFrame) -> pd.DataFrame:
    """Counts of each score per attribute and system: attribute, system, score, count."""
    check_ratings(df)
    return df.groupby(["attribute", "system", "score"]).size().rename("count").reset_index()
