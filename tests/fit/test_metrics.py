"""The building blocks of the fit metrics on inputs whose answer is known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from hafm_core.fit import harmony, rhythm


def test_hit_rate_counts_onsets_within_70_ms_of_a_beat():
    beats_s = np.array([0.0, 0.5, 1.0, 1.5])
    onsets_s = np.array([0.02, 0.56, 0.75, 1.43, 1.6])  # hit, hit, miss, miss (70 ms), miss
    assert rhythm.onset_beat_hit_rate(onsets_s, beats_s) == pytest.approx(2 / 5)


def test_beat_emphasis_flips_sign_with_half_beat_phase():
    frame_s = 1 / rhythm.FRAME_RATE_HZ
    beats_s = np.arange(0.5, 9.5, 0.5)
    envelope = np.zeros(int(10 / frame_s), np.float32)
    envelope[np.round(beats_s / frame_s).astype(int)] = 1.0  # accents on the beats only
    assert rhythm.beat_emphasis(envelope, beats_s) == pytest.approx(1.0)
    assert rhythm.beat_emphasis(envelope, beats_s + 0.25) == pytest.approx(-1.0)


def test_xcorr_prominence_is_one_at_zero_lag_and_drops_when_shifted():
    rng = np.random.default_rng(0)
    envelope = rng.random(800)
    assert rhythm.onset_xcorr_prominence(envelope, envelope, 0.5) == pytest.approx(1.0)
    shifted = np.roll(envelope, 11)  # 11 frames = 0.26 s
    assert rhythm.onset_xcorr_prominence(envelope, shifted, 0.5) < 0.2


def test_tempo_agreement_allows_double_and_half_tempo():
    assert rhythm.tempo_agreement(120, 120) == 1.0
    assert rhythm.tempo_agreement(120, 60) == pytest.approx(1.0)
    assert rhythm.tempo_agreement(120, 240) == pytest.approx(1.0)
    assert rhythm.tempo_agreement(120, 120 / np.sqrt(2)) == pytest.approx(0.0)
    assert rhythm.tempo_agreement(120, 480) == pytest.approx(1.0)
    assert rhythm.tempo_agreement(120, 130) == pytest.approx(1 - 2 * np.log2(130 / 120))


@pytest.mark.parametrize(("a", "b", "score"), [
    ("C major", "C major", 1.0), ("C major", "G major", 0.5), ("G major", "C major", 0.5),
    ("C major", "A minor", 0.3), ("A minor", "C major", 0.3), ("C major", "C minor", 0.2),
    ("C major", "F# major", 0.0), ("A minor", "E minor", 0.5), ("C major", "D major", 0.0),
])
def test_mirex_key_score(a, b, score):
    index = {harmony.key_name(k): k for k in range(24)}
    assert harmony.mirex_key_score(index[a], index[b]) == score


def test_krumhansl_estimate_recovers_a_key_from_its_profile():
    for key in (0, 7, 12 + 9, 12 + 4):
        template = harmony.KRUMHANSL_MINOR if key >= 12 else harmony.KRUMHANSL_MAJOR
        assert harmony.estimate_key(np.roll(template, key % 12)) == key
    assert harmony.key_name(12 + 9) == "A minor"


def test_pitch_classes_and_chord_tone_ratio():
    assert list(harmony.pitch_classes(np.array([261.63, 277.18, 440.0, 880.0 * 2 ** (0.4 / 12)]))) == [0, 1, 9, 9]
    chroma = np.zeros((12, 100), np.float32)
    chroma[[0, 4, 7], :50] = 1.0  # C major for the first half
    chroma[[2, 5, 9], 50:] = 1.0  # D minor after
    times_s = np.array([0.1, 0.2, 1.5, 1.6])  # frames 4, 9, 65, 69
    classes = np.array([4, 2, 9, 0])  # in C, not in C, in Dm, not in Dm
    assert harmony.chord_tone_ratio(classes, times_s, chroma) == pytest.approx(0.5)
