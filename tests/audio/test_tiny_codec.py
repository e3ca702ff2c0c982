"""The tiny EnCodec behaves like a codec: decoded audio follows the codes and the bitrate."""

from __future__ import annotations

import numpy as np

from hafm_core.synth import synthesize_multitrack


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def _accompaniment_codes(tokenizer, seed: int) -> np.ndarray:
    audio = synthesize_multitrack(seed, duration_s=2.0, sample_rate_hz=24_000).accompaniment
    return tokenizer.encode(audio[None].astype(np.float32))  # (1, 8, 150)


def test_decoded_audio_depends_on_the_codes(acoustic_tokenizer):
    codes = _accompaniment_codes(acoustic_tokenizer, seed=3)
    random_codes = np.random.default_rng(0).integers(0, 1024, codes.shape)
    real, random = acoustic_tokenizer.decode(codes), acoustic_tokenizer.decode(random_codes)
    assert 0.01 < real.std() < 1.0 and np.isfinite(real).all()
    # Material: the difference is of the order of the signal itself, not a rounding residue.
    assert _rms(real - random) > 0.5 * real.std()
    other = acoustic_tokenizer.decode(_accompaniment_codes(acoustic_tokenizer, seed=7))
    assert _rms(real - other) > 0.5 * real.std()


def test_fine_codebooks_change_the_decoded_audio(acoustic_tokenizer):
    codes = _accompaniment_codes(acoustic_tokenizer, seed=3)
    six_kbps, three_kbps = acoustic_tokenizer.decode(codes), acoustic_tokenizer.decode(codes[:, :4])
    assert _rms(six_kbps - three_kbps) > 0.2 * six_kbps.std()


def test_every_codebook_is_used_by_real_audio(acoustic_tokenizer):
    codes = _accompaniment_codes(acoustic_tokenizer, seed=3)
    assert all(len(np.unique(codes[0, k])) >= 20 for k in range(8))
