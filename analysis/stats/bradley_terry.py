"""Bradley-Terry scores for all systems from every 2AFC judgment, with bootstrap CIs.

Model (Bradley & Terry 1952): P(i preferred over j) = p_i / (p_i + p_j), score_i = log p_i.
Fitted by Hunter's (2004) minorization-maximization algorithm, "MM algorithms for generalized
Bradley-Terry models", Ann. Statist. 32(1): p_i <- W_i / sum_j n_ij / (p_i + p_j). The
maximum-likelihood estimate is the same as a logistic regression of "left chosen" on
(e_left - e_right) without intercept (tests check against statsmodels `Logit`). It exists
only when every system has won and lost against the rest (Ford 1957: the directed win graph
is strongly connected); otherwise `prior` adds that many virtual wins each way per compared
pair. The MM update runs on a stack of win matrices at once, so bootstrap replicates
(listeners, excerpts and their cells resampled, combined as in `analysis.stats.clustered`)
cost one vectorised loop per clustering.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse.csgraph import connected_components

from analysis.stats.clustered import t_inference
from analysis.stats.encoding import combined_codes, encode_judgments
from analysis.stats.resampling import group_sums, resampled_sums
from analysis.stats.validation import AnalysisInputError


def fit_mm(wins: np.ndarray, max_iter: int = 10_000, tol: float = 1e-10) -> np.ndarray:
    """Bradley-Terry log-strengths from win matrices by Hunter's MM algorithm.

    Args:
        wins: float64 [..., K, K]; wins[..., i, j] = times i was preferred over j.

    Returns:
        float64 [..., K] log-strengths with mean 0 over systems; -inf for a system that never
        won; large finite values where the estimate does not exist (no convergence).
    """
    wins = np.asarray(wins, dtype=np.float64)
    games = wins + np.swapaxes(wins, -1, -2)  # n_ij
    total_wins = wins.sum(axis=-1)
    strength = np.ones(wins.shape[:-1])
    for _ in range(max_iter):
        pair_sum = strength[..., :, None] + strength[..., None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            denominator = np.where(games > 0, games / pair_sum, 0.0).sum(axis=-1)
            updated = np.where(denominator > 0, total_wins / denominator, 0.0)
        updated /= updated.sum(axis=-1, keepdims=True) / updated.shape[-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            change = np.nanmax(np.abs(np.log(updated) - np.log(strength)), initial=0.0)
        strength = updated
        if not np.isfinite(change) or change < tol:
            break
    with np.errstate(divide="ignore"):
        log_strength = np.log(strength)
    finite = np.where(np.isfinite(log_strength), log_strength, np.nan)
    return log_strength - np.nanmean(finite, axis=-1, keepdims=True)


def _strongly_connected(wins: np.ndarray) -> bool:
    n_components, _ = connected_components(wins > 0, directed=True, connection="strong")
    return n_components == 1


def _reachability_ok(wins: np.ndarray) -> np.ndarray:
    """bool [B]: each win matrix [B, K, K] gives a strongly connected win graph."""
    k = wins.shape[-1]
    reach = (wins > 0) | np.eye(k, dtype=bool)
    for _ in range(int(np.ceil(np.log2(max(k, 2))))):
        reach = reach | (np.einsum("bij,bjk->bik", reach.astype(np.int32), reach.astype(np.int32)) > 0)
    return reach.all(axis=(-1, -2))


METHOD = ("two-way cluster bootstrap variance (listener + excerpt - listener x excerpt, CGM 2011) "
          "with t(min(G_listener, G_excerpt) - 1)")
UNIT = "listener and excerpt (two-way)"


def _bootstrap_variance(cluster: np.ndarray, outcome: np.ndarray, k: int, extra: np.ndarray, n_boot: int,
                        rng: np.random.Generator, anchor) -> tuple[np.ndarray, int]:
    """Variance [K] of the anchored scores when clusters `cluster` (int64 [N]) are resampled,
    and the number of replicates with a finite estimate."""
    per_cluster = group_sums(cluster, outcome, np.ones(cluster.size), k * k)
    replicate_wins = resampled_sums(per_cluster, n_boot, rng).reshape(n_boot, k, k) + extra
    valid = _reachability_ok(replicate_wins)
    if valid.sum() < 2:
        return np.full(k, np.nan), int(valid.sum())
    return np.var(anchor(fit_mm(replicate_wins[valid])), axis=0, ddof=1), int(valid.sum())


def comparison_parts(df: pd.DataFrame) -> list[list[str]]:
    """Systems in each connected part of the comparison graph (systems linked when judged
    against each other), in canonical system order, largest part first."""
    coded = encode_judgments(df)
    k = len(coded.systems)
    compared = np.zeros((k, k))
    np.add.at(compared, (coded.winner, coded.loser), 1.0)
    n_parts, label = connected_components(compared + compared.T > 0, directed=False)
    parts = [[s for s, lab in zip(coded.systems, label) if lab == part] for part in range(n_parts)]
    return sorted(parts, key=len, reverse=True)


def bradley_terry(
    df: pd.DataFrame,
    reference: str | None = "ground-truth",
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    prior: float | None = 0.0,
) -> pd.DataFrame:
    """Bradley-Terry score of every system with a two-way (listener and excerpt) clustered CI:
    score +/- t * sqrt(V_listener + V_excerpt - V_cell), each V a cluster-bootstrap variance.

    Scores are only comparable inside a connected part of the comparison graph; with several
    parts (A-B judged, C-D judged, never A or B against C or D) each part is fitted on its own
    (column `part`, its own anchor) and the `note` says so.

    Args:
        df: preference export.
        reference: system whose score is 0 in its part (others are log-odds against it); None
            or absent from a part: the part's scores have mean 0.
        n_boot: bootstrap replicates per clustering (listener, excerpt, cell); 0 skips the CIs.
        prior: virtual wins added each way to every compared pair (0: plain MLE); None: 0.5
            exactly where the MLE does not exist (a part's win graph not strongly connected).

    Returns:
        One row per system: system, score, ci_low, ci_high, share (p_i / sum p in its part),
        wins, n, n_boot_valid (replicates whose estimate exists), part, prior, method, unit,
        note. Sorted by part, then score, best first. CIs are NaN ("not estimable") with fewer
        than 2 listeners or 2 excerpts, or when no replicate has an estimate.
    """
    parts = comparison_parts(df)
    if len(parts) == 1:
        return _fit_part(df, parts[0], reference, n_boot, seed, confidence, prior, 1, "")
    left, right = df["system_left"].astype(str), df["system_right"].astype(str)
    note = ("comparison graph in {n} parts ({parts}): scores compare only within a part".format(
        n=len(parts), parts="; ".join(" / ".join(p) for p in parts)))
    tables = []
    for number, systems in enumerate(parts, start=1):
        rows = left.isin(systems) & right.isin(systems)
        tables.append(_fit_part(df[rows.to_numpy()], systems, reference, n_boot, seed + number, confidence,
                                prior, number, note))
    return pd.concat(tables, ignore_index=True)


def _fit_part(df: pd.DataFrame, systems: list[str], reference: str | None, n_boot: int, seed: int,
              confidence: float, prior: float | None, part: int, note: str) -> pd.DataFrame:
    coded = encode_judgments(df)
    k = len(coded.systems)
    compared = np.zeros((k, k))
    np.add.at(compared, (coded.winner, coded.loser), 1.0)
    compared_mask = (compared + compared.T) > 0
    notes = [note] if note else []
    if prior is None:
        prior = 0.0 if _strongly_connected(compared) else 0.5
        if prior:
            notes.append("no finite maximum-likelihood estimate (a system never won or never lost against "
                         "the rest): 0.5 virtual wins added each way per compared pair")
    wins = compared + prior * compared_mask
    if not _strongly_connected(wins):
        never_lost = [s for s, row in zip(coded.systems, wins.T) if row.sum() == 0]
        never_won = [s for s, row in zip(coded.systems, wins) if row.sum() == 0]
        raise AnalysisInputError(
            "Bradley-Terry: no finite estimate, the win graph is not strongly connected "
            f"(never won: {never_won or 'none'}, never lost: {never_lost or 'none'}); "
            "collect more judgments or pass prior=None (0.5 virtual wins where needed)"
        )
    ref_index = coded.systems.index(reference) if reference in coded.systems else None

    def anchor(scores: np.ndarray) -> np.ndarray:
        return scores - scores[..., [ref_index]] if ref_index is not None else scores

    score = anchor(fit_mm(wins))
    low = high = np.full(k, np.nan)
    n_valid = 0
    n_listeners, n_excerpts = len(coded.participants), len(coded.excerpts)
    if n_boot > 0 and min(n_listeners, n_excerpts) < 2:
        notes.append(f"CIs not estimable: resampling needs at least 2 listeners and 2 excerpts "
                     f"(has {n_listeners} and {n_excerpts})")
    elif n_boot > 0:
        rng = np.random.default_rng(seed)
        outcome = coded.winner * k + coded.loser
        cell = combined_codes(coded.participant, coded.excerpt)
        parts = [_bootstrap_variance(c, outcome, k, prior * compared_mask, n_boot, rng, anchor)
                 for c in (coded.participant, coded.excerpt, cell)]
        (v_listener, _), (v_excerpt, _), (v_cell, _) = parts
        n_valid = min(valid for _, valid in parts)
        variance = np.maximum(v_listener + v_excerpt - v_cell, np.maximum(v_listener, v_excerpt))
        inference = t_inference(score, variance, np.float64(min(n_listeners, n_excerpts) - 1), 0.0, confidence)
        low, high = inference["ci_low"], inference["ci_high"]
        if not np.isfinite(low).any():
            notes.append("CIs not estimable: too few bootstrap replicates have a finite estimate")
        if n_valid < n_boot:
            notes.append(f"up to {n_boot - n_valid} of {n_boot} replicates per clustering had no finite "
                         "estimate and were dropped")
    share = np.exp(score - score.max())
    out = pd.DataFrame(
        {
            "system": list(coded.systems),
            "score": score,
            "ci_low": low,
            "ci_high": high,
            "share": share / share.sum(),
            "wins": compared.sum(axis=1).astype(np.int64),
            "n": (compared.sum(axis=1) + compared.sum(axis=0)).astype(np.int64),
            "n_boot_valid": n_valid,
            "part": part,
            "prior": prior,
            "method": METHOD,
            "unit": UNIT,
            "note": "; ".join(notes),
        }
    )
    return out.sort_values("score", ascending=False, ignore_index=True)
