"""The Frechet distance between two Gaussians, in float64 through the symmetric `eigh` form.

    FAD = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a^1/2 S_b S_a^1/2)^1/2)

For any factor `F` with `F F^T = S_a`, the matrix `F^T S_b F` is symmetric positive
semi-definite and has the eigenvalues of `S_a S_b`, so the square roots of its eigenvalues
(`eigvalsh`) sum to `tr((S_a S_b)^1/2)`. `F = S_a^1/2` gives the textbook symmetric form
`S_a^1/2 S_b S_a^1/2`; we take the Cholesky factor when `S_a` is positive definite (about
ten times cheaper than an `eigh` with vectors, and as backward stable), and
`F = V diag(sqrt(max(lambda, 0)))` from `eigh` when it is not (fewer files than dimensions).
This replaces `scipy.linalg.sqrtm` of the non-symmetric product, which goes complex or
negative on ill-conditioned covariances (see shared/design/FAD.md). Tiny negative
eigenvalues from rounding are clipped to zero and the result is never negative.
"""

from __future__ import annotations

import numpy as np

from hafm_core.fad.errors import EmbeddingShapeError


def _checked(mu: np.ndarray, cov: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(mu, dtype=np.float64)
    cov = np.asarray(cov, dtype=np.float64)
    if mu.ndim != 1 or cov.shape != (mu.shape[0], mu.shape[0]):
        raise EmbeddingShapeError(
            f"{name}: mean of shape {mu.shape} and covariance of shape {cov.shape} do not match "
            "(expected [D] and [D, D])"
        )
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(cov))):
        raise EmbeddingShapeError(f"{name}: mean or covariance holds NaN or Inf")
    return mu, cov


def psd_factor(cov: np.ndarray) -> np.ndarray:
    """F float64 [D, D] with F F^T = cov for a symmetric PSD `cov` (Cholesky, else eigh)."""
    cov = 0.5 * (cov + cov.T)
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:  # singular or rounding-negative: the eigh factor always exists
        eigenvalues, eigenvectors = np.linalg.eigh(cov)
        return eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))


def trace_sqrt_product(factor_a: np.ndarray, cov_b: np.ndarray) -> np.ndarray | float:
    """`tr((S_a S_b)^1/2)` given `F` with `F F^T = S_a` and `S_b` [D, D] or a stack [B, D, D]."""
    middle = factor_a.T @ cov_b @ factor_a
    middle = 0.5 * (middle + np.swapaxes(middle, -1, -2))
    eigenvalues = np.linalg.eigvalsh(middle)
    return np.sqrt(np.clip(eigenvalues, 0.0, None)).sum(axis=-1)


def frechet_distance(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray) -> float:
    """Frechet distance between N(mu_a, cov_a) and N(mu_b, cov_b), float64, never negative.

    Args:
        mu_a, mu_b: float [D] means.
        cov_a, cov_b: float [D, D] symmetric PSD covariances (rank-deficient is fine).
    Raises:
        EmbeddingShapeError: the two sides have different D, or hold NaN/Inf.
    """
    mu_a, cov_a = _checked(mu_a, cov_a, "first set")
    mu_b, cov_b = _checked(mu_b, cov_b, "second set")
    if mu_a.shape != mu_b.shape:
        raise EmbeddingShapeError(
            f"embedding sizes differ: {mu_a.shape[0]} against {mu_b.shape[0]} "
            "(were both sets embedded with the same embedder and protocol?)"
        )
    diff = mu_a - mu_b
    cross = trace_sqrt_product(psd_factor(cov_a), cov_b)
    value = float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * cross)
    return max(value, 0.0)


def frechet_distances_to(mu_ref: np.ndarray, cov_ref: np.ndarray,
                         mus: np.ndarray, covs: np.ndarray) -> np.ndarray:
    """Distances from one reference Gaussian to a stack of others, sharing the factor of `S_ref`.

    Args:
        mu_ref: float [D]; cov_ref: float [D, D].
        mus: float [B, D]; covs: float [B, D, D].
    Returns:
        float64 [B], each clipped at zero (same values as `frechet_distance` one by one).
    """
    mu_ref, cov_ref = _checked(mu_ref, cov_ref, "reference set")
    mus = np.asarray(mus, dtype=np.float64)
    covs = np.asarray(covs, dtype=np.float64)
    if mus.ndim != 2 or mus.shape[1] != mu_ref.shape[0] or covs.shape != mus.shape + mus.shape[1:]:
        raise EmbeddingShapeError(
            f"stack of shapes {mus.shape} and {covs.shape} does not match the reference size "
            f"{mu_ref.shape[0]}"
        )
    diff = mus - mu_ref
    cross = trace_sqrt_product(psd_factor(cov_ref), covs)
    values = (np.einsum("bd,bd->b", diff, diff) + np.trace(cov_ref)
              + np.trace(covs, axis1=1, axis2=2) - 2.0 * cross)
    return np.clip(values, 0.0, None)
