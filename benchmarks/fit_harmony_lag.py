"""chord_tone_ratio of the true pairs against the accompaniment's lag (round 5 of issue 16).

    python benchmarks/fit_harmony_lag.py

The accompaniment's harmonic chroma (`hafm_core.fit.harmony.harmonic_chroma`) is shifted
against the vocal's CREPE frames by -1..+1 beat in 1/12-beat steps (> 0: accompaniment
later) and `chord_tone_ratio` is taken at each lag, each voiced frame counted once ("frames",
rounds 1-4) and by the vocal's loudness ("loudness", round 5 on): on the 7 windows of 3 s of the stempeg
stem (mean; chroma of the whole stem, so a shift reads real audio) and on the 8 synthetic
songs of `benchmarks/fit_validation.py` (one beat left out at each end). The metric prefers
a later accompaniment where the curve peaks at a positive lag. Findings:
benchmarks/results/fit_validation_cpu.txt, round 5.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RATE_HZ = 22_050
LAGS_BEATS = np.arange(-12, 13) / 12


def lag_curve(vocal: np.ndarray, accompaniment: np.ndarray, model, beat_s: float,
              spans_s: list[tuple[float, float]]) -> dict[str, np.ndarray]:
    """{"frames", "loudness"}: float64 [len(LAGS_BEATS)], mean chord_tone_ratio over the spans at each lag."""
    from hafm_core.fit import harmony, rhythm
    from hafm_core.fit.excerpt import DEFAULT_CONFIG as CONFIG
    from hafm_core.fit.vocal import analyse_vocals

    pitch = analyse_vocals([vocal], [RATE_HZ], model, CONFIG.pitch_hop_s)[0]
    chroma = harmony.harmonic_chroma(rhythm.spectrogram(accompaniment[None]), [len(accompaniment)])[0][0]
    voiced = pitch.periodicity >= CONFIG.voicing_threshold
    times_s = np.flatnonzero(voiced) * CONFIG.pitch_hop_s
    classes = harmony.pitch_classes(pitch.f0_hz[voiced])
    loudness = harmony.loudness_at(times_s, pitch.rms)
    curves = {"frames": [], "loudness": []}
    for start_s, end_s in spans_s:
        keep = (times_s >= start_s) & (times_s < end_s)
        for name, rms in (("frames", None), ("loudness", loudness[keep])):
            curves[name].append([harmony.chord_tone_ratio(classes[keep], times_s[keep] - lag * beat_s, chroma, rms)
                                 for lag in LAGS_BEATS])
    return {name: np.mean(rows, axis=0) for name, rows in curves.items()}


def row(name: str, curve: np.ndarray) -> str:
    return f"{name:<26}" + " ".join(f"{x:5.2f}" for x in curve) + f"   peak {LAGS_BEATS[np.argmax(curve)]:+.2f}"


def main() -> int:
    import stempeg

    from hafm_core.audio import read_stems
    from hafm_core.crepe import CrepeTiny
    from hafm_core.fit.songs import random_song, render

    model = CrepeTiny.load()
    print(f"{'lag (beats)':<26}" + " ".join(f"{lag:+5.2f}" for lag in LAGS_BEATS))
    stems, _ = read_stems(stempeg.example_stem_path(), sample_rate_hz=RATE_HZ)
    accompaniment = stems["drums"] + stems["bass"] + stems["other"]
    from hafm_core.fit.validation import REAL_WINDOW_STARTS_S as starts_s

    real = lag_curve(stems["vocals"], accompaniment, model, 60 / 117.0, [(s, s + 3.0) for s in starts_s])
    for name, curve in real.items():
        print(row(f"real 7 windows {name}", curve))
    curves = {"frames": [], "loudness": []}
    for k, seed in enumerate(range(1000, 1008)):
        song = random_song(seed, ("pop", "ballad", "funk", "shuffle")[k % 4], 6.0, RATE_HZ)
        song_stems = render(song)
        beat_s = 60.0 / song.tempo_bpm
        found = lag_curve(song_stems["vocals"], song_stems["drums"] + song_stems["bass"] + song_stems["other"],
                          model, beat_s, [(beat_s, song.duration_s - beat_s)])
        for name, curve in found.items():
            curves[name].append(curve)
            print(row(f"{song.style}:{seed} {name}", curve))
    for name, rows in curves.items():
        print(row(f"synthetic {name}", np.mean(rows, axis=0)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
