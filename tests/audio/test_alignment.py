"""Acoustic frames are exactly 3/2 of semantic frames, whatever the length and source rate."""

from __future__ import annotations

import numpy as np
import pytest

from hafm_core.audio import resample
from hafm_core.errors import ConfigError
from hafm_core.synth import synthesize_multitrack
from hafm_core.tokens.alignment import align_tokens, aligned_duration_s, num_units, trim_to_units
from hafm_core.tokens.pipeline import tokenize_batch


@pytest.mark.parametrize("source_rate", [44_100, 48_000, 22_050, 24_000, 16_000])
@pytest.mark.parametrize("n_source", [44_100 * 2 + 1, 88_199, 30_011])
def test_resampled_odd_lengths_keep_the_two_to_three_ratio(source_rate, n_source):
    """Odd-length audio at any rate -> 24 kHz -> trimmed to units -> 16 kHz: frame counts agree."""
    audio = np.random.default_rng(0).normal(0, 0.1, n_source).astype(np.float32)
    at_24k = trim_to_units(resample(audio, source_rate, 24_000), 24_000)
    assert len(at_24k) % 960 == 0
    at_16k = resample(at_24k, 24_000, 16_000)
    t_s, t_a = len(at_16k) // 320, -(-len(at_24k) // 320)  # HuBERT and EnCodec frame rules
    assert 2 * t_a == 3 * t_s and t_s == 2 * num_units(len(at_24k), 24_000)


def test_two_seconds_give_100_semantic_and_150_acoustic_frames(semantic_tokenizer, acoustic_tokenizer):
    """Raw HuBERT gives 99 frames for 2 s; the 40-sample edge padding makes it 100, EnCodec gives 150."""
    track = synthesize_multitrack(2, duration_s=2.0, sample_rate_hz=24_000)
    vocals = track.stems["vocals"][None].astype(np.float32)
    accompaniment = track.accompaniment[None].astype(np.float32)
    tokens = tokenize_batch(semantic_tokenizer, acoustic_tokenizer, vocals, accompaniment, seeds=[1])[0]
    assert tokens.semantic_vocal.shape == (100,) and tokens.semantic_accompaniment.shape == (100,)
    assert tokens.acoustic_accompaniment.shape == (8, 150)
    assert tokens.coarse.shape == tokens.fine.shape == (4, 150)


@pytest.mark.parametrize("n_samples", [960 * 7 + 1, 960 * 7 + 959, 961, 22_999])
def test_odd_lengths_are_trimmed_to_whole_units_before_tokenizing(semantic_tokenizer, acoustic_tokenizer, n_samples):
    track = synthesize_multitrack(3, duration_s=1.0, sample_rate_hz=24_000)
    vocals = trim_to_units(track.stems["vocals"][None, :n_samples].astype(np.float32), 24_000)
    accompaniment = trim_to_units(track.accompaniment[None, :n_samples].astype(np.float32), 24_000)
    tokens = tokenize_batch(semantic_tokenizer, acoustic_tokenizer, vocals, accompaniment, seeds=[0])[0]
    units = n_samples // 960
    assert tokens.semantic_vocal.shape == (2 * units,)
    assert tokens.acoustic_accompaniment.shape == (8, 3 * units)


def test_align_tokens_trims_to_common_units():
    semantic, acoustic = np.arange(99), np.zeros((8, 150))
    s, a = align_tokens(semantic, acoustic)
    assert s.shape == (98,) and a.shape == (8, 147)
    s, a = align_tokens(np.arange(100), np.zeros((8, 149)))
    assert s.shape == (98,) and a.shape == (8, 147)


def test_unit_helpers():
    assert aligned_duration_s(10.0) == 10.0 and aligned_duration_s(6.08) == 6.08
    assert aligned_duration_s(6.0836) == 6.08
    assert num_units(44_100 * 10, 44_100) == 250
    with pytest.raises(ConfigError, match="11026 Hz"):
        num_units(1000, 11_025 + 1)
