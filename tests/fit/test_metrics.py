"""The building blocks of the fit metrics on inputs whose answer is known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from hafm_core.fit import harmony, rhythm


def test_beat_f_measure_matches_each_beat_once_within_70_ms():
    reference = np.array([0.5, 1.0, 1.5, 2.0])
    assert rhythm.beat_f_measure(reference, reference + 0.05) == 1.0
    assert rhythm.beat_f_measure(reference, reference + 0.25) == 0.0  # half a beat off at 120 BPM
    # Two estimates near one reference beat: only one of them is a hit (precision 2/4, recall 2/4).
    estimate = np.array([0.49, 0.52, 1.5, 3.0])
    assert rhythm.beat_f_measure(reference, estimate) == pytest.approx(0.5)
    assert rhythm.beat_f_measure(reference, np.array([])) == 0.0


def test_activity_weights_ignore_edges_and_the_attack_after_a_silence():
    frame_rate = rhythm.FRAME_RATE_HZ
    n = int(4 * frame_rate)
    steady = np.ones(n, np.float32)
    late = steady.copy()
    late[:int(1.0 * frame_rate)] = 0.0  # the accompaniment starts 1 s late
    edge = int(round(rhythm.EDGE_S * frame_rate))
    w = rhythm.activity_weights(steady, steady)
    assert w[:edge].max() == 0 and w[-edge:].max() == 0 and w[n // 2] == 1.0
    w_late = rhythm.activity_weights(steady, late)
    start = int(1.0 * frame_rate)
    assert w_late[:start + edge].max() == 0  # silence and the attack that ends it
    assert w_late[start + 3 * edge] == 1.0
    assert np.all(np.diff(w_late[start:start + 3 * edge]) >= 0)  # tapered, no step


def test_a_rest_shorter_than_min_silence_keeps_its_attacks():
    frame_rate = rhythm.FRAME_RATE_HZ
    n = int(4 * frame_rate)
    steady = np.ones(n, np.float32)
    hits = steady.copy()
    rest = slice(int(1.5 * frame_rate), int((1.5 + 0.8 * rhythm.MIN_SILENCE_S) * frame_rate))
    hits[rest] = 0.0  # quiet between two drum hits: the hit after it is music, not an edge
    w = rhythm.activity_weights(steady, hits)
    assert w[rest.stop] == 1.0 and w[rest].min() == 1.0
    long = steady.copy()
    long[int(1.0 * frame_rate):int((1.0 + 1.2 * rhythm.MIN_SILENCE_S) * frame_rate)] = 0.0
    w_long = rhythm.activity_weights(steady, long)
    assert w_long[int((1.0 + 1.2 * rhythm.MIN_SILENCE_S) * frame_rate)] == 0  # a silence: its end is an edge


def test_beat_phase_agreement_follows_the_phase_of_the_beat():
    frame_rate = rhythm.FRAME_RATE_HZ
    n = int(6 * frame_rate)
    beat_frames = 0.5 * frame_rate  # 120 BPM
    t = np.arange(n)
    rng = np.random.default_rng(1)

    def pulses(shift_beats: float) -> np.ndarray:  # sharp onsets on every beat, some on the off-beat
        phase = (t / beat_frames - shift_beats) % 1.0
        return np.exp(-0.5 * (np.minimum(phase, 1 - phase) * beat_frames / 1.5) ** 2) \
            + 0.3 * np.exp(-0.5 * ((phase - 0.5) * beat_frames / 1.5) ** 2)

    weights = np.ones(n)
    vocal = pulses(0.0)
    assert rhythm.beat_phase_agreement(vocal, pulses(0.0), weights, 0.5) == pytest.approx(1.0)
    assert rhythm.beat_phase_agreement(vocal, pulses(1.0), weights, 0.5) == pytest.approx(1.0, abs=1e-6)
    assert rhythm.beat_phase_agreement(vocal, pulses(0.5), weights, 0.5) < 0
    assert rhythm.beat_phase_agreement(vocal, pulses(1 / 3), weights, 0.5) < 0
    # Double-tempo estimate: folded to the same beat, same verdicts.
    assert rhythm.beat_phase_agreement(vocal, pulses(0.5), weights, 0.25) < 0
    noise = rng.random(n)
    assert abs(rhythm.beat_phase_agreement(vocal, noise, weights, 0.5)) < 0.5


def test_beat_phase_agreement_equals_the_phase_agreement_of_fft_harmonics():
    # A 40-frame beat period (129 BPM folded to 64.6) divides 240 frames: harmonic k is FFT bin 6 k.
    rng = np.random.default_rng(2)
    vocal, accompaniment = rng.random(240), rng.random(240)
    v, a = (np.fft.rfft(x - x.mean())[[6, 12, 18, 24]] for x in (vocal, accompaniment))
    k = np.arange(1, 5)
    present = (np.abs(v) > 0.1 * np.abs(v).max()) & (np.abs(a) > 0.1 * np.abs(a).max())
    reference = (np.cos(np.angle(v) - np.angle(a)) / k)[present].sum() / (1 / k)[present].sum()
    found = rhythm.beat_phase_agreement(vocal, accompaniment, np.ones(240), 20 / rhythm.FRAME_RATE_HZ)
    assert found == pytest.approx(reference, abs=1e-9)


def test_a_strong_eighth_note_pulse_does_not_hide_a_half_beat_shift():
    # Onsets on every eighth, the on-beat ones a little stronger: most of the power sits at the
    # eighth-note harmonic, whose phase a half-beat shift keeps. Weighted by power, the
    # agreement stayed positive for a half-beat shift; weighted by the metre it turns negative.
    frame_rate = rhythm.FRAME_RATE_HZ
    n = int(6 * frame_rate)
    beat_frames = 0.6 * frame_rate  # 100 BPM
    t = np.arange(n)

    def eighths(shift_beats: float) -> np.ndarray:
        phase = (t / beat_frames - shift_beats) % 0.5 * 2  # position within the eighth, in [0, 1)
        on_beat = np.round(2 * (t / beat_frames - shift_beats)) % 2 == 0  # the nearest eighth is a beat
        return np.where(on_beat, 1.0, 0.6) * np.exp(-0.5 * (np.minimum(phase, 1 - phase) * beat_frames / 3) ** 2)

    weights = np.ones(n)
    vocal = eighths(0.0)
    assert rhythm.beat_phase_agreement(vocal, eighths(0.0), weights, 0.6) > 0.9
    assert rhythm.beat_phase_agreement(vocal, eighths(0.5), weights, 0.6) < 0
    assert rhythm.beat_phase_agreement(vocal, eighths(1.0), weights, 0.6) > 0.9


def test_xcorr_contrast_is_high_at_zero_lag_and_near_zero_for_unrelated_envelopes():
    rng = np.random.default_rng(0)
    envelope = rng.random(800)
    weights = np.ones(800)
    assert rhythm.onset_xcorr_contrast(envelope, envelope, weights, 0.5) > 0.9
    shifted = np.roll(envelope, 11)  # 11 frames = 0.26 s
    assert rhythm.onset_xcorr_contrast(envelope, shifted, weights, 0.5) < 0.1
    unrelated = rng.random(800)
    assert abs(rhythm.onset_xcorr_contrast(envelope, unrelated, weights, 0.5)) < 0.1
    # Frames of weight 0 do not count: a spike there changes nothing.
    weights[:100] = 0
    spiky = envelope.copy()
    spiky[:100] += 50 * rng.random(100)
    assert rhythm.onset_xcorr_contrast(spiky, envelope, weights, 0.5) == pytest.approx(
        rhythm.onset_xcorr_contrast(envelope, envelope, weights, 0.5))


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
        found, confidence = harmony.estimate_key(np.roll(template, key % 12))
        assert found == key and confidence > 0
    assert harmony.estimate_key(np.ones(12)) == (0, 0.0)  # a flat profile has no key
    assert harmony.key_name(12 + 9) == "A minor"


def test_pitch_classes_and_chord_tone_ratio():
    assert list(harmony.pitch_classes(np.array([261.63, 277.18, 440.0, 880.0 * 2 ** (0.4 / 12)]))) == [0, 1, 9, 9]
    chroma = np.zeros((12, 100), np.float32)
    chroma[[0, 4, 7], :50] = 1.0  # C major for the first half
    chroma[[2, 5, 9], 50:] = 1.0  # D minor after
    times_s = np.array([0.1, 0.2, 1.5, 1.6])  # frames 4, 9, 65, 69
    classes = np.array([4, 2, 9, 0])  # in C, not in C, in Dm, not in Dm
    assert harmony.chord_tone_ratio(classes, times_s, chroma) == pytest.approx(0.5)
    # Counted by loudness: the quiet frames (a note's tail over the next chord) weigh less.
    rms = np.array([1.0, 0.1, 1.0, 0.1])
    assert harmony.chord_tone_ratio(classes, times_s, chroma, rms) == pytest.approx(2.0 / 2.2)
    assert harmony.chord_tone_ratio(classes, times_s, chroma, np.zeros(4)) == pytest.approx(0.5)  # no loudness: frames


def _chord_change_at(change_s: float, duration_s: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """A sustained C major chord that becomes F major at change_s (pure tones, mid register),
    float32 [n] at `rhythm.ANALYSIS_RATE_HZ`, and the time of each sample, float64 [n]."""
    t = np.arange(int(duration_s * rhythm.ANALYSIS_RATE_HZ)) / rhythm.ANALYSIS_RATE_HZ
    tones = lambda midis: sum(np.sin(2 * np.pi * 440.0 * 2 ** ((m - 69) / 12) * t) for m in midis)  # noqa: E731
    return (0.1 * np.where(t < change_s, tones([60, 64, 67]), tones([65, 69, 72]))).astype(np.float32), t


def test_the_chroma_changes_chord_when_the_audio_does():
    # Round 5 of issue 16: chord_tone_ratio preferred accompaniments shifted later. A clock
    # offset between the chroma frames and the vocal's pitch frames would do that; this pins
    # the chroma's clock (HPSS, constant-Q, smoothing): a chord change at a known instant
    # lands there, and a vocal that changes note with it is fitted best at zero lag, a
    # shift either way costing the same.
    change_s = 2.0
    chord, _ = _chord_change_at(change_s)
    chroma = harmony.harmonic_chroma(rhythm.spectrogram(chord[None]), [len(chord)])[0][0]  # (12, T)
    e_minus_f = chroma[4] - chroma[5]  # E only in C major, F only in F major
    i = int(np.flatnonzero((e_minus_f[:-1] > 0) & (e_minus_f[1:] <= 0))[0])
    crossing_s = (i + e_minus_f[i] / (e_minus_f[i] - e_minus_f[i + 1])) / rhythm.FRAME_RATE_HZ
    assert abs(crossing_s - change_s) < 1.5 / rhythm.FRAME_RATE_HZ, crossing_s

    times_s = np.arange(0.5, 3.5, 0.02)  # the vocal at the pitch hop: E4 before the change, F4 after
    classes = np.where(times_s < change_s, 4, 5)
    ratio = {lag: harmony.chord_tone_ratio(classes, times_s - lag, chroma) for lag in (-0.3, -0.15, 0.0, 0.15, 0.3)}
    assert ratio[0.0] == max(ratio.values()) == 1.0, ratio
    for lag in (0.15, 0.3):
        assert ratio[lag] < 1.0 and abs(ratio[lag] - ratio[-lag]) <= 0.02, ratio


def test_durational_accent_tells_a_half_beat_shift_that_onset_counts_cannot():
    # A sung bar of long notes on beats 1 and 3 and short ones half a beat before beats 3 and 1
    # (onsets at 0, 1.5, 2, 3.5 beats; all notes equally loud, each ending 60 ms before the next
    # onset, so every onset has the same flux): as many onsets off the beat as on it, so the
    # onset envelope has no beat-level component, and clicks on the beat or half a beat off
    # meet the same number of onsets. The long notes mark the beat (durational
    # accent); weighted by their inter-onset intervals the vocal tells the two apart.
    rate = rhythm.ANALYSIS_RATE_HZ
    beat_s, n = 0.5, int(6 * rate)
    rng = np.random.default_rng(3)
    vocal = np.zeros(n)
    for bar in range(3):
        for start, length in ((0, 1.5), (1.5, 0.5), (2, 1.5), (3.5, 0.5)):
            i, m = int((4 * bar + start) * beat_s * rate), int((length * beat_s - 0.06) * rate)
            tone = np.sin(2 * np.pi * 330 * np.arange(m) / rate) + 0.5 * np.sin(2 * np.pi * 660 * np.arange(m) / rate)
            vocal[i:i + m] += 0.2 * tone * np.minimum(1, np.arange(m) / (0.01 * rate))[:m]

    def clicks(shift_beats: float) -> np.ndarray:
        out = 0.01 * rng.standard_normal(n)  # a quiet floor: the accompaniment is never silent
        for beat in np.arange(shift_beats, 12, 1.0):
            i = int(beat * beat_s * rate)
            out[i:i + 400] += 0.5 * rng.standard_normal(400) * np.exp(-np.arange(400) / 80)
        return out

    verdicts = {}
    for shift in (0.0, 0.5):
        pair = np.stack([vocal, clicks(shift)]).astype(np.float32)
        envelopes = rhythm.onset_envelopes(rhythm.log_mel(rhythm.spectrogram(pair)))  # (2, T)
        rms = rhythm.frame_rms(pair)  # (2, T)
        weights = rhythm.activity_weights(rms[0], rms[1])
        accent = rhythm.vocal_accent_envelope(envelopes[0], weights, beat_s)
        verdicts[shift] = (rhythm.beat_phase_agreement(envelopes[0], envelopes[1], weights, beat_s),
                           rhythm.beat_phase_agreement(accent, envelopes[1], weights, beat_s))
    (flux_true, accent_true), (flux_shifted, accent_shifted) = verdicts[0.0], verdicts[0.5]
    assert abs(flux_true - flux_shifted) < 0.2  # onset counts: no verdict
    assert accent_true > 0.2 and accent_shifted < 0  # durational accent: the beat
