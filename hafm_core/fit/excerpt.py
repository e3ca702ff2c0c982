"""Per-excerpt musical fit of an accompaniment to a vocal: checks, pitch, rhythm, harmony.

`fit_excerpts` checks every excerpt first (bad input becomes a per-excerpt `status`, never an
exception or a NaN), tracks the vocal pitch of all valid excerpts in one CREPE batch, then
measures rhythm and harmony per excerpt. Scores (weights chosen a priori, equal between the
two aspects, until listener ratings say otherwise):

    rhythm_score  = 0.25 * onset_beat_hit_rate + 0.25 * (beat_emphasis + 1) / 2
                    + 0.5 * (onset_xcorr_prominence + 1) / 2                       in [0, 1]
    harmony_score = 0.7 * chord_tone_ratio + 0.3 * key_agreement                   in [0, 1]
    fit_score     = 0.5 * rhythm_score + 0.5 * harmony_score                       in [0, 1]

The cross-correlation weighs as much as the two beat-based metrics together because it does
not depend on the beat tracker's choice of phase: on real music with strong off-beats
(the stempeg sample) the tracker puts the beats of a half-beat-shifted accompaniment at the
same instants as the original's, which leaves hit rate and emphasis unchanged.
`tempo_agreement` is reported but not weighted: tempo read from a vocal alone is unreliable
(the stempeg sample's vocal reads 123 BPM against 117 for its own accompaniment).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from hafm_core.fit import harmony, rhythm

STATUSES = {
    "ok": "all metrics computed",
    "invalid_samples": "an array is empty, not mono [n], or holds NaN/Inf",
    "sample_rate_mismatch": "vocal and accompaniment have different sample rates",
    "length_mismatch": "vocal and accompaniment lengths differ by more than the tolerance",
    "too_short": "shorter than the minimum excerpt duration",
    "silent_vocal": "the vocal is below the silence level",
    "silent_accompaniment": "the accompaniment is below the silence level",
    "no_onsets_accompaniment": "the accompaniment has too few note or drum onsets to find beats",
    "unvoiced_vocal": "too few vocal frames carry a pitch",
    "no_onsets_vocal": "the vocal has no onsets to align with the beats",
    "unreadable": "a file could not be read or decoded",
}
METRIC_NAMES = ("onset_beat_hit_rate", "beat_emphasis", "onset_xcorr_prominence", "tempo_agreement",
                "chord_tone_ratio", "key_agreement", "rhythm_score", "harmony_score", "fit_score")


@dataclass(frozen=True)
class FitConfig:
    """Thresholds of the checks and the score weights (see module docstring)."""

    silence_dbfs: float = -60.0  # RMS below this is silent
    min_duration_s: float = 2.0
    max_length_mismatch_s: float = 0.1  # within it, both are cut to the shorter
    pitch_hop_s: float = 0.02  # CREPE hop (20 ms halves the cost of the usual 10 ms)
    voicing_threshold: float = 0.5  # CREPE periodicity for a frame to count as voiced
    min_voiced_s: float = 0.5  # total voiced time below this is "unvoiced_vocal"
    min_onset_strength: float = 1.0  # librosa onset strength of a real attack
    min_accompaniment_onsets: int = 2
    pitch_batch_excerpts: int = 16  # excerpts per CREPE batch
    rhythm_weights: tuple[float, float, float] = (0.25, 0.25, 0.5)  # hit rate, emphasis, xcorr
    harmony_weights: tuple[float, float] = (0.7, 0.3)  # chord tones, key
    aspect_weights: tuple[float, float] = (0.5, 0.5)  # rhythm, harmony


DEFAULT_CONFIG = FitConfig()


@dataclass(frozen=True)
class Excerpt:
    """A vocal and an accompaniment, float32 mono [n], with their sample rates in Hz."""

    name: str
    vocal: np.ndarray
    accompaniment: np.ndarray
    sample_rate_hz: int
    accompaniment_rate_hz: int | None = None  # None: same as the vocal


@dataclass(frozen=True)
class FitResult:
    """Metrics of one excerpt; every metric is None unless `status == "ok"`."""

    name: str
    status: str
    detail: str = ""
    duration_s: float | None = None
    onset_beat_hit_rate: float | None = None
    beat_emphasis: float | None = None
    onset_xcorr_prominence: float | None = None
    tempo_agreement: float | None = None
    chord_tone_ratio: float | None = None
    key_agreement: float | None = None
    rhythm_score: float | None = None
    harmony_score: float | None = None
    fit_score: float | None = None
    vocal_tempo_bpm: float | None = None
    accompaniment_tempo_bpm: float | None = None
    vocal_key: str | None = None
    accompaniment_key: str | None = None
    voiced_share: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict:
        return asdict(self)


def _rms_dbfs(samples: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return -np.inf if rms == 0 else 20 * np.log10(rms)


def _check(excerpt: Excerpt, config: FitConfig) -> FitResult | tuple[np.ndarray, np.ndarray]:
    """A failed FitResult, or the two signals cut to a common length."""
    name = excerpt.name
    for role, samples in (("vocal", excerpt.vocal), ("accompaniment", excerpt.accompaniment)):
        samples = np.asarray(samples)
        if samples.ndim != 1 or samples.size == 0:
            return FitResult(name, "invalid_samples", f"{role} has shape {samples.shape}; expected mono [n]")
        if not np.isfinite(samples).all():
            return FitResult(name, "invalid_samples", f"{role} holds {int((~np.isfinite(samples)).sum())} NaN/Inf samples")
    rate = excerpt.sample_rate_hz
    other_rate = excerpt.accompaniment_rate_hz or rate
    if other_rate != rate:
        return FitResult(name, "sample_rate_mismatch", f"vocal at {rate} Hz, accompaniment at {other_rate} Hz")
    vocal = np.asarray(excerpt.vocal, dtype=np.float32)
    accompaniment = np.asarray(excerpt.accompaniment, dtype=np.float32)
    gap_s = abs(len(vocal) - len(accompaniment)) / rate
    if gap_s > config.max_length_mismatch_s:
        return FitResult(name, "length_mismatch",
                         f"vocal {len(vocal) / rate:.2f} s, accompaniment {len(accompaniment) / rate:.2f} s "
                         f"(tolerance {config.max_length_mismatch_s} s)")
    n = min(len(vocal), len(accompaniment))
    duration_s = n / rate
    if duration_s < config.min_duration_s:
        return FitResult(name, "too_short", f"{duration_s:.2f} s < {config.min_duration_s} s", duration_s)
    for role, samples in (("vocal", vocal), ("accompaniment", accompaniment)):
        level = _rms_dbfs(samples[:n])
        if level < config.silence_dbfs:
            return FitResult(name, f"silent_{role}", f"{role} RMS {level:.1f} dBFS < {config.silence_dbfs} dBFS",
                             duration_s)
    return vocal[:n], accompaniment[:n]


def _pitch_batch(model, vocals_16k: list[np.ndarray], hop: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Vocals float32 [n_i] at 16 kHz -> per excerpt (f0_hz [T_i], periodicity [T_i]).

    Excerpts are zero-padded to the longest one and run as one batch; each keeps its own
    1 + n_i // hop frames, which do not depend on the padding beyond them except for the
    last half-window (CREPE frames are centred).
    """
    longest = max(len(v) for v in vocals_16k)
    batch = np.zeros((len(vocals_16k), longest), dtype=np.float32)  # (B, n_max)
    for i, vocal in enumerate(vocals_16k):
        batch[i, :len(vocal)] = vocal
    f0_hz, periodicity = model.pitch(batch, hop_samples=hop)  # (B, T_max) each
    return [(f0_hz[i, :1 + len(v) // hop], periodicity[i, :1 + len(v) // hop])
            for i, v in enumerate(vocals_16k)]


def _measure(name: str, vocal: np.ndarray, accompaniment: np.ndarray, rate: int,
             f0_hz: np.ndarray, periodicity: np.ndarray, config: FitConfig) -> FitResult:
    from hafm_core.audio import resample

    duration_s = len(vocal) / rate
    vocal_onsets = rhythm.analyse_onsets(resample(vocal, rate, rhythm.ANALYSIS_RATE_HZ), config.min_onset_strength)
    accompaniment_22k = resample(accompaniment, rate, rhythm.ANALYSIS_RATE_HZ)
    backing = rhythm.analyse_onsets(accompaniment_22k, config.min_onset_strength)
    if backing.strong_onset_count < config.min_accompaniment_onsets or len(backing.beat_times_s) < 2:
        return FitResult(name, "no_onsets_accompaniment",
                         f"{backing.strong_onset_count} onsets of strength >= {config.min_onset_strength}, "
                         f"{len(backing.beat_times_s)} beats", duration_s)
    voiced = periodicity >= config.voicing_threshold  # (T,)
    voiced_s = float(voiced.sum()) * config.pitch_hop_s
    if voiced_s < config.min_voiced_s:
        return FitResult(name, "unvoiced_vocal",
                         f"{voiced_s:.2f} s voiced (periodicity >= {config.voicing_threshold}) < {config.min_voiced_s} s",
                         duration_s)
    if len(vocal_onsets.onset_times_s) == 0 or vocal_onsets.strong_onset_count == 0:
        return FitResult(name, "no_onsets_vocal", "no vocal onset reaches the minimum strength", duration_s)

    beat_period_s = float(np.median(np.diff(backing.beat_times_s)))
    hit_rate = rhythm.onset_beat_hit_rate(vocal_onsets.onset_times_s, backing.beat_times_s)
    emphasis = rhythm.beat_emphasis(vocal_onsets.envelope, backing.beat_times_s)
    prominence = rhythm.onset_xcorr_prominence(vocal_onsets.envelope, backing.envelope, beat_period_s)

    chroma = harmony.accompaniment_chroma(accompaniment_22k)  # (12, T)
    classes = harmony.pitch_classes(f0_hz[voiced])
    times_s = np.flatnonzero(voiced) * config.pitch_hop_s
    chord_tones = harmony.chord_tone_ratio(classes, times_s, chroma)
    vocal_key = harmony.estimate_key(harmony.vocal_pitch_profile(classes, periodicity[voiced]))
    backing_key = harmony.estimate_key(chroma.mean(axis=1))
    key_agreement = harmony.mirex_key_score(vocal_key, backing_key)

    w_hit, w_emphasis, w_xcorr = config.rhythm_weights
    rhythm_score = w_hit * hit_rate + w_emphasis * (emphasis + 1) / 2 + w_xcorr * (prominence + 1) / 2
    w_chord, w_key = config.harmony_weights
    harmony_score = w_chord * chord_tones + w_key * key_agreement
    w_rhythm, w_harmony = config.aspect_weights
    return FitResult(
        name, "ok", STATUSES["ok"], duration_s,
        onset_beat_hit_rate=hit_rate, beat_emphasis=emphasis, onset_xcorr_prominence=prominence,
        tempo_agreement=rhythm.tempo_agreement(vocal_onsets.tempo_bpm, backing.tempo_bpm),
        chord_tone_ratio=chord_tones, key_agreement=key_agreement,
        rhythm_score=rhythm_score, harmony_score=harmony_score,
        fit_score=w_rhythm * rhythm_score + w_harmony * harmony_score,
        vocal_tempo_bpm=vocal_onsets.tempo_bpm, accompaniment_tempo_bpm=backing.tempo_bpm,
        vocal_key=harmony.key_name(vocal_key), accompaniment_key=harmony.key_name(backing_key),
        voiced_share=float(voiced.mean()),
    )


def fit_excerpts(excerpts: Sequence[Excerpt], model=None, config: FitConfig = DEFAULT_CONFIG,
                 progress=None) -> list[FitResult]:
    """Measure every excerpt; results in input order, one per excerpt.

    model: a loaded `hafm_core.crepe.CrepeTiny` (loaded here when None); progress: an
    optional callable called with the number of excerpts just finished.
    """
    from hafm_core.audio import resample
    from hafm_core.crepe import SAMPLE_RATE_HZ, CrepeTiny

    results: list[FitResult | None] = [None] * len(excerpts)
    valid = []  # (index, vocal, accompaniment)
    for i, excerpt in enumerate(excerpts):
        checked = _check(excerpt, config)
        if isinstance(checked, FitResult):
            results[i] = checked
            if progress:
                progress(1)
        else:
            valid.append((i, *checked))
    if valid and model is None:
        model = CrepeTiny.load()
    hop = int(round(config.pitch_hop_s * SAMPLE_RATE_HZ))
    for start in range(0, len(valid), config.pitch_batch_excerpts):
        chunk = valid[start:start + config.pitch_batch_excerpts]
        vocals_16k = [resample(v, excerpts[i].sample_rate_hz, SAMPLE_RATE_HZ) for i, v, _ in chunk]
        for (i, vocal, accompaniment), (f0_hz, periodicity) in zip(chunk, _pitch_batch(model, vocals_16k, hop)):
            results[i] = _measure(excerpts[i].name, vocal, accompaniment, excerpts[i].sample_rate_hz,
                                  f0_hz, periodicity, config)
            if progress:
                progress(1)
    return results


def fit_excerpt(vocal: np.ndarray, accompaniment: np.ndarray, sample_rate_hz: int,
                accompaniment_rate_hz: int | None = None, name: str = "excerpt", model=None,
                config: FitConfig = DEFAULT_CONFIG) -> FitResult:
    """One excerpt: vocal and accompaniment float32 mono [n] -> FitResult."""
    excerpt = Excerpt(name, vocal, accompaniment, sample_rate_hz, accompaniment_rate_hz)
    return fit_excerpts([excerpt], model, config)[0]
