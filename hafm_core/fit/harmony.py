"""Harmonic compatibility between a vocal's pitch (CREPE) and the accompaniment's harmonic part.

The accompaniment's chroma comes from its *harmonic* part only: the STFT magnitude (2048
points, 512-sample hop at 22.05 kHz) is split by median-filtering harmonic-percussive
separation (Fitzgerald, 2010; `librosa.decompose.hpss`, margin 2 on the percussive side),
and the chroma is librosa's constant-Q chroma (`chroma_cqt`) of the harmonic signal, smoothed
with a 0.25 s moving average (an STFT chroma scored a tritone-shifted real accompaniment
above the true one: 10.8 Hz bins cannot tell bass notes apart). A
drum kit has little harmonic power, so it neither fills the chroma nor votes for a key.

"No harmony" (`harmony_status`): an accompaniment whose harmonic part holds less than
`MIN_HARMONIC_SHARE` of its power (drums alone: 0.02-0.22 in validation, true
accompaniments 0.29-0.96), or whose chroma is flat (`MIN_CHROMA_PEAKINESS`, the share of
each frame's chroma in its 4 strongest pitch classes: pink noise 0.39-0.42, accompaniments
0.52-0.83 in validation), has no
chords to fit: its harmony metrics are 0.

The vocal's pitch class is its CREPE f0 rounded to the nearest equal-tempered semitone
(A4 = 440 Hz), on voiced frames.

Metrics (meant to catch transpositions, noise and drums alone):
- `chord_tone_ratio` in [0, 1]: share of voiced vocal frames whose pitch class is among the
  accompaniment's `ACTIVE_PITCH_CLASSES` (4: a triad or a seventh chord) strongest chroma
  bins at that moment, and at least `MIN_ACTIVE_LEVEL` (10%) of the strongest. Chance level
  for an unrelated melody is about 4 / 12 = 0.33.
- `key_agreement` in [0, 1]: the MIREX key-detection score between the key of the vocal and
  the key of the accompaniment, each estimated with the Krumhansl-Schmuckler method
  (correlation of a pitch-class profile with the 24 rotated Krumhansl-Kessler probe-tone
  profiles): 1 same key, 0.5 a fifth apart either way (same mode), 0.3 relative major/minor,
  0.2 parallel major/minor, 0 otherwise. Its confidence (`key_confidence`) is reported: the
  smaller of the two sides' margins between the best and second-best key correlation; short
  excerpts often have a near tie, and then the agreement is a coin toss.
"""

from __future__ import annotations

import numpy as np

from hafm_core.fit.rhythm import ANALYSIS_RATE_HZ, FRAME_RATE_HZ, HOP_SAMPLES

ACTIVE_PITCH_CLASSES = 4
MIN_ACTIVE_LEVEL = 0.1  # of the frame's strongest chroma bin
CHROMA_SMOOTHING_S = 0.25
MIN_HARMONIC_SHARE = 0.25
MIN_CHROMA_PEAKINESS = 0.47
PITCH_CLASS_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# Krumhansl & Kessler (1982) probe-tone ratings, tonic first.
KRUMHANSL_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KRUMHANSL_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def harmonic_chroma(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """samples: float32 [..., n] at `ANALYSIS_RATE_HZ` -> (chroma float32 [..., 12, T] in [0, 1],
    harmonic share float [...], chroma peakiness float [...]). A batch [B, n] is one call."""
    import librosa
    from scipy.ndimage import uniform_filter1d

    stft = librosa.stft(samples, n_fft=2048, hop_length=HOP_SAMPLES)  # (..., F, T) complex
    harmonic, _ = librosa.decompose.hpss(stft, margin=(1.0, 2.0))
    power, total = np.abs(harmonic) ** 2, np.abs(stft) ** 2
    share = power.sum(axis=(-2, -1)) / np.maximum(total.sum(axis=(-2, -1)), 1e-20)
    # Constant-Q chroma of the harmonic signal: the STFT's 10.8 Hz bins cannot tell bass notes apart.
    harmonic_samples = librosa.istft(harmonic, hop_length=HOP_SAMPLES, length=samples.shape[-1])
    chroma = librosa.feature.chroma_cqt(y=harmonic_samples, sr=ANALYSIS_RATE_HZ, hop_length=HOP_SAMPLES)
    width = max(1, int(round(CHROMA_SMOOTHING_S * FRAME_RATE_HZ)))
    chroma = uniform_filter1d(chroma, width, axis=-1, mode="nearest")
    ranked = np.sort(chroma, axis=-2)
    peakiness = (ranked[..., -ACTIVE_PITCH_CLASSES:, :].sum(axis=-2)
                 / np.maximum(ranked.sum(axis=-2), 1e-12)).mean(axis=-1)
    return chroma.astype(np.float32), share, peakiness


def pitch_classes(f0_hz: np.ndarray) -> np.ndarray:
    """f0 in Hz (> 0) -> int64 pitch classes 0-11 (C = 0), nearest semitone."""
    midi = 69 + 12 * np.log2(f0_hz / 440.0)
    return np.mod(np.round(midi).astype(np.int64), 12)


def chord_tone_ratio(vocal_pitch_classes: np.ndarray, vocal_times_s: np.ndarray,
                     chroma: np.ndarray) -> float:
    """Share of voiced vocal frames on one of the accompaniment's strongest pitch classes.

    vocal_pitch_classes: int [N] of voiced frames at times vocal_times_s float [N];
    chroma: [12, T] at `FRAME_RATE_HZ`. Needs N >= 1.
    """
    columns = np.clip(np.round(vocal_times_s * FRAME_RATE_HZ).astype(int), 0, chroma.shape[1] - 1)
    frames = chroma[:, columns]  # (12, N)
    own = frames[vocal_pitch_classes, np.arange(len(columns))]  # (N,)
    stronger = (frames > own[None, :]).sum(axis=0)  # how many pitch classes beat the vocal's
    audible = own >= MIN_ACTIVE_LEVEL * frames.max(axis=0)
    return float(np.mean((stronger < ACTIVE_PITCH_CLASSES) & audible & (own > 0)))


def estimate_key(profile: np.ndarray) -> tuple[int, float]:
    """Pitch-class profile float [12] -> (key index: 0-11 major on C..B, 12-23 minor, confidence:
    the margin between the best and the second-best key correlation, in [0, 2])."""
    if np.std(profile) == 0:
        return 0, 0.0
    scores = np.array([np.corrcoef(np.roll(template, tonic), profile)[0, 1]
                       for template in (KRUMHANSL_MAJOR, KRUMHANSL_MINOR) for tonic in range(12)])
    best, second = np.sort(scores)[::-1][:2]
    return int(np.argmax(scores)), float(best - second)


def key_name(key: int) -> str:
    return f"{PITCH_CLASS_NAMES[key % 12]} {'major' if key < 12 else 'minor'}"


def mirex_key_score(key_a: int, key_b: int) -> float:
    """MIREX weighted key score between two key indices (symmetric)."""
    minor_a, tonic_a = divmod(key_a, 12)
    minor_b, tonic_b = divmod(key_b, 12)
    if key_a == key_b:
        return 1.0
    if minor_a == minor_b:
        return 0.5 if (tonic_b - tonic_a) % 12 in (5, 7) else 0.0
    major_tonic, minor_tonic = (tonic_a, tonic_b) if not minor_a else (tonic_b, tonic_a)
    if (major_tonic - minor_tonic) % 12 == 3:
        return 0.3  # relative: A minor and C major
    if major_tonic == minor_tonic:
        return 0.2  # parallel: C minor and C major
    return 0.0


def vocal_pitch_profile(vocal_pitch_classes: np.ndarray, periodicity: np.ndarray) -> np.ndarray:
    """float64 [12]: time spent on each pitch class, weighted by voicing confidence."""
    return np.bincount(vocal_pitch_classes, weights=periodicity, minlength=12).astype(np.float64)
