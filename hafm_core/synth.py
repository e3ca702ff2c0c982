"""Deterministic synthetic multitracks: a sung-like vocal over drums, bass and chords.

All four stems share one tempo and key, and the accompaniment follows the vocal: each bar's
chord is chosen so that the melody sung over it is made of its chord tones. Tests and the
demo use these tracks (with the metadata) to check that tokenizers, the model and the fit
metrics see real musical structure, without any download.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

STEM_NAMES = ("vocals", "drums", "bass", "other")
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)
# Diatonic triads as scale-degree indices (I, ii, iii, IV, V, vi).
_PROGRESSION_DEGREES = (0, 3, 4, 5, 1, 2)


@dataclass(frozen=True)
class Note:
    start_s: float
    end_s: float
    midi: int


@dataclass(frozen=True)
class Chord:
    start_s: float
    end_s: float
    root_pc: int  # pitch class 0-11 (C=0)
    pitch_classes: tuple[int, ...]


@dataclass
class Multitrack:
    """Stems: float32 [n_samples] mono at `sample_rate_hz`, peak below 1."""

    name: str
    sample_rate_hz: int
    stems: dict[str, np.ndarray]
    tempo_bpm: float
    key_pc: int
    mode: str  # "major" or "minor"
    beat_times_s: np.ndarray
    chords: list[Chord] = field(default_factory=list)
    vocal_notes: list[Note] = field(default_factory=list)

    @property
    def accompaniment(self) -> np.ndarray:
        return self.stems["drums"] + self.stems["bass"] + self.stems["other"]

    @property
    def mixture(self) -> np.ndarray:
        return self.accompaniment + self.stems["vocals"]

    @property
    def duration_s(self) -> float:
        return len(self.stems["vocals"]) / self.sample_rate_hz


def midi_to_hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69) / 12)


def _envelope(n: int, sample_rate_hz: int, attack_s: float, release_s: float) -> np.ndarray:
    env = np.ones(n, dtype=np.float64)
    a = min(n, max(1, int(attack_s * sample_rate_hz)))
    r = min(n - a, max(1, int(release_s * sample_rate_hz)))
    env[:a] = np.linspace(0.0, 1.0, a)
    if r > 0:
        env[n - r:] = np.linspace(1.0, 0.0, r)
    return env


def _harmonic_tone(freq_hz: np.ndarray, sample_rate_hz: int, n_harmonics: int, tilt: float) -> np.ndarray:
    """Sum of harmonics of a (possibly varying) fundamental, amplitudes ~ 1/k**tilt."""
    phase = 2 * np.pi * np.cumsum(freq_hz) / sample_rate_hz
    out = np.zeros_like(phase)
    nyquist = sample_rate_hz / 2
    for k in range(1, n_harmonics + 1):
        amplitude = np.where(k * freq_hz < nyquist, 1.0 / k**tilt, 0.0)
        out += amplitude * np.sin(k * phase)
    return out


def _place(track: np.ndarray, signal: np.ndarray, start: int) -> None:
    end = min(len(track), start + len(signal))
    if end > start:
        track[start:end] += signal[: end - start]


def synthesize_multitrack(
    seed: int,
    duration_s: float = 12.0,
    sample_rate_hz: int = 44_100,
    tempo_bpm: float | None = None,
    key_pc: int | None = None,
    mode: str | None = None,
) -> Multitrack:
    """A seeded 4-stem track; the same arguments always give the same samples."""
    rng = np.random.default_rng(seed)
    tempo_bpm = float(tempo_bpm if tempo_bpm is not None else rng.integers(84, 132))
    key_pc = int(key_pc if key_pc is not None else rng.integers(0, 12))
    mode = mode or ("major" if rng.random() < 0.6 else "minor")
    scale = MAJOR_SCALE if mode == "major" else MINOR_SCALE
    n = int(round(duration_s * sample_rate_hz))
    beat_s = 60.0 / tempo_bpm
    bar_s = 4 * beat_s
    n_bars = int(np.ceil(duration_s / bar_s))
    beat_times_s = np.arange(0.0, duration_s, beat_s)

    stems = {name: np.zeros(n, dtype=np.float64) for name in STEM_NAMES}
    chords: list[Chord] = []
    notes: list[Note] = []

    for bar in range(n_bars):
        degree = int(_PROGRESSION_DEGREES[rng.integers(0, len(_PROGRESSION_DEGREES))]) if bar else 0
        triad_degrees = (degree, degree + 2, degree + 4)
        triad = tuple((key_pc + scale[d % 7]) % 12 for d in triad_degrees)
        bar_start = bar * bar_s
        chords.append(Chord(bar_start, min(duration_s, bar_start + bar_s), triad[0], triad))

        # Bass: chord root on every beat, octave 2.
        for beat in range(4):
            start_s = bar_start + beat * beat_s
            midi = 36 + triad[0] if triad[0] < 8 else 24 + triad[0]
            length = int(0.9 * beat_s * sample_rate_hz)
            tone = _harmonic_tone(np.full(length, midi_to_hz(midi)), sample_rate_hz, 6, 1.5)
            _place(stems["bass"], 0.35 * tone * _envelope(length, sample_rate_hz, 0.005, 0.08),
                    int(start_s * sample_rate_hz))

        # Other: sustained triad pad (octave 4) with a soft attack.
        length = int(bar_s * sample_rate_hz)
        pad = sum(
            _harmonic_tone(np.full(length, midi_to_hz(60 + pc)), sample_rate_hz, 8, 1.2)
            for pc in triad
        )
        _place(stems["other"], 0.08 * pad * _envelope(length, sample_rate_hz, 0.05, 0.1),
                int(bar_start * sample_rate_hz))

        # Vocal: phrases of chord tones (octave 4-5), resting on the last beat of odd bars.
        beats_sung = 3 if bar % 2 else 4
        for beat in range(beats_sung):
            for half in range(2 if rng.random() < 0.4 else 1):
                start_s = bar_start + (beat + 0.5 * half) * beat_s
                dur_s = beat_s * (0.5 if half or rng.random() < 0.4 else 0.95)
                midi = 60 + int(triad[rng.integers(0, 3)]) + (12 if rng.random() < 0.3 else 0)
                if start_s >= duration_s:
                    continue
                notes.append(Note(start_s, min(duration_s, start_s + dur_s), midi))
                if half == 0 and dur_s < beat_s * 0.9:
                    break

    # Render the vocal: vibrato (5.5 Hz, +-30 cents after a short onset), formant tilt, breath.
    for note in notes:
        start = int(note.start_s * sample_rate_hz)
        length = int((note.end_s - note.start_s) * sample_rate_hz)
        if length <= 0:
            continue
        local_t = np.arange(length) / sample_rate_hz
        vibrato_depth = 0.3 * np.clip(local_t / 0.15, 0.0, 1.0)
        cents = 100 * vibrato_depth * np.sin(2 * np.pi * 5.5 * local_t + rng.uniform(0, 2 * np.pi))
        freq = midi_to_hz(note.midi) * 2.0 ** (cents / 1200)
        voice = _harmonic_tone(freq, sample_rate_hz, 12, 1.8)
        voice += 0.02 * rng.standard_normal(length)
        _place(stems["vocals"], 0.3 * voice * _envelope(length, sample_rate_hz, 0.03, 0.06), start)

    # Drums: kick on 1 and 3, snare on 2 and 4, closed hi-hat on eighths.
    for i, beat_time in enumerate(beat_times_s):
        start = int(beat_time * sample_rate_hz)
        if i % 2 == 0:
            length = int(0.25 * sample_rate_hz)
            kt = np.arange(length) / sample_rate_hz
            kick = np.sin(2 * np.pi * (50 * kt + 60 * (1 - np.exp(-kt * 30)) / 30)) * np.exp(-kt * 14)
            _place(stems["drums"], 0.6 * kick, start)
        else:
            length = int(0.18 * sample_rate_hz)
            st = np.arange(length) / sample_rate_hz
            snare = (0.6 * rng.standard_normal(length) + 0.4 * np.sin(2 * np.pi * 190 * st)) * np.exp(-st * 22)
            _place(stems["drums"], 0.35 * snare, start)
        for offset in (0.0, 0.5):
            hat_start = int((beat_time + offset * beat_s) * sample_rate_hz)
            length = int(0.04 * sample_rate_hz)
            hat = np.diff(rng.standard_normal(length + 1)) * np.exp(-np.arange(length) / sample_rate_hz * 90)
            _place(stems["drums"], 0.06 * hat, hat_start)

    return Multitrack(
        name=f"synthetic-{seed:04d}",
        sample_rate_hz=sample_rate_hz,
        stems={name: np.clip(stem, -0.99, 0.99).astype(np.float32) for name, stem in stems.items()},
        tempo_bpm=tempo_bpm,
        key_pc=key_pc,
        mode=mode,
        beat_times_s=beat_times_s,
        chords=chords,
        vocal_notes=notes,
    )
