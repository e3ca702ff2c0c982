"""Mixed logistic model: the Laplace GLMM against statsmodels Logit, GLM (L2) and VB fits."""

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import optimize
from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

from analysis.stats.glmm import fit_crossed_logistic
from analysis.stats.mixed import mixed_logistic
from analysis.synthetic import SyntheticStudyConfig, synthetic_study


def crossed_data(n=600, listeners=20, excerpts=10, sd=(0.9, 0.5), seed=0):
    rng = np.random.default_rng(seed)
    g, e = rng.integers(0, listeners, n), rng.integers(0, excerpts, n)
    side = rng.choice([-0.5, 0.5], n)
    eta = 0.3 + 0.4 * side + rng.normal(0, sd[0], listeners)[g] + rng.normal(0, sd[1], excerpts)[e]
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    return y, np.column_stack([np.ones(n), side]), g, e


def test_zero_variance_components_reduce_to_logistic_regression():
    y, exog, g, e = crossed_data()
    fit = fit_crossed_logistic(y, exog, [g, e], fixed_sd=[0.0, 0.0])
    logit = sm.Logit(y, exog).fit(disp=0)
    assert fit.params == pytest.approx(logit.params, abs=1e-7)
    assert fit.bse == pytest.approx(logit.bse, rel=1e-6)


def test_conditional_mode_equals_l2_penalised_logistic_regression():
    """For fixed SDs the mode maximises loglik - |b|^2/2: a ridge logistic regression on
    [X, Z * sd] with penalty 1 on b. Reference: scipy BFGS on that objective, and the
    statsmodels elastic-net GLM (L1_wt=0, penalty scaled by 1/n) to its looser tolerance."""
    y, exog, g, e = crossed_data()
    sd = np.array([0.7, 0.4])
    fit = fit_crossed_logistic(y, exog, [g, e], fixed_sd=sd)
    design = np.column_stack([exog, np.eye(20)[g] * sd[0], np.eye(10)[e] * sd[1]])
    penalty = np.r_[0.0, 0.0, np.ones(30)]

    def negative(params):
        eta = design @ params
        value = -np.sum(y * eta - np.logaddexp(0, eta)) + 0.5 * np.sum(penalty * params**2)
        gradient = -design.T @ (y - 1 / (1 + np.exp(-eta))) + penalty * params
        return value, gradient

    reference = optimize.minimize(negative, np.zeros(32), jac=True, method="BFGS", options={"gtol": 1e-10})
    assert fit.params == pytest.approx(reference.x[:2], abs=1e-5)
    assert fit.random_effects[0] == pytest.approx(reference.x[2:22] * sd[0], abs=1e-5)
    ridge = sm.GLM(y, design, family=sm.families.Binomial()).fit_regularized(
        alpha=penalty / len(y), L1_wt=0.0, cnvrg_tol=1e-12, maxiter=2000
    )
    assert fit.params == pytest.approx(ridge.params[:2], abs=5e-3)


def test_estimates_agree_with_statsmodels_variational_fit_and_widen_the_interval():
    y, exog, g, e = crossed_data()
    fit = fit_crossed_logistic(y, exog, [g, e])
    vc = np.column_stack([np.eye(20)[g], np.eye(10)[e]])
    ident = np.r_[np.zeros(20, int), np.ones(10, int)]
    vb = BinomialBayesMixedGLM(y, exog, vc, ident, vcp_p=1.0, fe_p=2.0).fit_vb()
    assert fit.params == pytest.approx(vb.fe_mean, abs=0.06)
    assert fit.sd == pytest.approx(np.exp(vb.vcp_mean), abs=0.2)
    assert fit.bse[0] > 1.5 * sm.Logit(y, exog).fit(disp=0).bse[0]


def test_mixed_logistic_per_pair_recovers_the_simulated_effects():
    config = SyntheticStudyConfig(
        n_judgments=1500, n_participants=50, n_excerpts=20, listener_sd=0.8, excerpt_sd=0.4,
        inattentive_share=0.0, pairs=(("three-stage", "random"),), left_bias=0.2, seed=1,
    )
    row = mixed_logistic(synthetic_study(config).preferences).iloc[0]
    assert (row.system, row.opponent, row.n) == ("three-stage", "random", 1500)
    assert row.log_odds == pytest.approx(1.5, abs=3 * row.log_odds_se)
    assert row.ci_low < 1 / (1 + np.exp(-1.5)) < row.ci_high
    assert row.left_bias_log_odds == pytest.approx(0.2, abs=0.15)
    assert row.sd_participant == pytest.approx(0.8, abs=0.35)


def test_pair_won_every_time_is_reported_not_estimable():
    import pandas as pd

    df = pd.DataFrame({"participant": list(range(6)) * 2, "excerpt": [0, 1] * 6,
                       "system_left": ["three-stage", "random"] * 6, "system_right": ["random", "three-stage"] * 6,
                       "chosen": ["left", "right"] * 6})
    row = mixed_logistic(df).iloc[0]
    assert row.n == 12 and "not estimable" in row.method and np.isnan(row.log_odds)
