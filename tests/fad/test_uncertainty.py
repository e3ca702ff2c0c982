"""Jackknife, paired bootstrap and FAD-inf against brute-force references (np.cov + sqrtm)."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from hafm_core.fad import TooFewFilesError, UnpairedSetsError
from hafm_core.fad.songs import SongMoments
from hafm_core.fad.uncertainty import (
    bootstrap_weights,
    fad_infinity,
    jackknife_interval,
    paired_bootstrap,
    paired_moments,
)
from tests.fad.test_distance import reference_fad


def songs(rng, n_songs, dim, shift=0.0, scale=1.0, frames=(5, 12)):
    return [rng.normal(loc=shift, scale=scale, size=(int(rng.integers(*frames)), dim))
            for _ in range(n_songs)]


def fad_of(background, evaluation):
    x, y = np.concatenate(background), np.concatenate(evaluation)
    return reference_fad(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))


def test_jackknife_standard_error_matches_brute_force():
    rng = np.random.default_rng(0)
    background, evaluation = songs(rng, 9, 6), songs(rng, 7, 6, shift=0.3)
    interval, se = jackknife_interval(SongMoments.from_songs(background),
                                      SongMoments.from_songs(evaluation))
    variance = 0.0
    for deleted_side in ("background", "eval"):
        group = background if deleted_side == "background" else evaluation
        values = []
        for i in range(len(group)):
            rest = group[:i] + group[i + 1:]
            values.append(fad_of(rest, evaluation) if deleted_side == "background" else fad_of(background, rest))
        values = np.array(values)
        variance += (len(group) - 1) / len(group) * np.sum((values - values.mean()) ** 2)
    assert se == pytest.approx(np.sqrt(variance), rel=1e-6)
    assert interval.estimate == pytest.approx(fad_of(background, evaluation), rel=1e-6)
    z = scipy_stats.norm.ppf(0.975)
    assert interval.high == pytest.approx(interval.estimate + z * np.sqrt(variance), rel=1e-6)
    assert interval.low <= interval.estimate <= interval.high


def test_paired_bootstrap_matches_brute_force_resampling():
    rng = np.random.default_rng(1)
    background = songs(rng, 12, 5)
    baseline = songs(rng, 10, 5, shift=0.4)
    candidate = [s + rng.normal(scale=0.3, size=s.shape) for s in baseline]
    result = paired_bootstrap(SongMoments.from_songs(background), SongMoments.from_songs(candidate),
                              SongMoments.from_songs(baseline), n_resamples=200, seed=7)
    weights = bootstrap_weights(10, 200, seed=7)
    diffs, ratios = [], []
    for row in weights.astype(int):
        pick = np.repeat(np.arange(10), row)
        c = fad_of(background, [candidate[i] for i in pick])
        b = fad_of(background, [baseline[i] for i in pick])
        diffs.append(c - b)
        ratios.append(c / b - 1)
    assert result.fad_candidate == pytest.approx(fad_of(background, candidate), rel=1e-6)
    assert result.difference.low == pytest.approx(np.percentile(diffs, 2.5), rel=1e-6)
    assert result.difference.high == pytest.approx(np.percentile(diffs, 97.5), rel=1e-6)
    assert result.relative_change_upper == pytest.approx(np.percentile(ratios, 95), rel=1e-6)


def test_paired_bootstrap_of_a_system_against_itself_is_exactly_zero():
    rng = np.random.default_rng(2)
    background, system = songs(rng, 8, 4), songs(rng, 8, 4, shift=1.0)
    moments = SongMoments.from_songs(system)
    result = paired_bootstrap(SongMoments.from_songs(background), moments, moments, n_resamples=50)
    assert (result.difference.low, result.difference.high) == (0.0, 0.0)
    assert result.relative_change_upper == 0.0


def test_pairing_by_name_reports_unmatched_songs():
    rng = np.random.default_rng(3)
    a = {f"song{i}": s for i, s in enumerate(songs(rng, 4, 3))}
    b = {f"song{i}": s for i, s in enumerate(songs(rng, 3, 3))}
    with pytest.raises(UnpairedSetsError, match="only in candidate: song3"):
        paired_moments(a, b, ("candidate", "baseline"))


def test_fad_infinity_fit_matches_linregress_and_removes_the_bias():
    rng = np.random.default_rng(4)
    background = songs(rng, 60, 8, frames=(20, 21))
    evaluation = songs(rng, 60, 8, frames=(3, 4))  # same distribution, few frames per song
    result = fad_infinity(SongMoments.from_songs(background), SongMoments.from_songs(evaluation),
                          n_points=6, repeats=3, seed=0)
    fit = scipy_stats.linregress(1.0 / np.array(result.sizes), result.fads)
    assert result.value == pytest.approx(fit.intercept, rel=1e-9, abs=1e-12)
    assert result.slope == pytest.approx(fit.slope, rel=1e-9)
    assert result.r_squared == pytest.approx(fit.rvalue ** 2, rel=1e-9)
    assert result.sizes[-1] == 60
    assert result.fads[-1] == pytest.approx(fad_of(background, evaluation), rel=1e-6)
    assert result.slope > 0
    assert abs(result.value) < 0.5 * result.fads[0]  # the small-n bias is mostly removed


def test_resampling_needs_two_songs():
    with pytest.raises(TooFewFilesError, match="eval: 1 song"):
        SongMoments.from_songs([np.ones((4, 2))], "eval")
