"""A system cannot raise its mean fit by failing: a failed excerpt counts as the worst score."""

from __future__ import annotations

import numpy as np

from hafm_core.fit import METRIC_NAMES, METRIC_RANGES, FitResult, summarize


def measured(name: str, score: float) -> FitResult:
    return FitResult(name, "ok", "", 3.0, **{metric: score for metric in METRIC_NAMES})


def test_failing_on_the_worst_excerpts_never_raises_the_mean():
    rng = np.random.default_rng(0)
    for _ in range(50):
        scores = rng.uniform(0, 1, size=10)
        honest = summarize([measured(str(i), s) for i, s in enumerate(scores)], n_resamples=100)
        worst = np.argsort(scores)[:rng.integers(1, 5)]  # the system outputs silence there instead
        gamed = summarize([FitResult(str(i), "silent_accompaniment", "silent") if i in worst
                           else measured(str(i), s) for i, s in enumerate(scores)], n_resamples=100)
        for metric in METRIC_NAMES:
            assert gamed["metrics"][metric]["mean"] <= honest["metrics"][metric]["mean"] + 1e-12, metric
        assert gamed["failure_rate"] == len(worst) / 10 and honest["failure_rate"] == 0
        # The mean over ok excerpts alone would have gone up: it is shown, beside the rate.
        assert gamed["metrics"]["fit_score"]["mean_ok"] > honest["metrics"]["fit_score"]["mean"]


def test_the_issue_example_three_silent_excerpts_of_ten():
    scores = np.linspace(0.45, 0.80, 10)  # mean 0.625
    gamed = summarize([FitResult(str(i), "silent_accompaniment", "x") if i < 3 else measured(str(i), s)
                       for i, s in enumerate(scores)], n_resamples=100)
    fit = gamed["metrics"]["fit_score"]
    assert fit["mean"] == np.sum(scores[3:]) / 10 < scores.mean()
    assert fit["n"] == 10 and fit["n_ok"] == 7


def test_worst_value_is_the_bottom_of_each_metric_range():
    result = summarize([FitResult("x", "unreadable", "bad file")], n_resamples=10)
    for metric in METRIC_NAMES:
        assert result["metrics"][metric]["mean"] == METRIC_RANGES[metric][0]
        assert result["metrics"][metric]["mean_ok"] is None
    assert result["failure_rate"] == 1.0 and summarize([])["failure_rate"] is None
