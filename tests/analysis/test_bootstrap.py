"""Cluster bootstrap against statsmodels' cluster-robust (CRV) sandwich variances."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from analysis.stats.bootstrap import cluster_bootstrap
from analysis.synthetic import SyntheticStudyConfig, synthetic_study

PAIR = (("three-stage", "ground-truth"),)


def clustered_preferences():
    config = SyntheticStudyConfig(
        n_judgments=1500, n_participants=40, n_excerpts=25, pairs=PAIR,
        listener_sd=0.9, excerpt_sd=0.6, inattentive_share=0.0, seed=3,
    )
    return synthetic_study(config).preferences


def statsmodels_se(df, groups):
    """SE of the mean of 'three-stage chosen' from an intercept-only OLS with CRV variance.

    The bootstrap estimates sum_g e_g^2 / N^2, the sandwich without small-sample factors.
    """
    chosen = np.where(df.chosen == "left", df.system_left, df.system_right)
    y = (chosen == "three-stage").astype(float)
    model = sm.OLS(y, np.ones((len(y), 1)))
    fit = model.fit(cov_type="cluster", cov_kwds={"groups": groups, "use_correction": False})
    return float(fit.bse[0]), float(y.mean())


def codes(df, column):
    return pd.factorize(df[column])[0]


def test_one_and_two_way_standard_errors_match_statsmodels():
    df = clustered_preferences()
    result = cluster_bootstrap(df, n_boot=4000, seed=1).iloc[0]
    participant, excerpt = codes(df, "participant"), codes(df, "excerpt")
    se_p, rate = statsmodels_se(df, participant)
    se_e, _ = statsmodels_se(df, excerpt)
    se_two, _ = statsmodels_se(df, np.column_stack([participant, excerpt]))
    assert result.rate == pytest.approx(rate)
    assert result.se_participant == pytest.approx(se_p, rel=0.07)
    assert result.se_excerpt == pytest.approx(se_e, rel=0.07)
    assert result.se_cluster == pytest.approx(max(se_two, se_p, se_e), rel=0.07)
    # Clustering matters here: the honest interval is wider than the binomial one.
    assert result.design_effect > 1.5
    assert result.ci_low == pytest.approx(result.rate - 1.959964 * result.se_cluster, abs=1e-9)


def test_independent_judgments_give_the_binomial_standard_error():
    rng = np.random.default_rng(0)
    n = 2000
    df = pd.DataFrame({
        "participant": np.arange(n), "excerpt": np.arange(n) + 10_000,
        "system_left": "three-stage", "system_right": "random",
        "chosen": np.where(rng.random(n) < 0.6, "left", "right"),
    })
    result = cluster_bootstrap(df, n_boot=3000, seed=0).iloc[0]
    assert result.se_cluster == pytest.approx(result.se_binomial, rel=0.06)


def test_seeded_and_one_way_option():
    df = clustered_preferences()
    a = cluster_bootstrap(df, n_boot=200, seed=7)
    b = cluster_bootstrap(df, n_boot=200, seed=7)
    pd.testing.assert_frame_equal(a, b)
    one_way = cluster_bootstrap(df, clusters=("participant",), n_boot=200, seed=7).iloc[0]
    assert one_way.se_cluster == one_way.se_participant
