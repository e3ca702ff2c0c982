"""Thresholds follow the signal: transposed, time-stretched and quiet real audio is measured.

On the real stem that ships with stempeg, the first 3 s window of the song transposed
(librosa's phase-vocoder pitch shift) or time-stretched, vocal and accompaniment together,
was rejected as `no_onsets_accompaniment` or `no_onsets_vocal`: the phase vocoder's start
transient set the scale of librosa's peak picking, which then found no attack. A pair 40 dB
quieter was rejected as `silent_vocal` by a fixed -60 dBFS level.
"""

from __future__ import annotations

import numpy as np
import pytest

from hafm_core.fit import Excerpt, fit_excerpts

RATE_HZ = 22_050
WINDOW_S = 3.0


@pytest.fixture(scope="module")
def stem(stempeg_sample_path):
    from hafm_core.audio import read_stems

    stems, rate = read_stems(stempeg_sample_path, sample_rate_hz=RATE_HZ)
    return stems["vocals"], stems["drums"] + stems["bass"] + stems["other"]


@pytest.fixture(scope="module")
def results(stem):
    import librosa

    vocal, accompaniment = stem
    n = int(WINDOW_S * RATE_HZ)
    songs = {
        "original": (vocal, accompaniment),
        "down 2 semitones": tuple(librosa.effects.pitch_shift(x, sr=RATE_HZ, n_steps=-2) for x in stem),
        "up 2 semitones": tuple(librosa.effects.pitch_shift(x, sr=RATE_HZ, n_steps=2) for x in stem),
        "8% faster": tuple(librosa.effects.time_stretch(x, rate=1.08) for x in stem),
        "15% slower": tuple(librosa.effects.time_stretch(x, rate=0.85) for x in stem),
        "40 dB quieter": (0.01 * vocal, 0.01 * accompaniment),
    }
    excerpts = [Excerpt(name, v[:n].astype(np.float32), a[:n].astype(np.float32), RATE_HZ)
                for name, (v, a) in songs.items()]
    inaudible = 10 ** (-60 / 20) * accompaniment[:n]  # 60 dB below the original accompaniment
    excerpts.append(Excerpt("inaudible accompaniment", vocal[:n], inaudible.astype(np.float32), RATE_HZ))
    return {r.name: r for r in fit_excerpts(excerpts)}


@pytest.mark.parametrize("name", ["original", "down 2 semitones", "up 2 semitones", "8% faster", "15% slower",
                                  "40 dB quieter"])
def test_transposed_stretched_and_quiet_real_audio_is_measured(results, name):
    assert results[name].status == "ok", results[name].detail


def test_quiet_pair_scores_like_the_original(results):
    quiet, original = results["40 dB quieter"], results["original"]
    assert quiet.rhythm_score == pytest.approx(original.rhythm_score, abs=0.05)
    assert quiet.harmony_score == pytest.approx(original.harmony_score, abs=0.05)


def test_an_accompaniment_far_below_the_vocal_is_silent(results):
    assert results["inaudible accompaniment"].status == "silent_accompaniment"
