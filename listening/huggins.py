"""Huggins-pitch headphone screening stimuli (Milne et al., 2021, Behav. Res. Methods 53:1551).

Each trial is three 1 s bursts of noise separated by 0.5 s of silence. Two bursts are diotic
(the same noise in both ears); in the target burst one ear's noise has its phase inverted in
a narrow band (6 % wide) around 600 Hz. Over headphones the target carries a faint tone (the
Huggins pitch); over loudspeakers the binaural cue is lost, so the three bursts sound alike.
The listener says which burst (1, 2 or 3) holds the tone; 5 of 6 correct passes.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE_HZ = 44_100
N_TRIALS = 6
PASS_MARK = 5
MAX_ATTEMPTS = 2
N_INTERVALS = 3
BURST_S = 1.0
GAP_S = 0.5
CENTRE_HZ = 600.0
RELATIVE_BANDWIDTH = 0.06
RAMP_S = 0.02
LEVEL_RMS = 0.05


def _burst(rng: np.random.Generator, huggins: bool) -> np.ndarray:
    """One noise burst, float64 [2, n]: diotic, or with the Huggins band inverted in the right ear."""
    n = int(BURST_S * SAMPLE_RATE_HZ)
    noise = rng.standard_normal(n)
    left = noise
    if huggins:
        spectrum = np.fft.rfft(noise)
        freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE_HZ)
        half_band = CENTRE_HZ * RELATIVE_BANDWIDTH / 2.0
        band = np.abs(freqs - CENTRE_HZ) <= half_band
        spectrum[band] *= -1.0  # a 180 degree phase shift in the band only
        right = np.fft.irfft(spectrum, n)
    else:
        right = noise.copy()
    burst = np.stack([left, right]) * (LEVEL_RMS / np.sqrt(np.mean(noise**2)))
    ramp_n = int(RAMP_S * SAMPLE_RATE_HZ)
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, ramp_n))
    burst[:, :ramp_n] *= ramp
    burst[:, n - ramp_n:] *= ramp[::-1]
    return burst


def trial_audio(seed: int, target: int) -> np.ndarray:
    """The three bursts of one trial, float64 [2, n] at SAMPLE_RATE_HZ; `target` in 1..3."""
    if target not in range(1, N_INTERVALS + 1):
        raise ValueError(f"target must be 1, 2 or 3, not {target!r}")
    rng = np.random.default_rng(seed)
    gap = np.zeros((2, int(GAP_S * SAMPLE_RATE_HZ)))
    parts = []
    for interval in range(1, N_INTERVALS + 1):
        if parts:
            parts.append(gap)
        parts.append(_burst(rng, huggins=interval == target))
    return np.concatenate(parts, axis=1)


def passed(n_correct: int) -> bool:
    return n_correct >= PASS_MARK
