"""Bad input gives a clear per-excerpt status, never an exception or a NaN."""

from __future__ import annotations

import numpy as np
import pytest

from hafm_core.fit import METRIC_NAMES, STATUSES, Excerpt, fit_excerpt, fit_excerpts
from hafm_core.synth import synthesize_multitrack

RATE_HZ = 16_000


@pytest.fixture(scope="module")
def track():
    return synthesize_multitrack(seed=5, duration_s=4.0, sample_rate_hz=RATE_HZ)


@pytest.fixture(scope="module")
def model():
    from hafm_core.crepe import CrepeTiny

    return CrepeTiny.load("cpu")


def sustained_chord(n: int) -> np.ndarray:
    """A C major pad with no attack after the first instant: harmony without onsets."""
    t = np.arange(n) / RATE_HZ
    return (0.1 * sum(np.sin(2 * np.pi * f * t) for f in (261.63, 329.63, 392.0))).astype(np.float32)


def assert_failed(result, status: str) -> None:
    assert result.status == status, (result.status, result.detail)
    assert status in STATUSES and result.detail
    assert not result.ok
    assert all(getattr(result, name) is None for name in METRIC_NAMES)


def test_input_checks(track, model):
    vocal, accompaniment = track.stems["vocals"], track.accompaniment
    with_nan = vocal.copy()
    with_nan[100] = np.nan
    cases = {
        "silent vocal": (Excerpt("a", np.zeros_like(vocal), accompaniment, RATE_HZ), "silent_vocal"),
        "silent accompaniment": (Excerpt("b", vocal, 1e-6 * accompaniment, RATE_HZ), "silent_accompaniment"),
        "nan": (Excerpt("c", with_nan, accompaniment, RATE_HZ), "invalid_samples"),
        "stereo": (Excerpt("d", np.stack([vocal, vocal]), accompaniment, RATE_HZ), "invalid_samples"),
        "empty": (Excerpt("e", vocal[:0], accompaniment[:0], RATE_HZ), "invalid_samples"),
        "rates": (Excerpt("f", vocal, accompaniment, RATE_HZ, 44_100), "sample_rate_mismatch"),
        "lengths": (Excerpt("g", vocal, accompaniment[: len(vocal) - RATE_HZ], RATE_HZ), "length_mismatch"),
        "short": (Excerpt("h", vocal[:RATE_HZ], accompaniment[:RATE_HZ], RATE_HZ), "too_short"),
    }
    results = fit_excerpts([excerpt for excerpt, _ in cases.values()], model)
    assert [r.name for r in results] == list("abcdefgh")  # input order, one result each
    for (_, status), result in zip(cases.values(), results):
        assert_failed(result, status)


def test_signal_checks_after_analysis(track, model):
    vocal, accompaniment = track.stems["vocals"], track.accompaniment
    noise = (0.1 * np.random.default_rng(0).standard_normal(len(vocal))).astype(np.float32)
    results = fit_excerpts([
        Excerpt("noise vocal", noise, accompaniment, RATE_HZ),
        Excerpt("pad accompaniment", vocal, sustained_chord(len(vocal)), RATE_HZ),
        Excerpt("fine", vocal, accompaniment, RATE_HZ),
    ], model)
    assert_failed(results[0], "unvoiced_vocal")
    assert_failed(results[1], "no_onsets_accompaniment")
    assert results[2].ok  # a bad excerpt does not spoil its neighbours in the batch


def test_small_length_difference_is_cut_to_the_shorter(track, model):
    vocal, accompaniment = track.stems["vocals"], track.accompaniment
    result = fit_excerpt(vocal, accompaniment[: len(vocal) - 800], RATE_HZ, model=model)  # 50 ms shorter
    assert result.ok, result.detail
    assert result.duration_s == pytest.approx((len(vocal) - 800) / RATE_HZ)
    assert all(np.isfinite(getattr(result, name)) for name in METRIC_NAMES)
