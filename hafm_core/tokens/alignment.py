"""The 40 ms unit that keeps semantic and acoustic frames in a fixed 2 : 3 ratio.

Semantic frames are 20 ms (50 Hz) and acoustic frames 13.33 ms (75 Hz): only every 40 ms do
their boundaries coincide, and there a unit holds exactly 2 semantic and 3 acoustic frames
(640 samples at 16 kHz, 960 at 24 kHz, 1 764 at 44.1 kHz).

Rule: an excerpt is cut to a whole number of units, `units = n * 25 // sample_rate_hz` (the
tail shorter than 40 ms is dropped, never padded), so `T_s = 2 * units` and
`T_a = 3 * units = T_s * 3 / 2` exactly. The tokenizers' own frame rules (`n // 320` for HuBERT,
`ceil(n / 320)` for EnCodec) agree on such lengths. `align_tokens` trims token arrays made
from unaligned audio to the largest common whole number of units.
"""

from __future__ import annotations

import numpy as np

from hafm_core.errors import ConfigError

UNIT_S = 0.04
UNITS_PER_S = 25
SEMANTIC_FRAMES_PER_UNIT = 2
ACOUSTIC_FRAMES_PER_UNIT = 3


def samples_per_unit(sample_rate_hz: int) -> int:
    if sample_rate_hz % UNITS_PER_S:
        raise ConfigError(f"sample rate {sample_rate_hz} Hz has no whole number of samples per 40 ms; "
                          "resample to 16, 24, 44.1 or 48 kHz")
    return sample_rate_hz // UNITS_PER_S


def num_units(n_samples: int, sample_rate_hz: int) -> int:
    """Whole 40 ms units in n samples (floor)."""
    return n_samples // samples_per_unit(sample_rate_hz)


def aligned_duration_s(duration_s: float) -> float:
    """`duration_s` rounded down to a whole number of 40 ms units (1e-9 s tolerance)."""
    return int(duration_s * UNITS_PER_S + 1e-6) / UNITS_PER_S


def trim_to_units(samples: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """[..., n] -> [..., units * samples_per_unit]: drop the tail shorter than 40 ms."""
    keep = num_units(samples.shape[-1], sample_rate_hz) * samples_per_unit(sample_rate_hz)
    return samples[..., :keep]


def align_tokens(semantic, acoustic):
    """semantic [..., T_s], acoustic [..., K, T_a] -> both trimmed to u = min(T_s // 2, T_a // 3) units.

    Returns (semantic [..., 2u], acoustic [..., K, 3u]); nothing is padded.
    """
    units = min(semantic.shape[-1] // SEMANTIC_FRAMES_PER_UNIT, acoustic.shape[-1] // ACOUSTIC_FRAMES_PER_UNIT)
    return (semantic[..., : units * SEMANTIC_FRAMES_PER_UNIT],
            acoustic[..., : units * ACOUSTIC_FRAMES_PER_UNIT])
