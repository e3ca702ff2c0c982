"""Huggins-pitch headphone screening stimuli (Milne et al., 2021, Behav. Res. Methods 53:1551).

Each trial is three 1 s bursts of noise separated by 0.5 s of silence. Two bursts are diotic
(the same noise in both ears); in the target burst one ear's noise has its phase inverted in
a narrow band (6 % wide) around 600 Hz. Over headphones the target carries a faint tone (the
Huggins pitch); over loudspeakers the binaural cue is lost, so the three bursts sound alike.
The listener says which burst (1, 2 or 3) holds the tone; 5 of 6 correct passes.

Read from the file, a diotic distractor has identical channels and the target does not, so a
script would pass without headphones or ears. Each delivery is therefore made afresh
(`delivered_screening_wav`, noise seeded by the delivery token, the target interval drawn
at random per trial) and no burst is diotic: all three share one interaural delay (a
lateralised noise, no pitch) and each gets its own small share of interaurally independent
noise, drawn at random per burst. Interaural level, correlation and side-signal energy then
vary more between bursts than the narrow Huggins band moves them, so they point at a burst
at chance; what still tells the target is the phase flip in one narrow band: the sound.
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
INTERAURAL_DELAY_S = (0.0001, 0.0005)  # shared by the three bursts of a delivery
INDEPENDENT_SHARE = (0.01, 0.05)  # per burst: energy share of noise independent between the ears


def _burst(rng: np.random.Generator, huggins: bool, delay_s: float = 0.0,
           independent_share: float = 0.0) -> np.ndarray:
    """One noise burst, float64 [2, n]: the right ear's noise delayed by `delay_s`, mixed with
    `independent_share` of noise independent between the ears, and with the Huggins band
    inverted when `huggins` (all zero: the classic diotic burst)."""
    n = int(BURST_S * SAMPLE_RATE_HZ)
    noise = rng.standard_normal(n)
    spectrum = np.fft.rfft(noise)
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE_HZ)
    right_spectrum = spectrum * np.exp(-2j * np.pi * freqs * delay_s)
    if huggins:
        half_band = CENTRE_HZ * RELATIVE_BANDWIDTH / 2.0
        band = np.abs(freqs - CENTRE_HZ) <= half_band
        right_spectrum[band] *= -1.0  # a 180 degree phase shift in the band only
    left, right = noise, np.fft.irfft(right_spectrum, n)
    if independent_share > 0.0:
        keep, add = np.sqrt(1.0 - independent_share), np.sqrt(independent_share)
        left = keep * left + add * rng.standard_normal(n)
        right = keep * right + add * rng.standard_normal(n)
    burst = np.stack([left, right]) * (LEVEL_RMS / np.sqrt(np.mean(noise**2)))
    ramp_n = int(RAMP_S * SAMPLE_RATE_HZ)
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, ramp_n))
    burst[:, :ramp_n] *= ramp
    burst[:, n - ramp_n:] *= ramp[::-1]
    return burst


def trial_audio(seed: int, target: int, diotic: bool = False) -> np.ndarray:
    """The three bursts of one trial, float64 [2, n] at SAMPLE_RATE_HZ; `target` in 1..3.

    `diotic=True` gives the textbook stimulus (distractors with identical channels), which a
    script reading the file answers without listening; the default hides that (module doc).
    """
    if target not in range(1, N_INTERVALS + 1):
        raise ValueError(f"target must be 1, 2 or 3, not {target!r}")
    rng = np.random.default_rng(seed)
    delay_s = 0.0 if diotic else float(rng.uniform(*INTERAURAL_DELAY_S))
    gap = np.zeros((2, int(GAP_S * SAMPLE_RATE_HZ)))
    parts = []
    for interval in range(1, N_INTERVALS + 1):
        if parts:
            parts.append(gap)
        share = 0.0 if diotic else float(rng.uniform(*INDEPENDENT_SHARE))
        parts.append(_burst(rng, huggins=interval == target, delay_s=delay_s, independent_share=share))
    return np.concatenate(parts, axis=1)


def delivered_screening_wav(trial_seed: int, target: int, token: str) -> bytes:
    """One delivery of a screening trial: fresh noise for every token (the same token, e.g. a
    browser's byte ranges, gets the same bytes), the trial's random target interval."""
    from listening.delivery import delivery_seed
    from listening.stimuli import wav_bytes_pcm16

    seed = (trial_seed ^ delivery_seed(token)) & (2**63 - 1)
    return wav_bytes_pcm16(trial_audio(seed, target), SAMPLE_RATE_HZ)


def passed(n_correct: int) -> bool:
    return n_correct >= PASS_MARK
