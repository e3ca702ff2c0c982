"""Harmonic compatibility between a vocal's pitch (CREPE) and the accompaniment's harmonic part.

The accompaniment's chroma comes from its *harmonic* part only: the STFT magnitude (2048
points, 512-sample hop at 22.05 kHz) is split by median-filtering harmonic-percussive
separation (Fitzgerald, 2010; `harmonic_part`, librosa's `hpss` with a faster median filter),
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
- `chord_tone_ratio` in [0, 1]: share of voiced vocal frames, each counted by the vocal's
  RMS amplitude there, whose pitch class is among the accompaniment's
  `ACTIVE_PITCH_CLASSES` (4: a triad or a seventh chord) strongest chroma bins at that
  moment, and at least `MIN_ACTIVE_LEVEL` (10%) of the strongest. Chance level for an
  unrelated melody is about 4 / 12 = 0.33.
- `key_agreement` in [0, 1]: the MIREX key-detection score between the key of the vocal and
  the key of the accompaniment, each estimated with the Krumhansl-Schmuckler method
  (correlation of a pitch-class profile with the 24 rotated Krumhansl-Kessler probe-tone
  profiles): 1 same key, 0.5 a fifth apart either way (same mode), 0.3 relative major/minor,
  0.2 parallel major/minor, 0 otherwise. Its confidence (`key_confidence`) is reported: the
  smaller of the two sides' margins between the best and second-best key correlation; short
  excerpts often have a near tie, and then the agreement is a coin toss.

Round 5 of issue 16 (`benchmarks/fit_harmony_lag.py`, `benchmarks/results/fit_validation_cpu.txt`):
counted frame by frame, `chord_tone_ratio` scored an accompaniment shifted later above the
true one (paired AUC 0.00-0.07 on the real windows' late shifts, 0.25 on the synthetic
sub-beat late shifts), and its lag curve (the chroma shifted against the vocal's pitch frames)
peaked at +0.3..+1 beat. Not the analysis: (a) no clock offset: a vocal and a chord that
change at a known instant change within a frame of it on both sides (CREPE's first new-note
frame at the instant, the chroma's crossing within 13 ms;
`test_the_chroma_changes_chord_when_the_audio_does`); (b) a variable-Q chroma (filters no
longer than 0.25 s, or ERB-wide) and a constant-Q from C2 or C3 keep the late peak; (c, d) the
HPSS time median and the smoothing are centred; neither drums, nor the accompaniment's
decay and reverb, nor the vocal's reverb, nor matching both sides' tuning moves it. (e) The
vocal: with the synthetic songs' written notes in place of CREPE the curves peak at 0, and
CREPE's voiced frames inside the notes' bodies are neutral; the late preference sits in the
37% outside them (a note's first 40 ms and last 70 ms, and 304 frames after a note's end, 291
of them on that note's pitch: 0.66 at lag 0, 0.79 at +0.5 beat); on the real stem the singer
holds a phrase's last notes, fading, over the next chord (G/Ab until 3.5 s over the B chord
from 2.7 s). These frames are quiet, so each frame is counted by the vocal's RMS amplitude,
as a listener hears the notes' bodies (decided from the curves, before the AUCs): the real
curve's peak moves from +1 to +0.17 beat (0.90 against 0.86 at 0; 0.82 at +1), the synthetic
mean's from 0.81 at +0.5 over 0.76 at 0 to 0.83 at +0.17..+0.42 over 0.81 at 0; the funk songs
still peak at +0.4..+0.5 (left open; on 32 synthetic songs the AUC against the three late
shifts is 0.39-0.70, 0.51 pooled: the preference is smaller, not gone). Paired AUC against a third-beat, half-beat (gap) and
whole-beat late shift: real 0.71, 0.71, 0.86 (frames: 0.07, 0.00, 0.00), synthetic 0.62,
0.50, 0.75 (0.25, 0.25, 0.69); the harmony claims stay at 1.00. Also tried, no better: each note (a run of one
median-filtered pitch class) on the mean chroma of its span or at its onset, only pitch held
for 100 ms, 1 s or whole-excerpt chroma pooling.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hafm_core.fit.rhythm import ANALYSIS_RATE_HZ, FRAME_RATE_HZ, HOP_SAMPLES

ACTIVE_PITCH_CLASSES = 4
MIN_ACTIVE_LEVEL = 0.1  # of the frame's strongest chroma bin
CHROMA_SMOOTHING_S = 0.25
CQT_BINS_PER_OCTAVE = 36  # librosa's chroma_cqt default: 3 bins per semitone
# Tuning step, in CQT bins (33 cents): 0.1 is 3.3 cents, below what a listener tells apart,
# and coarse enough for excerpts of one recording or one system to share a constant-Q call.
TUNING_RESOLUTION = 0.1
CQT_TAIL_S = 0.25  # zeros after each harmonic signal before the constant-Q transform
MIN_HARMONIC_SHARE = 0.25
MIN_CHROMA_PEAKINESS = 0.47
HPSS_KERNEL = 31  # median filter width, frames along time and bins along frequency (librosa's default)
PITCH_CLASS_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# Krumhansl & Kessler (1982) probe-tone ratings, tonic first.
KRUMHANSL_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KRUMHANSL_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def harmonic_chroma(stft: np.ndarray, n_samples: Sequence[int]) -> list[tuple[np.ndarray, float, float]]:
    """The `rhythm.spectrogram` [B, F, T_max] of B accompaniments zero-padded to a common
    length, and each one's own length in samples -> per accompaniment (chroma float32
    [12, T_i] in [0, 1] at `FRAME_RATE_HZ`, harmonic share, chroma peakiness).

    The harmonic part and its time-median are taken on each excerpt's own frames (a median
    window reaching into the padding would change the last 15 frames) and the smoothing
    and the peakiness on its own chroma frames, with its own tuning; the constant-Q
    transform is one call over the zero-padded harmonic signals of each tuning (building its
    filters costs about as much as transforming 10 s of audio). Each signal is followed by
    at least `CQT_TAIL_S` of zeros, alone as in a batch: librosa's octave-by-octave
    resampling changes the last frames of a signal that ends abruptly (by up to 3% of the
    peak), but not when 0.25 s of zeros follow, however many more.
    """
    import librosa
    from scipy.ndimage import uniform_filter1d

    frames = [1 + n // HOP_SAMPLES for n in n_samples]
    tail = int(round(CQT_TAIL_S * ANALYSIS_RATE_HZ))
    harmonic_samples = np.zeros((len(n_samples), max(n_samples) + tail), dtype=np.float32)  # (B, n_max + tail)
    shares, tunings = [], []
    for i, (n, t) in enumerate(zip(n_samples, frames)):
        own = stft[i, :, :t]  # (F, T_i)
        harmonic = harmonic_part(own)
        shares.append(float((np.abs(harmonic) ** 2).sum() / max(float((np.abs(own) ** 2).sum()), 1e-20)))
        # Each excerpt's own tuning, in CQT bins (librosa's default would pool one over the batch).
        tunings.append(librosa.estimate_tuning(S=np.abs(harmonic), sr=ANALYSIS_RATE_HZ, resolution=TUNING_RESOLUTION,
                                               bins_per_octave=CQT_BINS_PER_OCTAVE))
        harmonic_samples[i, :n] = librosa.istft(harmonic, hop_length=HOP_SAMPLES, length=n)
    # Constant-Q chroma of the harmonic signal: the STFT's 10.8 Hz bins cannot tell bass notes apart.
    chromas = np.empty((len(n_samples), 12, harmonic_samples.shape[-1] // HOP_SAMPLES + 1), dtype=np.float32)
    for tuning in set(tunings):
        rows = [i for i, t in enumerate(tunings) if t == tuning]
        chromas[rows] = librosa.feature.chroma_cqt(y=harmonic_samples[rows], sr=ANALYSIS_RATE_HZ,
                                                   hop_length=HOP_SAMPLES, tuning=tuning,
                                                   bins_per_octave=CQT_BINS_PER_OCTAVE)
    width = max(1, int(round(CHROMA_SMOOTHING_S * FRAME_RATE_HZ)))
    out = []
    for chroma, t, share in zip(chromas, frames, shares):
        chroma = uniform_filter1d(chroma[:, :t], width, axis=-1, mode="nearest")  # (12, T_i)
        ranked = np.sort(chroma, axis=0)
        peakiness = float((ranked[-ACTIVE_PITCH_CLASSES:].sum(axis=0) / np.maximum(ranked.sum(axis=0), 1e-12)).mean())
        out.append((chroma.astype(np.float32), share, peakiness))
    return out


def median_filter_along(x: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Running median of odd width `size` along one axis of float [...], edges reflected.

    Equal, value for value, to `scipy.ndimage.median_filter(x, size=(1, .., size, .., 1),
    mode="reflect")` (what `librosa.decompose.hpss` calls), about 10 times faster: every
    line along `axis` is padded by its own reflection and all lines are laid end to end in
    one 1-D array, on which scipy runs its 1-D running median (two heaps, O(log size) per
    sample) instead of the n-D filter's selection over the whole window at every sample.
    A batch [B, F, T] is one call.
    """
    from scipy.ndimage import median_filter

    half = size // 2
    moved = np.moveaxis(x, axis, -1)
    lines = moved.reshape(-1, moved.shape[-1])  # (R, L)
    padded = np.pad(lines, ((0, 0), (half, half)), mode="symmetric")  # scipy's "reflect"
    filtered = median_filter(padded.ravel(), size=size).reshape(padded.shape)[:, half:half + lines.shape[1]]
    return np.moveaxis(filtered.reshape(moved.shape), -1, axis)


def harmonic_part(stft: np.ndarray, kernel: int = HPSS_KERNEL) -> np.ndarray:
    """Complex STFT [..., F, T] -> its harmonic part, same shape, as `librosa.decompose.hpss`
    gives it (margin 1 on the harmonic side) but through `median_filter_along`.

    The soft mask is the Wiener mask H^2 / (H^2 + P^2) of the time-median H and the
    frequency-median P of the magnitude (Fitzgerald, 2010).
    """
    import librosa

    magnitude, phase = librosa.magphase(stft)
    along_time = median_filter_along(magnitude, kernel, axis=-1)  # steady tones
    along_frequency = median_filter_along(magnitude, kernel, axis=-2)  # broadband clicks
    mask = librosa.util.softmask(along_time, along_frequency, power=2.0, split_zeros=False)
    return (magnitude * mask) * phase


def pitch_classes(f0_hz: np.ndarray) -> np.ndarray:
    """f0 in Hz (> 0) -> int64 pitch classes 0-11 (C = 0), nearest semitone."""
    midi = 69 + 12 * np.log2(f0_hz / 440.0)
    return np.mod(np.round(midi).astype(np.int64), 12)


def chord_tone_ratio(vocal_pitch_classes: np.ndarray, vocal_times_s: np.ndarray,
                     chroma: np.ndarray, vocal_rms: np.ndarray | None = None) -> float:
    """Share of voiced vocal frames on one of the accompaniment's strongest pitch classes,
    each frame counted by the vocal's loudness (RMS amplitude) there.

    vocal_pitch_classes: int [N] of voiced frames at times vocal_times_s float [N];
    chroma: [12, T] at `FRAME_RATE_HZ`; vocal_rms: float [N], the vocal's frame RMS at those
    times (None, or all zero: every frame counts the same). Needs N >= 1.
    Loudness, because the frames that carry a note's pitch past the note (its release and
    reverb tail, a phrase end fading over the next chord) are the quiet ones, and counted
    like the note's body they made the measure prefer a later accompaniment (round 5).
    """
    columns = np.clip(np.round(vocal_times_s * FRAME_RATE_HZ).astype(int), 0, chroma.shape[1] - 1)
    frames = chroma[:, columns]  # (12, N)
    own = frames[vocal_pitch_classes, np.arange(len(columns))]  # (N,)
    stronger = (frames > own[None, :]).sum(axis=0)  # how many pitch classes beat the vocal's
    audible = own >= MIN_ACTIVE_LEVEL * frames.max(axis=0)
    hits = (stronger < ACTIVE_PITCH_CLASSES) & audible & (own > 0)  # (N,)
    if vocal_rms is None or not np.any(vocal_rms > 0):
        return float(np.mean(hits))
    return float(np.average(hits, weights=vocal_rms))


def loudness_at(times_s: np.ndarray, frame_rms: np.ndarray) -> np.ndarray:
    """The vocal's frame RMS float [T] at `FRAME_RATE_HZ`, interpolated at times_s float [N]
    (its pitch frames): the weights of `chord_tone_ratio`."""
    return np.interp(times_s, np.arange(len(frame_rms)) / FRAME_RATE_HZ, frame_rms)


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
