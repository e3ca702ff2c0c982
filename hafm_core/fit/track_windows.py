"""Validation windows of whole real tracks (MUSDB18): tempo from the accompaniment, windows with a sung vocal.

`benchmarks/fit_validation.py --musdb PATH` cuts each track into the cases of
`hafm_core.fit.validation.window_cases` (the manipulations of the stempeg windows):
- the tempo, which sets the beat shifts, is librosa's beat tracker on the accompaniment
  (drums + bass + other) over the whole track, folded by octaves into `TEMPO_RANGE_BPM` (the
  tracker's double- and half-time answers name the same beat grid; the range is where a
  half-beat shift is a half of the beat a listener taps);
- candidate windows start every half window, leaving one beat of audio before and, after,
  the larger of one beat and what the tempo drift stretches (`STRETCH`); a candidate whose
  vocal RMS is `VOCAL_SILENT_DB` or more below the accompaniment's holds no sung vocal (an
  instrumental part) and is skipped; K windows are spread evenly over the active ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hafm_core.fit.validation import Case, rms, window_cases

TEMPO_RANGE_BPM = (70.0, 140.0)  # [low, high): folded tempo
VOCAL_SILENT_DB = -20.0  # vocal RMS at or below the accompaniment's RMS + this: no sung vocal
STRETCH = 1.08  # the tempo drift of `window_cases`: it reads 1.08 windows of accompaniment


@dataclass(frozen=True)
class TrackWindows:
    """The validation cases of one track and how they were chosen."""

    name: str
    tracked_bpm: float  # librosa's beat tracker on the accompaniment
    tempo_bpm: float  # folded into TEMPO_RANGE_BPM; sets the shifts
    starts_s: tuple[float, ...]  # the windows used
    candidates: int  # candidate windows inspected
    vocal_silent: int  # of which skipped: no sung vocal
    cases: tuple[Case, ...]

    def summary(self) -> str:
        starts = ", ".join(f"{s:.1f}" for s in self.starts_s) or "none"
        return (f"{self.name}: tempo {self.tempo_bpm:.1f} BPM (beat tracker {self.tracked_bpm:.1f}), "
                f"windows at {starts} s; {self.vocal_silent} of {self.candidates} candidate windows skipped "
                f"as vocal-silent (vocal RMS {-VOCAL_SILENT_DB:g} dB or more below the accompaniment)")


def fold_tempo(bpm: float, low: float = TEMPO_RANGE_BPM[0], high: float = TEMPO_RANGE_BPM[1]) -> float:
    """`bpm` doubled or halved until it lies in [low, high) (high = 2 low)."""
    if not bpm > 0:
        raise ValueError(f"tempo {bpm} BPM cannot be folded")
    while bpm < low:
        bpm *= 2
    while bpm >= high:
        bpm /= 2
    return bpm


def accompaniment_tempo(accompaniment: np.ndarray, rate: int) -> float:
    """librosa's beat-tracker tempo (BPM) of float32 [n] at `rate`; 0 when it finds no beat."""
    import librosa

    tempo, _ = librosa.beat.beat_track(y=accompaniment, sr=rate)
    return float(np.atleast_1d(tempo)[0])


def vocal_active(vocal: np.ndarray, accompaniment: np.ndarray) -> bool:
    """False when the vocal's RMS is `VOCAL_SILENT_DB` or more below the accompaniment's."""
    return rms(vocal) > rms(accompaniment) * 10 ** (VOCAL_SILENT_DB / 20)


def track_windows(stems: dict[str, np.ndarray], rate: int, name: str, windows: int,
                  window_s: float = 3.0) -> TrackWindows:
    """Up to `windows` vocal-active windows of one track and their cases (14 per window).

    stems: {vocals, drums, bass, other} float32 [m] at `rate`, one track. Each window's cases
    belong to the song `musdb:<name>` (one cluster for the song bootstrap). The pitch shifts
    are computed on the window's region (one beat each side), not the whole track.
    """
    import librosa

    accompaniment = stems["drums"] + stems["bass"] + stems["other"]
    tracked = accompaniment_tempo(accompaniment, rate)
    tempo = fold_tempo(tracked) if tracked > 0 else 0.0
    n = int(round(window_s * rate))
    if tempo == 0.0:
        return TrackWindows(name, tracked, tempo, (), 0, 0, ())
    beat = int(round(60.0 / tempo * rate))
    after = max(n + beat, math.ceil(STRETCH * n) + 1)  # samples from a window's start to its region's end
    total = len(accompaniment)
    candidates = list(range(beat, total - after + 1, max(1, n // 2)))
    active = [i for i in candidates if vocal_active(stems["vocals"][i:i + n], accompaniment[i:i + n])]
    chosen = [active[k] for k in np.unique(np.round(np.linspace(0, len(active) - 1, windows)).astype(int))] \
        if active and windows > 0 else []
    cases: list[Case] = []
    for i in chosen:
        region = {stem: stems[stem][i - beat:i + after] for stem in ("vocals", "drums", "bass", "other")}
        acc = accompaniment[i - beat:i + after]
        semitone = librosa.effects.pitch_shift(acc, sr=rate, n_steps=1)
        tritone = librosa.effects.pitch_shift(acc, sr=rate, n_steps=6)
        j = i + total // 2 if i + total // 2 <= total - n else i - total // 2
        j = min(max(j, 0), total - n)  # another part of the song: half the track away
        cases += window_cases(region, rate, beat, n, 60.0 / tempo, semitone, tritone, accompaniment[j:j + n],
                              source=f"musdb:{name}@{i / rate:.2f}", song=f"musdb:{name}", seed=i)
    return TrackWindows(name, tracked, tempo, tuple(i / rate for i in chosen), len(candidates),
                        len(candidates) - len(active), tuple(cases))
