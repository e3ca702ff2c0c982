"""Bradley-Terry scores against a statsmodels Logit fit of the same design."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from analysis.stats import AnalysisInputError
from analysis.stats.bradley_terry import bradley_terry
from analysis.synthetic import SyntheticStudyConfig, synthetic_study

ALL_PAIRS = (
    ("three-stage", "ground-truth"), ("three-stage", "two-stage"), ("three-stage", "random"),
    ("two-stage", "random"), ("ground-truth", "random"),
)


def preferences():
    config = SyntheticStudyConfig(
        n_judgments=1200, pairs=ALL_PAIRS, left_bias=0.0, listener_sd=0.3, excerpt_sd=0.2, seed=5,
    )
    return synthetic_study(config).preferences


def logit_scores(df, reference):
    """Logistic regression of 'left chosen' on e_left - e_right, no intercept."""
    systems = sorted(set(df.system_left) | set(df.system_right))
    others = [s for s in systems if s != reference]
    design = np.zeros((len(df), len(others)))
    for j, system in enumerate(others):
        design[:, j] = (df.system_left == system).to_numpy(float) - (df.system_right == system).to_numpy(float)
    fit = sm.Logit((df.chosen == "left").to_numpy(float), design).fit(disp=0, method="newton", tol=1e-12)
    return dict(zip(others, fit.params)), dict(zip(others, fit.bse))


def test_scores_equal_logistic_regression_maximum_likelihood():
    df = preferences()
    scores = bradley_terry(df, reference="ground-truth", n_boot=0).set_index("system")
    reference, _ = logit_scores(df, "ground-truth")
    assert scores.loc["ground-truth", "score"] == 0.0
    for system, value in reference.items():
        assert scores.loc[system, "score"] == pytest.approx(value, abs=1e-6)
    assert scores["share"].sum() == pytest.approx(1.0)


def test_bootstrap_interval_covers_estimate_and_has_logit_width():
    df = preferences()
    scores = bradley_terry(df, reference="ground-truth", n_boot=600, seed=2).set_index("system")
    _, se = logit_scores(df, "ground-truth")
    assert (scores.n_boot_valid == 600).all()
    for system, s in se.items():
        row = scores.loc[system]
        assert row.ci_low < row.score < row.ci_high
        # Clustering is mild here: the two-way interval is about +/- 1.96 Logit SEs.
        assert (row.ci_high - row.ci_low) / (2 * 1.96 * s) == pytest.approx(1.0, abs=0.35)
    assert scores["score"].is_monotonic_decreasing


def test_system_that_never_lost_is_reported():
    df = pd.DataFrame({
        "participant": ["a", "b", "c", "d"], "excerpt": ["x"] * 4,
        "system_left": ["three-stage", "random", "three-stage", "two-stage"],
        "system_right": ["random", "three-stage", "two-stage", "random"],
        "chosen": ["left", "right", "left", "left"],
    })
    with pytest.raises(AnalysisInputError, match=r"never lost: \['three-stage'\]"):
        bradley_terry(df, n_boot=0)
    with_prior = bradley_terry(df, n_boot=0, prior=0.5).set_index("system")
    assert with_prior.loc["three-stage", "score"] > with_prior.loc["random", "score"]
