"""Simulated crowd studies with known truth, to check that intervals cover and tests hold size.

Preferences (one pair, a complete listener x excerpt grid, S studies at once):

    logit P(system chosen) = b0 + u_l + v_e + w_le + side_bias * s,   s = +-1/2 at random,
    u ~ N(0, sd_listener^2), v ~ N(0, sd_excerpt^2), w ~ N(0, sd_interaction^2).

The estimand of a reported rate is the population-average preference, the rate over the
whole population of listeners and excerpts: E[expit(b0 + Z sigma + side_bias s)], computed by
Gauss-Hermite quadrature; `intercept_for_rate` solves for b0 given the true rate.

Ratings (K systems, equal means under the null): score = round(3 + a_l + b_e + c_lk + d_ek +
noise) clipped to 1..5, with system x listener (c) and system x excerpt (d) interactions, the
effects that made Wilcoxon on (listener, excerpt) blocks reject a true null 45% of the time.
Everything is vectorised numpy over studies.

Bradley-Terry (K systems, `CrowdBradleyTerryConfig`): per-system listener and excerpt effects
on known strengths, one study at a time (`bradley_terry` is fitted per study); its estimand,
attenuated by the random effects, is `bradley_terry_truth`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import expit, log_expit


@dataclass(frozen=True)
class CrowdPreferenceConfig:
    n_listeners: int = 60
    n_excerpts: int = 20
    true_rate: float = 0.55
    sd_listener: float = 0.6
    sd_excerpt: float = 0.5
    sd_interaction: float = 0.3
    side_bias: float = 0.4  # log-odds of choosing the left clip


def _marginal_rate(b0: float, sigma: float, side_bias: float) -> float:
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)  # probabilists' Hermite: N(0, 1)
    weights = weights / weights.sum()
    rates = [weights @ expit(b0 + sigma * nodes + side) for side in (side_bias / 2, -side_bias / 2)]
    return float(np.mean(rates))


def intercept_for_rate(config: CrowdPreferenceConfig) -> float:
    """b0 whose population-average preference rate is `config.true_rate`."""
    sigma = float(np.sqrt(config.sd_listener**2 + config.sd_excerpt**2 + config.sd_interaction**2))
    return optimize.brentq(lambda b: _marginal_rate(b, sigma, config.side_bias) - config.true_rate, -10, 10)


def simulate_preferences(config: CrowdPreferenceConfig, n_studies: int, rng: np.random.Generator
                         ) -> tuple[np.ndarray, np.ndarray]:
    """(system chosen bool [S, L, E], system on the left bool [S, L, E])."""
    s, n_l, n_e = n_studies, config.n_listeners, config.n_excerpts
    b0 = intercept_for_rate(config)
    logit = (b0 + config.sd_listener * rng.standard_normal((s, n_l, 1))
             + config.sd_excerpt * rng.standard_normal((s, 1, n_e))
             + config.sd_interaction * rng.standard_normal((s, n_l, n_e)))
    on_left = rng.random((s, n_l, n_e)) < 0.5
    logit = logit + np.where(on_left, 0.5, -0.5) * config.side_bias
    return rng.random((s, n_l, n_e)) < expit(logit), on_left


def preference_frame(chosen: np.ndarray, on_left: np.ndarray, system: str = "three-stage",
                     opponent: str = "ground-truth") -> pd.DataFrame:
    """One simulated study (chosen, on_left: bool [L, E]) as a preference export."""
    n_l, n_e = chosen.shape
    listener, excerpt = np.meshgrid(np.arange(n_l), np.arange(n_e), indexing="ij")
    on_left, chosen = on_left.ravel(), chosen.ravel()
    return pd.DataFrame({
        "participant": [f"listener-{i}" for i in listener.ravel()],
        "excerpt": [f"excerpt-{i}" for i in excerpt.ravel()],
        "system_left": np.where(on_left, system, opponent),
        "system_right": np.where(on_left, opponent, system),
        "chosen": np.where(chosen == on_left, "left", "right"),
    })


@dataclass(frozen=True)
class CrowdRatingConfig:
    n_listeners: int = 30
    n_excerpts: int = 20
    n_systems: int = 3
    sd_listener: float = 0.6
    sd_excerpt: float = 0.5
    sd_system_listener: float = 0.3
    sd_system_excerpt: float = 0.4
    sd_noise: float = 0.7


def simulate_ratings(config: CrowdRatingConfig, n_studies: int, rng: np.random.Generator) -> np.ndarray:
    """Scores int64 [S, L, E, K] in 1..5 with equal system means (a true null)."""
    s, n_l, n_e, k = n_studies, config.n_listeners, config.n_excerpts, config.n_systems
    latent = (3.0 + config.sd_listener * rng.standard_normal((s, n_l, 1, 1))
              + config.sd_excerpt * rng.standard_normal((s, 1, n_e, 1))
              + config.sd_system_listener * rng.standard_normal((s, n_l, 1, k))
              + config.sd_system_excerpt * rng.standard_normal((s, 1, n_e, k))
              + config.sd_noise * rng.standard_normal((s, n_l, n_e, k)))
    return np.clip(np.rint(latent), 1, 5).astype(np.int64)


def rating_frame(scores: np.ndarray, attribute: str = "overall coherence") -> pd.DataFrame:
    """One simulated study (scores [L, E, K]) as a rating export, systems s0..s{K-1}."""
    n_l, n_e, k = scores.shape
    listener, excerpt, system = np.meshgrid(np.arange(n_l), np.arange(n_e), np.arange(k), indexing="ij")
    return pd.DataFrame({
        "participant": [f"listener-{i}" for i in listener.ravel()],
        "excerpt": [f"excerpt-{i}" for i in excerpt.ravel()],
        "system": [f"s{i}" for i in system.ravel()],
        "attribute": attribute,
        "score": scores.ravel(),
    })


@dataclass(frozen=True)
class CrowdBradleyTerryConfig:
    """K systems with known strengths; each (listener, excerpt) cell judges one pair drawn at
    random from all K(K-1)/2, shown in a random order.

        logit P(i preferred over j) = (beta_i + a_li + b_ei) - (beta_j + a_lj + b_ej) + w + side,

    a ~ N(0, sd_listener^2) per listener and system (taste), b ~ N(0, sd_excerpt^2) per excerpt
    and system (how well a system suits an excerpt), w ~ N(0, sd_interaction^2) per judgment,
    side = +-side_bias / 2 for the system shown on the left.
    """

    strengths: tuple[float, ...] = (0.0, 0.4, -0.3, 0.8)
    n_listeners: int = 60
    n_excerpts: int = 20
    sd_listener: float = 0.6
    sd_excerpt: float = 0.5
    sd_interaction: float = 0.3
    side_bias: float = 0.4

    @property
    def pairs(self) -> np.ndarray:
        """int64 [P, 2]: every (i, j) with i < j."""
        k = len(self.strengths)
        return np.array([(i, j) for i in range(k) for j in range(i + 1, k)], dtype=np.int64)


def bradley_terry_truth(config: CrowdBradleyTerryConfig) -> np.ndarray:
    """float64 [K]: the scores (system 0 at 0) the Bradley-Terry fit estimates on this design.

    The random effects attenuate the population-average preference, so the estimand is not
    `strengths` but the pseudo-true value: the maximum of the expected log-likelihood with every
    pair judged equally often and P(i over j) its population average, E[expit(beta_i - beta_j
    + tau Z + side)] with tau^2 = 2 sd_listener^2 + 2 sd_excerpt^2 + sd_interaction^2 (Gauss-
    Hermite quadrature), maximised by scipy's BFGS.
    """
    beta, pairs = np.asarray(config.strengths, dtype=np.float64), config.pairs
    tau = np.sqrt(2 * config.sd_listener**2 + 2 * config.sd_excerpt**2 + config.sd_interaction**2)
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    weights = weights / weights.sum()
    gap = beta[pairs[:, 0]] - beta[pairs[:, 1]]
    rate = np.mean([expit(gap[:, None] + tau * nodes + side) @ weights
                    for side in (config.side_bias / 2, -config.side_bias / 2)], axis=0)

    def negative_log_likelihood(free: np.ndarray) -> float:
        score = np.concatenate([[0.0], free])
        diff = score[pairs[:, 0]] - score[pairs[:, 1]]
        return -float(np.sum(rate * log_expit(diff) + (1 - rate) * log_expit(-diff)))

    fit = optimize.minimize(negative_log_likelihood, np.zeros(len(beta) - 1), method="BFGS", options={"gtol": 1e-10})
    return np.concatenate([[0.0], fit.x])


def simulate_bradley_terry(config: CrowdBradleyTerryConfig, rng: np.random.Generator) -> pd.DataFrame:
    """One simulated study as a preference export, systems s0..s{K-1}."""
    n_l, n_e, k = config.n_listeners, config.n_excerpts, len(config.strengths)
    strength = (np.asarray(config.strengths) + config.sd_listener * rng.standard_normal((n_l, 1, k))
                + config.sd_excerpt * rng.standard_normal((1, n_e, k)))  # [L, E, K]
    listener, excerpt = np.meshgrid(np.arange(n_l), np.arange(n_e), indexing="ij")
    pair = config.pairs[rng.integers(0, len(config.pairs), size=(n_l, n_e))]
    first, second = pair[..., 0], pair[..., 1]
    first_on_left = rng.random((n_l, n_e)) < 0.5
    logit = (strength[listener, excerpt, first] - strength[listener, excerpt, second]
             + config.sd_interaction * rng.standard_normal((n_l, n_e))
             + np.where(first_on_left, 0.5, -0.5) * config.side_bias)
    first_chosen = rng.random((n_l, n_e)) < expit(logit)
    systems = [f"s{i}" for i in range(k)]

    def labels(codes: np.ndarray, names: list[str]) -> pd.Categorical:
        return pd.Categorical.from_codes(codes.ravel(), categories=names)

    return pd.DataFrame({
        "participant": labels(listener, [f"listener-{i}" for i in range(n_l)]),
        "excerpt": labels(excerpt, [f"excerpt-{i}" for i in range(n_e)]),
        "system_left": labels(np.where(first_on_left, first, second), systems),
        "system_right": labels(np.where(first_on_left, second, first), systems),
        "chosen": np.where(first_chosen == first_on_left, "left", "right").ravel(),
    })
