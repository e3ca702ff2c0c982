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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import expit


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
