"""Choose excerpts where the vocal is active.

Rule (documented, tested): the vocal is cut into 100 ms windows; a window is *active* when its
RMS is at least -40 dBFS (0.01 linear). Candidate excerpts start on a grid of `stride_s`
(default: the excerpt duration, so excerpts do not overlap), and a candidate is kept when at
least half of its windows are active. Starts and durations are whole 40 ms units, so every
excerpt has exactly 2 semantic frames for 3 acoustic ones (`hafm_core.tokens.alignment`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hafm_core.tokens.alignment import UNITS_PER_S, aligned_duration_s

ACTIVITY_WINDOW_S = 0.1
ACTIVITY_THRESHOLD_DBFS = -40.0
MIN_ACTIVE_FRACTION = 0.5


@dataclass(frozen=True)
class ExcerptSpan:
    start_s: float
    duration_s: float
    active_fraction: float  # share of 100 ms windows with vocal RMS >= -40 dBFS


def vocal_activity(vocal: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """vocal float32 [n] -> bool [n_windows]: 100 ms windows with RMS >= -40 dBFS."""
    window = int(round(ACTIVITY_WINDOW_S * sample_rate_hz))
    n_windows = len(vocal) // window
    frames = vocal[: n_windows * window].astype(np.float64).reshape(n_windows, window)
    rms = np.sqrt((frames**2).mean(axis=1))
    return rms >= 10.0 ** (ACTIVITY_THRESHOLD_DBFS / 20.0)


def choose_excerpts(vocal: np.ndarray, sample_rate_hz: int, duration_s: float,
                    stride_s: float | None = None, max_excerpts: int | None = None) -> list[ExcerptSpan]:
    """Vocal-active excerpt spans of `duration_s` (rounded down to 40 ms units) in a track."""
    duration_s = aligned_duration_s(duration_s)
    stride_s = aligned_duration_s(stride_s if stride_s is not None else duration_s)
    if duration_s <= 0 or stride_s <= 0:
        raise ValueError("excerpt duration and stride must be at least 40 ms")
    active = vocal_activity(vocal, sample_rate_hz)
    windows_per_excerpt = int(round(duration_s / ACTIVITY_WINDOW_S))
    track_units = len(vocal) * UNITS_PER_S // sample_rate_hz
    excerpt_units = int(round(duration_s * UNITS_PER_S))
    stride_units = int(round(stride_s * UNITS_PER_S))
    spans = []
    for start_unit in range(0, track_units - excerpt_units + 1, stride_units):
        start_s = start_unit / UNITS_PER_S
        first = int(start_s / ACTIVITY_WINDOW_S)
        fraction = float(active[first:first + windows_per_excerpt].mean()) if windows_per_excerpt else 0.0
        if fraction >= MIN_ACTIVE_FRACTION:
            spans.append(ExcerptSpan(start_s, duration_s, fraction))
            if max_excerpts is not None and len(spans) >= max_excerpts:
                break
    return spans
