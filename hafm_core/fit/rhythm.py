"""Rhythmic alignment between a vocal and an accompaniment, from librosa onset analysis.

Both signals are analysed at 22.05 kHz with a 512-sample hop (frames of 23.2 ms). The onset
envelope is librosa's spectral flux on a log-mel spectrogram (`onset_strength`; it is in dB
per frame relative to the signal's own maximum, so it does not depend on the level). Beats
are librosa's dynamic-programming beat tracker (Ellis, 2007) run on the accompaniment.

Metrics (each a plain float; `fit.excerpt` turns undefined cases into a status):
- `onset_beat_hit_rate` in [0, 1]: share of vocal onsets within +-70 ms (the MIREX beat
  tolerance) of an accompaniment beat. Chance level is about 2 * 0.07 s / beat period
  (0.28 at 120 BPM).
- `beat_emphasis` in [-1, 1]: (on - off) / (on + off), where `on` is the mean vocal onset
  strength at the accompaniment's beats and `off` the same half-way between beats (each the
  maximum within +-2 frames). Positive: the vocal's accents land on the beats; a half-beat
  shift of the accompaniment flips its sign.
- `onset_xcorr_prominence` in [-1, 1]: Pearson cross-correlation r(lag) of the two onset
  envelopes over lags within +-1 beat period; (r(0) - median r) / max |r - median r|. 1 when
  zero lag is the best alignment of the two envelopes.
- `tempo_agreement` in [0, 1]: 1 - 2 d, where d (<= 0.5) is the distance in octaves between
  the two tempo estimates folded by factors of 2 (the usual double/half-tempo ambiguity).
  1: the same, double or half tempo; 0: tempi a factor sqrt(2) apart (e.g. 85 and 120 BPM).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ANALYSIS_RATE_HZ = 22_050
HOP_SAMPLES = 512
FRAME_RATE_HZ = ANALYSIS_RATE_HZ / HOP_SAMPLES  # 43.07 frames per second
BEAT_TOLERANCE_S = 0.07
PEAK_RADIUS_FRAMES = 2  # +-46 ms


@dataclass(frozen=True)
class OnsetAnalysis:
    """One signal's onsets. Envelope: float32 [T] at `FRAME_RATE_HZ`; times in seconds."""

    envelope: np.ndarray
    onset_times_s: np.ndarray
    strong_onset_count: int  # onsets whose strength reaches `min_onset_strength`
    tempo_bpm: float
    beat_times_s: np.ndarray


def analyse_onsets(samples: np.ndarray, min_onset_strength: float) -> OnsetAnalysis:
    """samples: float32 [n] at `ANALYSIS_RATE_HZ` -> onsets, tempo and beats."""
    import librosa

    envelope = librosa.onset.onset_strength(y=samples, sr=ANALYSIS_RATE_HZ, hop_length=HOP_SAMPLES)
    onset_frames = librosa.onset.onset_detect(onset_envelope=envelope, sr=ANALYSIS_RATE_HZ,
                                              hop_length=HOP_SAMPLES)
    # onset_detect normalises the envelope, so it finds "onsets" even in a steady tone; the
    # absolute strength (dB of spectral flux) tells real attacks from ripple.
    strong = int((envelope[onset_frames] >= min_onset_strength).sum())
    # trim=False: librosa 0.11's trimming can drop all but one beat of a clean 6 s groove.
    tempo, beat_frames = librosa.beat.beat_track(onset_envelope=envelope, sr=ANALYSIS_RATE_HZ,
                                                 hop_length=HOP_SAMPLES, trim=False)
    return OnsetAnalysis(
        envelope=envelope.astype(np.float32),
        onset_times_s=librosa.frames_to_time(onset_frames, sr=ANALYSIS_RATE_HZ, hop_length=HOP_SAMPLES),
        strong_onset_count=strong,
        tempo_bpm=float(np.atleast_1d(tempo)[0]),
        beat_times_s=librosa.frames_to_time(beat_frames, sr=ANALYSIS_RATE_HZ, hop_length=HOP_SAMPLES),
    )


def onset_beat_hit_rate(onset_times_s: np.ndarray, beat_times_s: np.ndarray,
                        tolerance_s: float = BEAT_TOLERANCE_S) -> float:
    """Share of onsets within `tolerance_s` of the nearest beat; both need >= 1 element."""
    distance = np.abs(onset_times_s[:, None] - beat_times_s[None, :]).min(axis=1)  # (n_onsets,)
    return float(np.mean(distance <= tolerance_s))


def _peak_near(envelope: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """float [len(frames)]: max of envelope within +-PEAK_RADIUS_FRAMES of each frame."""
    padded = np.pad(envelope, PEAK_RADIUS_FRAMES)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * PEAK_RADIUS_FRAMES + 1)  # (T, 5)
    return windows[frames].max(axis=1)


def beat_emphasis(vocal_envelope: np.ndarray, beat_times_s: np.ndarray) -> float:
    """Vocal onset strength on the beats against half-way between them; needs >= 2 beats."""
    n = len(vocal_envelope)
    midpoints_s = (beat_times_s[:-1] + beat_times_s[1:]) / 2
    on = np.clip(np.round(beat_times_s * FRAME_RATE_HZ).astype(int), 0, n - 1)
    off = np.clip(np.round(midpoints_s * FRAME_RATE_HZ).astype(int), 0, n - 1)
    on_strength = float(_peak_near(vocal_envelope, on).mean())
    off_strength = float(_peak_near(vocal_envelope, off).mean())
    total = on_strength + off_strength
    return 0.0 if total <= 0 else (on_strength - off_strength) / total


def onset_xcorr_prominence(vocal_envelope: np.ndarray, accompaniment_envelope: np.ndarray,
                           beat_period_s: float) -> float:
    """How much the zero-lag cross-correlation stands out among lags within +-1 beat."""
    n = min(len(vocal_envelope), len(accompaniment_envelope))
    x = vocal_envelope[:n].astype(np.float64)
    y = accompaniment_envelope[:n].astype(np.float64)
    max_lag = max(1, min(n // 4, int(round(beat_period_s * FRAME_RATE_HZ))))
    r = np.array([_pearson(x[max(0, lag):n + min(0, lag)], y[max(0, -lag):n - max(0, lag)])
                  for lag in range(-max_lag, max_lag + 1)])  # (2 * max_lag + 1,)
    centred = r - np.median(r)
    spread = np.abs(centred).max()
    return 0.0 if spread == 0 else float(centred[max_lag] / spread)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return 0.0 if denominator == 0 else float((a * b).sum() / denominator)


def tempo_agreement(tempo_a_bpm: float, tempo_b_bpm: float) -> float:
    """1 for equal tempi (or a factor 2 apart), falling linearly to 0 at a factor sqrt(2)."""
    if tempo_a_bpm <= 0 or tempo_b_bpm <= 0:
        return 0.0
    octaves = abs(np.log2(tempo_a_bpm / tempo_b_bpm)) % 1.0
    return float(1.0 - 2.0 * min(octaves, 1.0 - octaves))
