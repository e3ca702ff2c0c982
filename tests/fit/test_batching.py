"""Batching changes the cost of the fit, never its values: a batch of excerpts of different
lengths, or sharing a vocal, gives what each excerpt gives alone, and the fast HPSS equals librosa's."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from hafm_core.audio import resample
from hafm_core.fit import DEFAULT_CONFIG, Excerpt, fit_excerpt, fit_excerpts
from hafm_core.fit.harmony import harmonic_part, median_filter_along
from hafm_core.synth import synthesize_multitrack

RATE_HZ = 22_050
# CREPE and the STFTs run in float32 on rows zero-padded to the longest excerpt: the only
# difference allowed is float rounding (observed below 1e-6).
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def model():
    from hafm_core.crepe import CrepeTiny

    return CrepeTiny.load("cpu")


def assert_same_result(alone, together):
    assert together.status == alone.status == "ok", (together.detail, alone.detail)
    for field in dataclasses.fields(alone):
        a, b = getattr(alone, field.name), getattr(together, field.name)
        if isinstance(a, float):
            assert math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE), (alone.name, field.name, a, b)
        else:
            assert a == b, (alone.name, field.name, a, b)


def crepe_frames(model) -> tuple[list[int], object]:
    """(frames per CREPE forward call, the hook handle to remove)."""
    frames: list[int] = []
    return frames, model.register_forward_pre_hook(lambda module, args: frames.append(args[0].shape[0]))


def test_a_batch_gives_each_excerpt_what_it_gets_alone(model):
    excerpts = []
    for seed, duration_s in ((11, 4.0), (12, 5.5), (13, 3.0)):  # unequal lengths: padding must not leak
        track = synthesize_multitrack(seed=seed, duration_s=duration_s, sample_rate_hz=RATE_HZ)
        excerpts.append(Excerpt(f"song{seed}", track.stems["vocals"], track.accompaniment, RATE_HZ))
    batched = fit_excerpts(excerpts, model)
    for excerpt, together in zip(excerpts, batched):
        assert_same_result(fit_excerpt(excerpt.vocal, excerpt.accompaniment, RATE_HZ, name=excerpt.name, model=model),
                           together)


def test_excerpts_sharing_a_vocal_analyse_it_once_and_get_what_they_get_alone(model):
    own, other, distinct = (synthesize_multitrack(seed=s, duration_s=d, sample_rate_hz=RATE_HZ)
                            for s, d in ((31, 4.0), (32, 4.0), (33, 3.0)))
    vocal = own.stems["vocals"]
    # The onset envelopes' dB floor couples the pair: set by the accompaniment 30 dB up, by
    # the vocal 40 dB down. Sharing the vocal's analysis must not share a floor.
    excerpts = [Excerpt("own", vocal, own.accompaniment, RATE_HZ),
                Excerpt("other", vocal, other.accompaniment, RATE_HZ),
                Excerpt("louder", vocal, other.accompaniment * 10 ** (30 / 20), RATE_HZ),
                Excerpt("quieter", vocal, other.accompaniment * 10 ** (-40 / 20), RATE_HZ),
                Excerpt("distinct", distinct.stems["vocals"], distinct.accompaniment, RATE_HZ)]
    frames, hook = crepe_frames(model)
    try:
        batched = fit_excerpts(excerpts, model)
    finally:
        hook.remove()
    hop = int(round(DEFAULT_CONFIG.pitch_hop_s * 16_000))
    # CREPE ran on the two distinct vocals, the shorter one zero-padded to the longer.
    assert sum(frames) == 2 * (1 + len(resample(vocal, RATE_HZ, 16_000)) // hop)
    for excerpt, together in zip(excerpts, batched):
        assert_same_result(fit_excerpt(excerpt.vocal, excerpt.accompaniment, RATE_HZ, name=excerpt.name, model=model),
                           together)


def test_chroma_of_an_excerpt_does_not_depend_on_its_batch():
    from hafm_core.fit import harmony, rhythm

    short, long = (synthesize_multitrack(seed=s, duration_s=d, sample_rate_hz=RATE_HZ).accompaniment
                   for s, d in ((21, 3.0), (22, 4.5)))
    batch = np.zeros((2, len(long)), dtype=np.float32)  # (2, n_long), the short one zero-padded
    batch[0, :len(short)], batch[1] = short, long
    together = harmony.harmonic_chroma(rhythm.spectrogram(batch), [len(short), len(long)])[0]
    alone = harmony.harmonic_chroma(rhythm.spectrogram(short[None]), [len(short)])[0]
    np.testing.assert_allclose(together[0], alone[0], atol=1e-6)  # chroma (12, T_short)
    assert together[1:] == pytest.approx(alone[1:], abs=1e-6)  # harmonic share, peakiness


@pytest.mark.parametrize("axis", [-1, -2])
def test_median_filter_along_one_axis_equals_scipys_nd_filter(axis):
    from scipy.ndimage import median_filter

    x = np.random.default_rng(0).standard_normal((3, 40, 57)).astype(np.float32) ** 2  # (B, F, T)
    size = [1, 1, 1]
    size[axis] = 9
    np.testing.assert_array_equal(median_filter_along(x, 9, axis), median_filter(x, size=size, mode="reflect"))


def test_harmonic_part_equals_librosa_hpss():
    import librosa

    track = synthesize_multitrack(seed=3, duration_s=3.0, sample_rate_hz=RATE_HZ)
    stft = librosa.stft(np.stack([track.accompaniment, track.stems["drums"]]), n_fft=2048, hop_length=512)
    harmonic, _ = librosa.decompose.hpss(stft, margin=(1.0, 2.0))
    np.testing.assert_array_equal(harmonic_part(stft), harmonic)
