"""Validation of the fit metrics: manipulations a listener hears as wrong, paired AUC per metric.

Sources of (vocal, true accompaniment) pairs:
- `real_windows`: windows of the real MUSDB18 stem that ships with stempeg (6 s of a
  song; its stems vocals, drums, bass, other); manipulations are applied to the audio
  (`window_cases`, shared with whole MUSDB18 tracks: `hafm_core.fit.track_windows`);
- `synthetic_songs`: `hafm_core.fit.songs` in several styles; manipulations re-render the
  accompaniment with one parameter changed, the vocal untouched.

Each manipulation keeps the vocal and replaces the accompaniment (`MANIPULATIONS`). For a
metric and a manipulation, the paired AUC is the share of excerpts whose true accompaniment
scores higher than its manipulated one (ties count one half): 1 = always told apart, 0.5 =
chance. `CLAIMS` lists which manipulations each metric is meant to catch (AUC >= 0.8); the
others it should not punish (a full-beat shift keeps the beat; a transposition keeps the rhythm).
Windows of one song are one cluster: `song_auc_interval` gives the AUC a 95% interval from a
bootstrap over songs (`song_bootstrap`), none for a single song.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from hafm_core.fit.excerpt import Excerpt, FitResult

MANIPULATIONS = {
    "third_beat_late": "accompaniment a third of a beat later, the song continuing before (no gap)",
    "half_beat_late_gap": "accompaniment half a beat later, silence in the gap",
    "half_beat_early": "accompaniment half a beat earlier (no gap)",
    "beat_late": "accompaniment one beat later (no gap): the beat grid is kept",
    "beat_late_gap": "accompaniment one beat later, silence in the gap",
    "tempo_drift": "accompaniment speeds up (8% faster over the excerpt; aligned at its start)",
    "transpose_semitone": "accompaniment a semitone up",
    "transpose_tritone": "accompaniment six semitones up",
    "other_section": "accompaniment of another part of the song (same key, tempo)",
    "reversed": "accompaniment played backwards",
    "pink_noise": "pink noise at the accompaniment's RMS",
    "drums_only": "the drum stem alone",
    "no_drums": "bass and other stems, without drums",
}

RHYTHM_CAUGHT = ("third_beat_late", "half_beat_late_gap", "half_beat_early", "tempo_drift", "reversed",
                 "pink_noise")
HARMONY_CAUGHT = ("transpose_semitone", "transpose_tritone", "pink_noise", "drums_only")
CLAIMS = {
    "rhythm_score": RHYTHM_CAUGHT,
    "harmony_score": HARMONY_CAUGHT,
    "fit_score": RHYTHM_CAUGHT + HARMONY_CAUGHT,
}
NOT_PUNISHED = {"rhythm_score": ("transpose_semitone", "transpose_tritone"),
                "harmony_score": ("third_beat_late", "beat_late")}

# Where the 3 s windows of the stempeg stem start (seconds): each leaves a beat of audio around it.
REAL_WINDOW_STARTS_S = (0.6, 0.9, 1.2, 1.5, 1.8, 2.1, 2.4)


@dataclass(frozen=True)
class Case:
    """One excerpt of the validation: a source window and what was done to its accompaniment."""

    source: str  # "real:<start_s>" or "synthetic:<style>:<seed>"
    manipulation: str  # "true" or a key of MANIPULATIONS
    excerpt: Excerpt | None  # None once scored and dropped (`without_audio`)
    song: str = ""  # the recording the window is cut from ("" = the source is its own song)

    def without_audio(self) -> Case:
        """The same labels without the audio: what a long validation keeps once a case is scored."""
        return replace(self, excerpt=None)

    @property
    def cluster(self) -> str:
        """The song: windows of one song are one cluster for the song bootstrap."""
        return self.song or self.source


def pink_noise(n: int, rms: float, seed: int) -> np.ndarray:
    """float32 [n], 1/f power spectrum, at the given RMS."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    noise = np.fft.irfft(spectrum, n)
    return (noise * rms / np.sqrt(np.mean(noise**2))).astype(np.float32)


def rms(x: np.ndarray) -> float:
    """Root mean square of float [n], in float64."""
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def _gap(samples: np.ndarray, gap_s: float, rate: int) -> np.ndarray:
    out = samples.copy()
    out[:int(round(gap_s * rate))] = 0
    return out


def real_windows(stems: dict[str, np.ndarray], rate: int, tempo_bpm: float, window_s: float = 3.0,
                 starts_s: Sequence[float] = REAL_WINDOW_STARTS_S, song: str = "real") -> list[Case]:
    """Cases from windows of a real multitrack (stems float32 [n] at `rate`); the song's
    tempo sets the shifts. Windows must leave one beat of audio before and after."""
    import librosa

    acc_full = stems["drums"] + stems["bass"] + stems["other"]
    beat_s = 60.0 / tempo_bpm
    n = int(round(window_s * rate))
    semitone = librosa.effects.pitch_shift(acc_full, sr=rate, n_steps=1)
    tritone = librosa.effects.pitch_shift(acc_full, sr=rate, n_steps=6)
    cases = []
    for start_s in starts_s:
        i = int(round(start_s * rate))
        if i - round(beat_s * rate) < 0 or i + n + round(beat_s * rate) > len(acc_full):
            raise ValueError(f"window at {start_s} s leaves no beat of audio around it")
        other_i = 0 if start_s >= len(acc_full) / rate / 2 - window_s / 2 else len(acc_full) - n
        cases += window_cases(stems, rate, i, n, beat_s, semitone, tritone, acc_full[other_i:other_i + n],
                              source=f"real:{start_s:g}", song=song, seed=i)
    return cases


def window_cases(stems: dict[str, np.ndarray], rate: int, start: int, n: int, beat_s: float,
                 semitone: np.ndarray, tritone: np.ndarray, other_section: np.ndarray, source: str,
                 song: str, seed: int) -> list[Case]:
    """The true and manipulated cases (`MANIPULATIONS`) of one window of a real multitrack.

    stems: {vocals, drums, bass, other} float32 [m] at `rate` (a whole track or a region of
    it); the window is samples [start, start + n) and needs one beat of audio on each side;
    the tempo drift stretches the accompaniment from `start` to the end of `stems`, so they
    must hold 1.08 n samples from `start`. semitone, tritone: the accompaniment of the same
    samples pitch-shifted (float32 [m]); other_section: float32 [n] from another part of the
    song; seed: the pink noise's.
    """
    import librosa

    acc_full = stems["drums"] + stems["bass"] + stems["other"]
    i = start

    def at(offset_s: float, full=acc_full) -> np.ndarray:
        j = i - int(round(offset_s * rate))  # later accompaniment = earlier content
        return full[j:j + n]

    true = at(0)
    stretched = librosa.effects.time_stretch(acc_full[i:], rate=1.08)[:n]
    manipulated = {
        "true": true,
        "third_beat_late": at(beat_s / 3),
        "half_beat_late_gap": _gap(at(beat_s / 2), beat_s / 2, rate),
        "half_beat_early": at(-beat_s / 2),
        "beat_late": at(beat_s),
        "beat_late_gap": _gap(at(beat_s), beat_s, rate),
        "tempo_drift": np.pad(stretched, (0, n - len(stretched))),
        "transpose_semitone": at(0, semitone),
        "transpose_tritone": at(0, tritone),
        "other_section": other_section,
        "reversed": true[::-1].copy(),
        "pink_noise": pink_noise(n, rms(true), seed=seed),
        "drums_only": stems["drums"][i:i + n],
        "no_drums": (stems["bass"] + stems["other"])[i:i + n],
    }
    vocal = stems["vocals"][i:i + n]
    return [Case(source, kind, Excerpt(f"{source}/{kind}", vocal, np.asarray(acc, np.float32), rate), song)
            for kind, acc in manipulated.items()]


def synthetic_songs(seeds: Iterable[int], styles: Sequence[str] = ("pop", "ballad", "funk", "shuffle"),
                    duration_s: float = 6.0, rate: int = 22_050) -> list[Case]:
    """Cases from `hafm_core.fit.songs`, one song per (seed, style in turn)."""
    from hafm_core.fit.songs import manipulated as changed
    from hafm_core.fit.songs import random_song, render

    cases = []
    for k, seed in enumerate(seeds):
        style = styles[k % len(styles)]
        song = random_song(seed, style, duration_s, rate)
        stems = render(song)
        vocal = stems["vocals"]

        def acc(song=song, **changes) -> np.ndarray:
            s = render(changed(song, **changes))
            return s["drums"] + s["bass"] + s["other"]

        beat_s = 60.0 / song.tempo_bpm
        true = stems["drums"] + stems["bass"] + stems["other"]
        accompaniments = {
            "true": true,
            "third_beat_late": acc(offset_beats=1 / 3),
            "half_beat_late_gap": _gap(acc(offset_beats=0.5), beat_s / 2, rate),
            "half_beat_early": acc(offset_beats=-0.5),
            "beat_late": acc(offset_beats=1.0),
            "beat_late_gap": _gap(acc(offset_beats=1.0), beat_s, rate),
            "tempo_drift": acc(tempo_drift=0.08 / duration_s),
            "transpose_semitone": acc(transpose=1),
            "transpose_tritone": acc(transpose=6),
            "other_section": acc(section_bars=4),
            "reversed": true[::-1].copy(),
            "pink_noise": pink_noise(len(true), rms(true), seed=seed),
            "drums_only": stems["drums"],
            "no_drums": stems["bass"] + stems["other"],
        }
        source = f"synthetic:{style}:{seed}"
        cases += [Case(source, kind, Excerpt(f"{source}/{kind}", vocal, np.asarray(a, np.float32), rate))
                  for kind, a in accompaniments.items()]
    return cases


def _wins(true_scores: Sequence[float], other_scores: Sequence[float]) -> np.ndarray:
    """float64 [w]: 1 where the truth scores higher, 0 where lower, 1/2 for a tie."""
    t = np.asarray(true_scores, dtype=np.float64)
    o = np.asarray(other_scores, dtype=np.float64)
    return np.where(t > o, 1.0, np.where(t < o, 0.0, 0.5))


def paired_auc(true_scores: np.ndarray, other_scores: np.ndarray) -> float:
    """Share of pairs (same source) where the truth scores higher; ties and failures count 1/2."""
    return float(_wins(true_scores, other_scores).mean())


def score_of(result: FitResult, metric: str) -> float:
    """A metric's value; a non-ok excerpt counts as the worst score (0), as in `summarize`."""
    value = getattr(result, metric) if result.ok else None
    return 0.0 if value is None else float(value)


def _per_claim(cases: Sequence[Case], results: Sequence[FitResult], metrics: Sequence[str], measure) -> dict:
    """{metric: {manipulation: measure(true scores, manipulated scores, songs)}}, over the
    sources that have both cases (manipulations no source has are left out)."""
    by_key = {(c.source, c.manipulation): r for c, r in zip(cases, results)}
    song = {c.source: c.cluster for c in cases}
    table: dict[str, dict] = {}
    for metric in metrics:
        row = {}
        for kind in MANIPULATIONS:
            sources = sorted(s for s in song if (s, kind) in by_key and (s, "true") in by_key)
            if sources:
                row[kind] = measure([score_of(by_key[s, "true"], metric) for s in sources],
                                    [score_of(by_key[s, kind], metric) for s in sources], [song[s] for s in sources])
        table[metric] = row
    return table


def auc_table(cases: Sequence[Case], results: Sequence[FitResult], metrics: Sequence[str]) -> dict:
    """{metric: {manipulation: paired AUC}} over the sources that have both cases."""
    return _per_claim(cases, results, metrics, lambda true, other, _: paired_auc(true, other))


@dataclass(frozen=True)
class AucInterval:
    """A paired AUC with its song-bootstrap interval (None with a single song)."""

    auc: float
    songs: int
    windows: int
    low: float | None = None
    high: float | None = None

    def __str__(self) -> str:
        if self.low is None:
            return f"AUC {self.auc:.2f} ({self.songs} song: no interval)"
        return f"AUC {self.auc:.2f} [{self.low:.2f}, {self.high:.2f}] ({self.songs} songs, {self.windows} windows)"


def song_bootstrap(true_scores: Sequence[float], other_scores: Sequence[float], songs: Sequence[str],
                   n_resamples: int = 10_000, seed: int = 0) -> np.ndarray:
    """Paired AUCs of song-resampled sets: float64 [n_resamples].

    Windows of one song are not independent (same voice, mix, tempo), so the songs are
    the resampling unit (a cluster bootstrap: Davison & Hinkley, 1997, section 3.8): each
    resample draws as many songs as there are, with replacement, and its AUC is the share of
    wins (ties 1/2, as `paired_auc`) over all the windows of the drawn songs, a song drawn
    twice counting twice. true_scores, other_scores, songs: [w], one per window pair.
    """
    wins = _wins(true_scores, other_scores)
    _, song_index = np.unique(np.asarray(songs), return_inverse=True)
    wins_per_song = np.bincount(song_index, weights=wins)  # [S]
    windows_per_song = np.bincount(song_index).astype(np.float64)  # [S]
    n_songs = len(windows_per_song)
    draws = np.random.default_rng(seed).multinomial(n_songs, np.full(n_songs, 1.0 / n_songs), size=n_resamples)
    return (draws @ wins_per_song) / (draws @ windows_per_song)  # [n_resamples]


def song_auc_interval(true_scores: Sequence[float], other_scores: Sequence[float], songs: Sequence[str],
                      level: float = 0.95, n_resamples: int = 10_000, seed: int = 0) -> AucInterval:
    """Paired AUC with the percentile interval of `song_bootstrap` (no interval for one song)."""
    auc = paired_auc(true_scores, other_scores)
    n_songs = len(set(songs))
    if n_songs < 2:
        return AucInterval(auc, n_songs, len(songs))
    boot = song_bootstrap(true_scores, other_scores, songs, n_resamples, seed)
    low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
    return AucInterval(auc, n_songs, len(songs), float(low), float(high))


def auc_intervals(cases: Sequence[Case], results: Sequence[FitResult], metrics: Sequence[str]) -> dict:
    """{metric: {manipulation: AucInterval}}: `auc_table` with song-bootstrap intervals."""
    return _per_claim(cases, results, metrics, song_auc_interval)


def format_intervals(intervals: dict, title: str) -> str:
    """The intervals of `auc_intervals` as a table (cells "low-high"), or one line for one song."""
    first = next(iter(next(iter(intervals.values())).values()))
    if first.low is None:
        return f"{title}: {first.windows} windows of 1 song: no interval"
    kinds = list(next(iter(intervals.values())).keys())
    width = max(len(m) for m in intervals) + 2
    lines = [f"{title}: 95% song-bootstrap interval ({first.songs} songs, {first.windows} windows)",
             " " * width + " ".join(f"{k[:10]:>10}" for k in kinds)]
    for metric, row in intervals.items():
        lines.append(f"{metric:<{width}}" + " ".join(f"{row[k].low:.2f}-{row[k].high:.2f}".rjust(10) for k in kinds))
    return "\n".join(lines)


def format_table(table: dict, title: str) -> str:
    kinds = list(next(iter(table.values())).keys())
    width = max(len(m) for m in table) + 2
    lines = [title, " " * width + " ".join(f"{k[:10]:>10}" for k in kinds)]
    for metric, row in table.items():
        claimed = CLAIMS.get(metric, ())
        cells = [f"{row[k]:9.2f}{'*' if k in claimed else ' '}" for k in kinds]
        lines.append(f"{metric:<{width}}" + " ".join(cells))
    lines.append("(* = a manipulation the metric claims to catch: AUC >= 0.8 expected)")
    return "\n".join(lines)
