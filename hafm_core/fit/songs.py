"""Realistic synthetic songs for validating the fit metrics, independent of `hafm_core.synth`.

A song is a function of its parameters, so a manipulation is a *re-rendering* with one
parameter changed (the accompaniment later by a fraction of a beat, transposed, drifting in
tempo, taken from another section) while the vocal stays the same.

What makes them closer to real recordings than `hafm_core.synth`:
- a sung melody with metrical structure, as sung melodies have it: a note starts on a
  position with a probability that follows the metrical hierarchy (`ONSET_PROBABILITY`:
  downbeat, then beat 3, then beats 2 and 4, then the off-beat eighths), notes on stronger
  positions are louder (`ACCENT`), a phrase starts on a downbeat, and there is still
  syncopation (notes between the beats); legato glides (portamento) into about a third of
  the notes, vibrato whose rate and depth vary per note, a formant filter (vowel colour)
  and breath noise, phrases with rests;
- loose timing: every vocal note starts up to +-`timing_jitter_s` off the grid;
- `STYLES`: drum pattern, comping rhythm and bass figure of pop, ballad, funk and shuffle;
- a room: every stem is convolved with an exponentially decaying noise tail (reverb).

Validation data, changed in round 2 of issue 16: the first melodies placed notes on every
eighth position with equal probability (0.6) and equal loudness. Sung melodies do not: note
onsets are most frequent, and notes longest and most stressed, on the strong positions of
the metre (Palmer & Krumhansl, 1990, "Mental representations for musical meter"; Huron,
2006, "Sweet Anticipation", ch. 10, onset distributions in Western melodies). Without that
accent a melody on even eighths has no beat-level periodicity, and a half-beat shift of the
accompaniment cannot be told from the truth by any alignment measure, nor by a listener.
The probabilities below are round numbers in that order, set once, not fitted to a metric.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
PROGRESSIONS = ((0, 4, 5, 3), (0, 5, 3, 4), (5, 3, 0, 4), (0, 3, 4, 4), (1, 4, 0, 0))

# Per style, positions in beats within a bar: kick, snare, hats, chord stabs, bass notes;
# swing delays the off-beat eighths (0.5 -> 0.5 + swing).
STYLES = {
    "pop": dict(kick=(0, 2.5), snare=(1, 3), hats=tuple(np.arange(0, 4, 0.5)), comp=(0, 1.5, 2, 3.5),
                bass=(0, 1.5, 2, 3), swing=0.0, tempo=(96, 128)),
    "ballad": dict(kick=(0,), snare=(2,), hats=(0, 1, 2, 3), comp=(0, 2), bass=(0, 2), swing=0.0,
                   tempo=(66, 84)),
    "funk": dict(kick=(0, 0.75, 2.5), snare=(1, 3, 3.75), hats=tuple(np.arange(0, 4, 0.25)),
                 comp=(0.5, 1.25, 2.5, 3.25), bass=(0, 0.75, 1.5, 2.5, 3), swing=0.0, tempo=(92, 112)),
    "shuffle": dict(kick=(0, 2), snare=(1, 3), hats=tuple(np.arange(0, 4, 0.5)), comp=(0, 1.5, 2, 3.5),
                    bass=(0, 1, 2, 3), swing=0.17, tempo=(100, 124)),
}


# The sung melody's metre (see the module docstring): probability that a note starts on a
# position of the bar (beats; off-beat eighths take the style's syncopation) and its relative
# loudness there.
ONSET_PROBABILITY = {0: 0.9, 2: 0.8, 1: 0.65, 3: 0.65}
ACCENT = {0: 1.0, 2: 0.9, 1: 0.8, 3: 0.8, 0.5: 0.65}


@dataclass(frozen=True)
class Song:
    """Everything that defines a rendering; manipulations are `replace(song, ...)` of one field."""

    seed: int
    style: str = "pop"
    tempo_bpm: float = 110.0
    key_pc: int = 0
    mode: str = "major"
    duration_s: float = 6.0
    sample_rate_hz: int = 22_050
    timing_jitter_s: float = 0.025
    # Accompaniment only (the vocal never moves):
    offset_beats: float = 0.0  # > 0: the accompaniment is later by this many beats
    transpose: int = 0  # semitones
    tempo_drift: float = 0.0  # relative tempo change per second of the accompaniment
    section_bars: int = 0  # play the chords of another section, this many bars later


def random_song(seed: int, style: str, duration_s: float = 6.0, sample_rate_hz: int = 22_050) -> Song:
    rng = np.random.default_rng(seed)
    low, high = STYLES[style]["tempo"]
    return Song(seed, style, float(rng.uniform(low, high)), int(rng.integers(0, 12)),
                "major" if rng.random() < 0.6 else "minor", duration_s, sample_rate_hz)


def _midi_hz(midi: np.ndarray | float) -> np.ndarray | float:
    return 440.0 * 2.0 ** ((np.asarray(midi) - 69) / 12)


def _tone(freq_hz: np.ndarray, rate: int, partials: int, tilt: float, phase_rng=None) -> np.ndarray:
    phase = 2 * np.pi * np.cumsum(freq_hz) / rate
    out = np.zeros_like(phase)
    for k in range(1, partials + 1):
        offset = phase_rng.uniform(0, 2 * np.pi) if phase_rng is not None else 0.0
        out += np.where(k * freq_hz < rate / 2, k ** -tilt, 0.0) * np.sin(k * phase + offset)
    return out


def _adsr(n: int, rate: int, attack_s: float, release_s: float, decay_per_s: float = 0.0) -> np.ndarray:
    t = np.arange(n) / rate
    env = np.minimum(1.0, t / max(attack_s, 1e-4)) * np.exp(-decay_per_s * t)
    tail = max(1, min(n, int(release_s * rate)))
    env[n - tail:] *= np.linspace(1.0, 0.0, tail)
    return env


def _add(track: np.ndarray, signal: np.ndarray, start: int) -> None:
    lo, hi = max(0, start), min(len(track), start + len(signal))
    if hi > lo:
        track[lo:hi] += signal[lo - start:hi - start]


def _reverb(signal: np.ndarray, rate: int, rt60_s: float, wet: float, rng) -> np.ndarray:
    from scipy.signal import fftconvolve

    n = int(rt60_s * rate)
    tail = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)  # -60 dB at rt60
    tail /= np.sqrt(np.sum(tail**2))
    return (1 - wet) * signal + wet * fftconvolve(signal, tail)[:len(signal)]


class _Clock:
    """Beat position -> time in seconds of the accompaniment, with drift and offset."""

    def __init__(self, song: Song, accompaniment: bool):
        self.beat_s = 60.0 / song.tempo_bpm
        self.offset_s = song.offset_beats * self.beat_s if accompaniment else 0.0
        self.drift = song.tempo_drift if accompaniment else 0.0

    def time_s(self, beat: float) -> float:
        t = beat * self.beat_s
        if self.drift:  # tempo factor (1 + drift * t): t(beat) solves the integral of the tempo
            t = np.log1p(self.drift * t) / self.drift
        return t + self.offset_s


def _chords(song: Song, n_bars: int) -> list[tuple[int, ...]]:
    rng = np.random.default_rng(song.seed + 1)
    scale = MAJOR if song.mode == "major" else MINOR
    progression = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
    second = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
    bars = []
    for bar in range(n_bars):
        degree = (progression if (bar // 4) % 2 == 0 else second)[bar % 4]
        bars.append(tuple((song.key_pc + scale[(degree + d) % 7]) % 12 for d in (0, 2, 4)))
    return bars


def render(song: Song) -> dict[str, np.ndarray]:
    """Stems float32 [n] at `song.sample_rate_hz`: vocals, drums, bass, other (peak < 1)."""
    rate, n = song.sample_rate_hz, int(round(song.duration_s * song.sample_rate_hz))
    style = STYLES[song.style]
    beat_s = 60.0 / song.tempo_bpm
    lead_bars = 2  # rendered from two bars before 0 so that a late accompaniment has no gap
    n_bars = int(np.ceil(song.duration_s / (4 * beat_s) * 1.3)) + 2 * lead_bars + song.section_bars
    chords = _chords(song, n_bars + 8)
    stems = {name: np.zeros(n) for name in ("vocals", "drums", "bass", "other")}
    rng = np.random.default_rng(song.seed + 2)  # accompaniment noise, independent of manipulations
    acc = _Clock(song, accompaniment=True)

    def swing(position: float) -> float:
        return position + style["swing"] if position % 1 == 0.5 else position

    for bar in range(-lead_bars, n_bars - lead_bars):
        triad = chords[bar + lead_bars + song.section_bars]
        root = triad[0] + song.transpose
        for pos in style["kick"]:
            t = acc.time_s(4 * bar + swing(pos))
            m = int(0.3 * rate)
            kt = np.arange(m) / rate
            _add(stems["drums"], 0.7 * np.sin(2 * np.pi * (45 * kt + 8 * (1 - np.exp(-40 * kt)))) * np.exp(-12 * kt),
                 int(t * rate))
        for pos in style["snare"]:
            t = acc.time_s(4 * bar + swing(pos))
            m = int(0.2 * rate)
            st = np.arange(m) / rate
            body = 0.5 * rng.standard_normal(m) + 0.3 * np.sin(2 * np.pi * 185 * st)
            _add(stems["drums"], 0.4 * body * np.exp(-20 * st), int(t * rate))
        for pos in style["hats"]:
            t = acc.time_s(4 * bar + swing(pos))
            m = int(0.05 * rate)
            hat = np.diff(rng.standard_normal(m + 1)) * np.exp(-np.arange(m) / rate * 70)
            _add(stems["drums"], (0.08 if pos % 1 else 0.11) * hat, int(t * rate))
        for pos in style["bass"]:
            t = acc.time_s(4 * bar + swing(pos))
            m = int(0.45 * beat_s * rate * (2 if song.style == "ballad" else 1))
            midi = 36 + (root % 12) + (12 if pos % 2 == 1.5 else 0)
            _add(stems["bass"], 0.3 * _tone(np.full(m, _midi_hz(midi)), rate, 8, 1.4)
                 * _adsr(m, rate, 0.005, 0.05, 3.0), int(t * rate))
        comp = style["comp"]
        for i, pos in enumerate(comp):
            t = acc.time_s(4 * bar + swing(pos))
            end = comp[i + 1] if i + 1 < len(comp) else 4.0
            m = int(min(end - pos, 1.5) * beat_s * rate * 0.9)
            voicing = [60 + (pc + song.transpose) % 12 for pc in triad] + [48 + root % 12]
            chord = sum(_tone(np.full(m, _midi_hz(v)), rate, 10, 1.1, rng) for v in voicing)
            _add(stems["other"], 0.06 * chord * _adsr(m, rate, 0.01, 0.08, 1.5), int(t * rate))

    _render_vocal(song, chords, lead_bars, stems["vocals"])
    room = np.random.default_rng(song.seed + 3)
    out = {}
    for name, stem in stems.items():
        wet = _reverb(stem, rate, 0.9 if song.style == "ballad" else 0.5, 0.25, room)
        out[name] = np.clip(wet, -0.99, 0.99).astype(np.float32)
    return out


def _render_vocal(song: Song, chords, lead_bars: int, track: np.ndarray) -> None:
    """Phrases of three sung bars, then a rest bar; onsets and loudness follow the metre
    (`ONSET_PROBABILITY`, `ACCENT`); notes mostly chord tones, some passing tones."""
    rng = np.random.default_rng(song.seed + 4)
    rate = song.sample_rate_hz
    clock = _Clock(song, accompaniment=False)
    scale = MAJOR if song.mode == "major" else MINOR
    grid = (0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5) if song.style != "ballad" else (0, 1, 1.5, 2, 3)
    syncopation = 0.45 if song.style == "funk" else 0.3  # off-beat onset probability
    previous_midi = 64.0 + song.key_pc % 12
    bar_s = 4 * clock.beat_s
    for bar in range(int(np.ceil(song.duration_s / bar_s)) + 1):
        if bar % 4 == 3:  # a rest bar after three sung bars
            continue
        triad = chords[bar + lead_bars]
        # A phrase (the bar after a rest, or the first) starts on the downbeat.
        phrase_start = bar % 4 == 0
        positions = [p for p in grid
                     if (p == 0 and phrase_start) or rng.random() < ONSET_PROBABILITY.get(p, syncopation)]
        for i, pos in enumerate(positions):
            end = positions[i + 1] if i + 1 < len(positions) else 4.0
            start_s = clock.time_s(4 * bar + pos) + rng.uniform(-1, 1) * song.timing_jitter_s
            length_s = (end - pos) * clock.beat_s * rng.uniform(0.7, 0.95)
            if start_s >= song.duration_s or length_s < 0.08:
                continue
            chord_tone = rng.random() < 0.8
            pc = triad[int(rng.integers(3))] if chord_tone else (song.key_pc + scale[int(rng.integers(7))]) % 12
            midi = 60 + pc + (12 if pc < 5 and rng.random() < 0.5 else 0)
            m = int(length_s * rate)
            t = np.arange(m) / rate
            glide = rng.random() < 0.35
            contour = np.full(m, float(midi))
            if glide:  # portamento from the previous note over 60-120 ms
                g = min(m, int(rng.uniform(0.06, 0.12) * rate))
                contour[:g] = np.linspace(previous_midi, midi, g)
            depth = rng.uniform(0.2, 0.5) * np.clip((t - 0.12) / 0.2, 0, 1)
            contour = contour + depth * np.sin(2 * np.pi * rng.uniform(4.8, 6.5) * t + rng.uniform(0, 6.3))
            voice = _tone(_midi_hz(contour), rate, 16, 1.2)
            voice = _formant(voice, rate, rng) + 0.015 * rng.standard_normal(m)
            loudness = 0.25 * ACCENT.get(pos, ACCENT[0.5])
            _add(track, loudness * voice * _adsr(m, rate, 0.04 if glide else 0.02, 0.07), int(start_s * rate))
            previous_midi = float(midi)


def _formant(voice: np.ndarray, rate: int, rng) -> np.ndarray:
    """A vowel colour: two resonances (first and second formant) added to the source."""
    from scipy.signal import butter, sosfilt

    out = 0.3 * voice
    for centre in (rng.uniform(500, 800), rng.uniform(1100, 2200)):
        sos = butter(2, [centre * 0.8, min(centre * 1.25, rate / 2 - 1)], btype="bandpass", fs=rate, output="sos")
        out += sosfilt(sos, voice)
    return out


def manipulated(song: Song, **changes) -> Song:
    return replace(song, **changes)
