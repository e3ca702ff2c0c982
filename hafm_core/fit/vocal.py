"""The vocal side of the fit: computed once per distinct vocal, shared by every excerpt that holds it.

A benchmark run measures several systems' accompaniments against the same vocals, and the
validation suite many manipulated accompaniments of one vocal. What depends on the vocal
alone (as measured: cut to the excerpt's common length) is computed once per distinct vocal
of a `fit_excerpts` call, identified by `audio.samples_sha256` of its samples and rate:

- its CREPE pitch (f0 and periodicity at `FitConfig.pitch_hop_s`), three quarters of a fit's
  CPU time; also kept across calls and processes by `pitch_cache.PitchCache`;
- its log-mel spectrogram before the dB floor, and its frame RMS, at 43 Hz.

What couples vocal and accompaniment stays per excerpt: the onset envelopes' dB floor
(`rhythm.TOP_DB` below the louder signal of the pair), the activity weights, onsets, beats
and scores. So sharing changes no excerpt's numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hafm_core.fit import rhythm


@dataclass(frozen=True)
class VocalAnalysis:
    """One vocal's share of the analysis."""

    f0_hz: np.ndarray  # float32 [T_p] at the pitch hop
    periodicity: np.ndarray  # float32 [T_p] in [0, 1]
    log_mel: np.ndarray  # float32 [128, T] in dB, not floored, at `rhythm.FRAME_RATE_HZ`
    rms: np.ndarray  # float32 [T]


def crepe_pitch(model, vocals_16k: list[np.ndarray], hop: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Vocals float32 [n_i] at 16 kHz -> per vocal (f0_hz [T_i], periodicity [T_i]), T_i = 1 + n_i // hop.

    The vocals are zero-padded to the longest one and run as one batch; each keeps its own
    frames, which see only zeros beyond its end, alone or in a batch (CREPE frames are
    centred and zero-padded).
    """
    from hafm_core.audio import stack_padded

    f0_hz, periodicity = model.pitch(stack_padded(vocals_16k), hop_samples=hop)  # (B, T_max) each
    return [(f0_hz[i, :1 + len(v) // hop], periodicity[i, :1 + len(v) // hop]) for i, v in enumerate(vocals_16k)]


def analyse_vocals(vocals: list[np.ndarray], rates_hz: list[int], model, pitch_hop_s: float,
                   cache=None) -> list[VocalAnalysis]:
    """Distinct vocals float32 [n_i] at rates_hz[i] -> one `VocalAnalysis` each.

    One CREPE batch for the vocals whose pitch is not in `cache` (a `pitch_cache.PitchCache`,
    or None), one STFT and one mel projection of all of them.
    """
    from hafm_core.audio import resample, samples_sha256, stack_padded
    from hafm_core.crepe import SAMPLE_RATE_HZ
    from hafm_core.fit.pitch_cache import model_fingerprint, pitch_key

    hop = int(round(pitch_hop_s * SAMPLE_RATE_HZ))
    keys = [None] * len(vocals)
    pitches = [None] * len(vocals)
    if cache is not None:
        model_sha256 = model_fingerprint(model)
        keys = [pitch_key(samples_sha256(v, r), model_sha256, hop) for v, r in zip(vocals, rates_hz)]
        pitches = [cache.get(key) for key in keys]
    missing = [i for i, pitch in enumerate(pitches) if pitch is None]
    if missing:
        computed = crepe_pitch(model, [resample(vocals[i], rates_hz[i], SAMPLE_RATE_HZ) for i in missing], hop)
        for i, pitch in zip(missing, computed):
            pitches[i] = pitch
            if cache is not None:
                cache.put(keys[i], *pitch)
    samples = [resample(v, r, rhythm.ANALYSIS_RATE_HZ) for v, r in zip(vocals, rates_hz)]
    batch = stack_padded(samples)  # (V, n_max)
    log_mel = rhythm.log_mel(rhythm.spectrogram(batch))  # (V, 128, T_max)
    rms = rhythm.frame_rms(batch)  # (V, T_max)
    frames = [1 + len(x) // rhythm.HOP_SAMPLES for x in samples]
    return [VocalAnalysis(*pitch, log_mel[i, :, :t], rms[i, :t]) for i, (pitch, t) in enumerate(zip(pitches, frames))]
