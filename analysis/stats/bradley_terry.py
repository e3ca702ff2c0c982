"""Bradley-Terry scores for all systems from every 2AFC judgment, with bootstrap CIs.

Model (Bradley & Terry 1952): P(i preferred over j) = p_i / (p_i + p_j), score_i = log p_i.
Fitted by Hunter's (2004) minorization-maximization algorithm, "MM algorithms for generalized
Bradley-Terry models", Ann. Statist. 32(1): p_i <- W_i / sum_j n_ij / (p_i + p_j). The
maximum-likelihood estimate is the same as a logistic regression of "left chosen" on
(e_left - e_right) without intercept (tests check against statsmodels `Logit`). It exists
only when every system has won and lost against the rest (Ford 1957: the directed win graph
is strongly connected); otherwise `prior` adds that many virtual wins each way per compared
pair. The MM update runs on a stack of win matrices at once, so bootstrap replicates
(listeners resampled, see `analysis.stats.resampling`) cost one vectorised loop.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse.csgraph import connected_components

from analysis.stats.encoding import encode_judgments
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


def bradley_terry(
    df: pd.DataFrame,
    reference: str | None = "ground-truth",
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    prior: float = 0.0,
) -> pd.DataFrame:
    """Bradley-Terry score of every system with a listener-cluster bootstrap percentile CI.

    Args:
        df: preference export.
        reference: system whose score is 0 (others are log-odds against it); None or absent:
            scores have mean 0.
        n_boot: bootstrap replicates (listeners resampled with replacement); 0 skips the CIs.
        prior: virtual wins added each way to every compared pair (0: plain MLE).

    Returns:
        One row per system: system, score, ci_low, ci_high, share (p_i / sum p), wins, n,
        n_boot_valid (replicates whose estimate exists). Sorted by score, best first.
    """
    coded = encode_judgments(df)
    k = len(coded.systems)
    compared = np.zeros((k, k))
    np.add.at(compared, (coded.winner, coded.loser), 1.0)
    compared_mask = (compared + compared.T) > 0
    wins = compared + prior * compared_mask
    if not _strongly_connected(wins):
        never_lost = [s for s, row in zip(coded.systems, wins.T) if row.sum() == 0]
        never_won = [s for s, row in zip(coded.systems, wins) if row.sum() == 0]
        raise AnalysisInputError(
            "Bradley-Terry: no finite estimate, the win graph is not connected "
            f"(never won: {never_won or 'none'}, never lost: {never_lost or 'none'}); "
            "collect more judgments or pass prior=0.5"
        )
    ref_index = coded.systems.index(reference) if reference in coded.systems else None

    def anchor(scores: np.ndarray) -> np.ndarray:
        return scores - scores[..., [ref_index]] if ref_index is not None else scores

    score = anchor(fit_mm(wins))
    low = high = np.full(k, np.nan)
    n_valid = 0
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        per_listener = group_sums(coded.participant, coded.winner * k + coded.loser, np.ones(coded.n), k * k)
        replicate_wins = resampled_sums(per_listener, n_boot, rng).reshape(n_boot, k, k)
        replicate_wins += prior * compared_mask
        valid = _reachability_ok(replicate_wins)
        n_valid = int(valid.sum())
        if n_valid:
            replicate_scores = anchor(fit_mm(replicate_wins[valid]))
            alpha = 1.0 - confidence
            low = np.quantile(replicate_scores, alpha / 2, axis=0)
            high = np.quantile(replicate_scores, 1 - alpha / 2, axis=0)
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
        }
    )
    return out.sort_values("score", ascending=False, ignore_index=True)
