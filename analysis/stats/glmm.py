"""Logistic regression with crossed random intercepts, fitted by the Laplace approximation.

    logit P(y_i = 1) = x_i' beta + sum_r sd_r * b_r[g_r(i)],   b_r ~ N(0, I)  (independent)

This is the model of lme4's `glmer(y ~ x + (1|listener) + (1|excerpt), family=binomial)`
with `nAGQ = 0` (Bates et al. 2015, "Fitting linear mixed-effects models using lme4", JSS 67):
for given SDs, beta and the spherical random effects b are the joint mode of the penalised
log-likelihood (Newton / PIRLS); the SDs maximise the Laplace approximation of the marginal
likelihood, log p(y | beta, b) - |b|^2 / 2 - log det(I + S Z'WZ S) / 2; the covariance of
beta is the beta block of the inverse of the joint negative Hessian, so it accounts for
listener and excerpt clustering. We implement it rather than use statsmodels'
`BinomialBayesMixedGLM`, whose mean-field variational posterior ignores the correlation
between beta and the random effects and so understates the SE of beta (and took minutes on a
few thousand judgments here). The Hessian is built with bincount (Z is never materialised)
and factorised densely: cost ~ (levels)^3 per Newton step, fine up to a few thousand
listeners plus excerpts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import linalg, optimize
from scipy.special import expit
from threadpoolctl import threadpool_limits

from analysis.stats.validation import AnalysisInputError


@dataclass(frozen=True)
class GlmmFit:
    """params: float64 [p] fixed effects; cov: [p, p] their covariance; sd: [R] random-effect
    SDs; random_effects: per grouping, float64 [levels] predicted effects (sd * b);
    loglik_laplace: the maximised Laplace log-likelihood."""

    params: np.ndarray
    cov: np.ndarray
    sd: np.ndarray
    random_effects: tuple[np.ndarray, ...]
    loglik_laplace: float

    @property
    def bse(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))


class _Design:
    """X [n, p] dense plus crossed groupings; forms A'WA and A'v for A = [X, Z S]."""

    def __init__(self, exog: np.ndarray, groups: Sequence[np.ndarray]):
        self.exog = exog
        self.groups = [np.asarray(g, dtype=np.int64) for g in groups]
        self.levels = [int(g.max()) + 1 for g in self.groups]
        self.offsets = np.concatenate([[0], np.cumsum(self.levels)]) + exog.shape[1]
        self.n_params = int(self.offsets[-1])

    def column_scale(self, sd: np.ndarray) -> np.ndarray:
        """float64 [n_params]: 1 for fixed effects, sd_r for the columns of grouping r."""
        return np.concatenate([np.ones(self.exog.shape[1])] + [np.full(m, s) for m, s in zip(self.levels, sd)])

    def linear(self, params: np.ndarray, scale: np.ndarray) -> np.ndarray:
        scaled = params * scale
        eta = self.exog @ scaled[: self.exog.shape[1]]
        for g, start in zip(self.groups, self.offsets[:-1]):
            eta = eta + scaled[start:][g]
        return eta

    def transpose_times(self, v: np.ndarray, scale: np.ndarray) -> np.ndarray:
        parts = [self.exog.T @ v]
        parts += [np.bincount(g, weights=v, minlength=m) for g, m in zip(self.groups, self.levels)]
        return np.concatenate(parts) * scale

    def gram(self, w: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """A' diag(w) A, float64 [n_params, n_params]."""
        p = self.exog.shape[1]
        out = np.zeros((self.n_params, self.n_params))
        out[:p, :p] = self.exog.T @ (w[:, None] * self.exog)
        for r, (g, m) in enumerate(zip(self.groups, self.levels)):
            s0, s1 = self.offsets[r], self.offsets[r + 1]
            cross = np.stack([np.bincount(g, weights=w * self.exog[:, j], minlength=m) for j in range(p)])
            out[:p, s0:s1] = cross
            out[s0:s1, :p] = cross.T
            out[np.arange(s0, s1), np.arange(s0, s1)] = np.bincount(g, weights=w, minlength=m)
            for q in range(r + 1, len(self.groups)):
                h, k = self.groups[q], self.levels[q]
                t0, t1 = self.offsets[q], self.offsets[q + 1]
                block = np.bincount(g * k + h, weights=w, minlength=m * k).reshape(m, k)
                out[s0:s1, t0:t1] = block
                out[t0:t1, s0:s1] = block.T
        return out * np.outer(scale, scale)


def _penalised_mode(y, design: _Design, sd, start, max_iter=50, tol=1e-9):
    """Joint mode of log p(y | beta, b) - |b|^2 / 2 by damped Newton; returns params, H, f."""
    scale = design.column_scale(sd)
    p = design.exog.shape[1]
    penalty = np.concatenate([np.zeros(p), np.ones(design.n_params - p)])

    def objective(params):
        eta = design.linear(params, scale)
        return float(np.sum(y * eta - np.logaddexp(0.0, eta)) - 0.5 * np.sum(penalty * params**2))

    params, value = start.copy(), objective(start)
    for _ in range(max_iter):
        mu = expit(design.linear(params, scale))
        gradient = design.transpose_times(y - mu, scale) - penalty * params
        hessian = design.gram(mu * (1.0 - mu), scale) + np.diag(penalty)
        step = linalg.solve(hessian + 1e-12 * np.eye(design.n_params), gradient, assume_a="pos")
        for _ in range(30):
            candidate = params + step
            new_value = objective(candidate)
            if new_value >= value - 1e-12:
                break
            step /= 2.0
        params, converged = candidate, new_value - value < tol
        value = new_value
        if converged:
            break
    mu = expit(design.linear(params, scale))
    hessian = design.gram(mu * (1.0 - mu), scale) + np.diag(penalty)
    return params, hessian, value


def fit_crossed_logistic(
    y: np.ndarray,
    exog: np.ndarray,
    groups: Sequence[np.ndarray],
    fixed_sd: Sequence[float] | None = None,
) -> GlmmFit:
    """Fit the model above.

    Args:
        y: float64 [n] in {0, 1}. exog: float64 [n, p] fixed-effect design (with intercept).
        groups: R int arrays [n] of level codes 0..m_r-1, one per random intercept.
        fixed_sd: R SDs to hold fixed (e.g. zeros: plain logistic regression) instead of
            estimating them.

    BLAS runs single-threaded: faster for these small dense factorisations, and it does not
    stall when the CPUs are shared.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit(y, exog, groups, fixed_sd)


def _fit(
    y: np.ndarray,
    exog: np.ndarray,
    groups: Sequence[np.ndarray],
    fixed_sd: Sequence[float] | None = None,
) -> GlmmFit:
    y = np.asarray(y, dtype=np.float64)
    exog = np.asarray(exog, dtype=np.float64)
    if y.size == 0 or exog.shape[0] != y.size:
        raise AnalysisInputError(f"mixed model: {y.size} responses for {exog.shape[0]} design rows")
    design = _Design(exog, groups)
    p = exog.shape[1]
    state = {"start": np.zeros(design.n_params)}

    def laplace(sd):
        params, hessian, value = _penalised_mode(y, design, np.abs(sd), state["start"])
        state["start"] = params
        random_block = hessian[p:, p:]
        logdet = 2.0 * np.sum(np.log(np.diag(linalg.cholesky(random_block))))
        return value - 0.5 * logdet, params, hessian

    if fixed_sd is None:
        result = optimize.minimize(
            lambda sd: -laplace(sd)[0], x0=np.full(len(groups), 0.5),
            method="L-BFGS-B", bounds=[(0.0, 10.0)] * len(groups),
        )
        sd = np.abs(result.x)
    else:
        sd = np.asarray(fixed_sd, dtype=np.float64)
    loglik, params, hessian = laplace(sd)
    cov = linalg.inv(hessian)[:p, :p]
    scale = design.column_scale(sd)
    effects = tuple(
        (params * scale)[design.offsets[r] : design.offsets[r + 1]] for r in range(len(groups))
    )
    return GlmmFit(params=params[:p], cov=cov, sd=sd, random_effects=effects, loglik_laplace=loglik)

