"""The fit metrics mean something: the true accompaniment beats shifted, transposed and
other tracks' accompaniments, on synthetic multitracks and on the real stempeg stem.

Every excerpt of a group is measured in one `fit_excerpts` call (module-scoped fixtures).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hafm_core.fit import METRIC_NAMES, Excerpt, fit_excerpts
from hafm_core.synth import synthesize_multitrack

SYNTH_RATE_HZ = 22_050
SYNTH_SEEDS = (0, 1)
RANGES = {"beat_emphasis": (-1, 1), "onset_xcorr_prominence": (-1, 1)}  # the others: [0, 1]


def delayed(samples: np.ndarray, delay_s: float, rate_hz: int) -> np.ndarray:
    """The same length, later by `delay_s` (silence first): a rhythmically misaligned copy."""
    k = int(round(delay_s * rate_hz))
    return np.concatenate([np.zeros(k, np.float32), samples[:len(samples) - k]])


@pytest.fixture(scope="module")
def synthetic_results() -> dict[tuple[int, str], object]:
    excerpts = []
    for seed in SYNTH_SEEDS:
        track = synthesize_multitrack(seed, 8.0, SYNTH_RATE_HZ)
        # Same seed, tempo and mode, key + 6: the same music a tritone away.
        tritone = synthesize_multitrack(seed, 8.0, SYNTH_RATE_HZ, tempo_bpm=track.tempo_bpm,
                                        key_pc=(track.key_pc + 6) % 12, mode=track.mode)
        other = synthesize_multitrack(seed + 100, 8.0, SYNTH_RATE_HZ)
        vocal = track.stems["vocals"]
        half_beat_s = 30.0 / track.tempo_bpm
        for kind, accompaniment in (("true", track.accompaniment),
                                    ("half_beat", delayed(track.accompaniment, half_beat_s, SYNTH_RATE_HZ)),
                                    ("tritone", tritone.accompaniment), ("other", other.accompaniment)):
            excerpts.append(Excerpt(f"{seed}-{kind}", vocal, accompaniment, SYNTH_RATE_HZ))
    results = fit_excerpts(excerpts)
    return {(int(r.name.split("-")[0]), r.name.split("-", 1)[1]): r for r in results}


@pytest.fixture(scope="module")
def real_results(stempeg_sample_path) -> dict[str, object]:
    import librosa

    from hafm_core.audio import read_stems, resample
    from hafm_core.fit import fit_excerpt

    stems, rate = read_stems(stempeg_sample_path, sample_rate_hz=SYNTH_RATE_HZ)
    vocal = stems["vocals"]
    accompaniment = stems["drums"] + stems["bass"] + stems["other"]
    true = fit_excerpt(vocal, accompaniment, rate, name="true")
    assert true.ok, true.detail
    half_beat_s = 30.0 / true.accompaniment_tempo_bpm  # the tempo the metric itself found
    tritone = librosa.effects.pitch_shift(accompaniment, sr=rate, n_steps=6).astype(np.float32)
    duration_s = len(vocal) / rate
    others = [resample(synthesize_multitrack(seed, duration_s, 44_100).accompaniment, 44_100, rate)
              for seed in (7, 8)]
    excerpts = [Excerpt("half_beat", vocal, delayed(accompaniment, half_beat_s, rate), rate),
                Excerpt("tritone", vocal, tritone, rate),
                *(Excerpt(f"other{i}", vocal, a[:len(vocal)], rate) for i, a in enumerate(others))]
    results = {r.name: r for r in fit_excerpts(excerpts)}
    results["true"] = true
    return results


def test_every_excerpt_is_measured_with_finite_metrics_in_range(synthetic_results, real_results):
    for result in [*synthetic_results.values(), *real_results.values()]:
        assert result.status == "ok", (result.name, result.detail)
        for name in METRIC_NAMES:
            value = getattr(result, name)
            low, high = RANGES.get(name, (0, 1))
            assert math.isfinite(value) and low <= value <= high, (result.name, name, value)


@pytest.mark.parametrize("seed", SYNTH_SEEDS)
def test_synthetic_half_beat_shift_loses_rhythm_not_harmony(synthetic_results, seed):
    true, shifted = synthetic_results[seed, "true"], synthetic_results[seed, "half_beat"]
    assert true.rhythm_score - shifted.rhythm_score >= 0.25
    assert true.onset_beat_hit_rate - shifted.onset_beat_hit_rate >= 0.3
    assert true.beat_emphasis > 0.3 and shifted.beat_emphasis < -0.3  # accents on / off the beat
    assert true.onset_xcorr_prominence - shifted.onset_xcorr_prominence >= 0.1
    assert abs(true.harmony_score - shifted.harmony_score) <= 0.1  # specific to rhythm


@pytest.mark.parametrize("seed", SYNTH_SEEDS)
def test_synthetic_tritone_loses_harmony_not_rhythm(synthetic_results, seed):
    true, tritone = synthetic_results[seed, "true"], synthetic_results[seed, "tritone"]
    assert true.harmony_score - tritone.harmony_score >= 0.3
    assert true.chord_tone_ratio - tritone.chord_tone_ratio >= 0.3
    assert tritone.key_agreement == 0.0  # a tritone is no related key
    assert abs(true.rhythm_score - tritone.rhythm_score) <= 0.05  # specific to harmony


@pytest.mark.parametrize("seed", SYNTH_SEEDS)
def test_synthetic_other_track_fits_worse(synthetic_results, seed):
    true, other = synthetic_results[seed, "true"], synthetic_results[seed, "other"]
    assert true.fit_score - other.fit_score >= 0.25
    assert true.rhythm_score - other.rhythm_score >= 0.15
    assert true.harmony_score - other.harmony_score >= 0.2


def test_real_stem_half_beat_shift_loses_rhythm(real_results):
    true, shifted = real_results["true"], real_results["half_beat"]
    assert true.rhythm_score - shifted.rhythm_score >= 0.15
    # Only the cross-correlation moves here: the beat tracker puts the shifted copy's beats
    # on the original instants (the song has strong off-beats), so hit rate and emphasis stay.
    assert true.onset_xcorr_prominence - shifted.onset_xcorr_prominence >= 0.5


def test_real_stem_tritone_loses_harmony(real_results):
    true, tritone = real_results["true"], real_results["tritone"]
    assert true.harmony_score - tritone.harmony_score >= 0.4
    assert true.chord_tone_ratio - tritone.chord_tone_ratio >= 0.4
    assert true.key_agreement > tritone.key_agreement


def test_real_stem_other_tracks_fit_worse(real_results):
    true = real_results["true"]
    for name in ("other0", "other1"):
        assert true.fit_score - real_results[name].fit_score >= 0.2, name
        assert true.rhythm_score > real_results[name].rhythm_score, name
        assert true.harmony_score > real_results[name].harmony_score, name
