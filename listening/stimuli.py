"""Render listening stimuli: the excerpt's vocal mixed with each accompaniment, blind to system.

One rendering for every stimulus of a study (`StudyRendering`), so nothing but the music
tells the systems apart:
- the same sample rate, and the same bandwidth: every mix is low-passed at the narrowest
  source bandwidth of the study (a 24 kHz model output has nothing above 12 kHz; a 44.1 kHz
  ground truth would otherwise be "the brighter clip");
- the same channel layout: when any source is mono (or has identical channels), every clip
  is rendered dual-mono, so a stereo image cannot mark the real recording;
- the same integrated loudness (ITU-R BS.1770 via pyloudnorm), measured AFTER the peak
  limiter; a clip that cannot reach the target within `LOUDNESS_TOLERANCE_LU` without more
  than `MAX_LIMITING_DB` of limiting is refused (`StimulusRefused`, with its reason);
- the same length per excerpt, written as a bare PCM WAV (RIFF, fmt and data chunks only).

What is served is not this file but a per-delivery copy (`listening.delivery`).

Catch clips come from the reference accompaniment: shifted by half a beat (circularly, so the
length stays) or transposed by a tritone.

Arrays are float64 [2, n_samples] (two channels) at the study sample rate unless stated.
"""

from __future__ import annotations

import os
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hafm_core.errors import InvalidAudioError

MIN_DURATION_S = 0.5
FADE_S = 0.01
ACCOMPANIMENT_RELATIVE_LU = 0.0  # accompaniment level relative to the vocal before mixing
PEAK_CEILING = 0.89  # -1 dBFS: leaves room for the per-delivery sub-sample offset's overshoot
LOUDNESS_TOLERANCE_LU = 0.5
MAX_LIMITING_DB = 12.0
LIMITER_WINDOW_S = 0.005
BANDWIDTH_MARGIN = 0.95  # low-pass a little below the narrowest Nyquist: resamplers roll off there
IDENTICAL_CHANNELS_DB = -80.0  # a stereo file whose side signal is this far down is mono
CATCH_VARIANTS = ("half-beat-shift", "tritone")  # the catch clips made per excerpt


class StimulusRefused(InvalidAudioError):
    """A clip that cannot be rendered like the others (e.g. cannot reach the loudness target)."""


@dataclass(frozen=True)
class RenderConfig:
    sample_rate_hz: int = 44_100
    target_lufs: float = -23.0
    max_duration_s: float = 20.0
    bandwidth_hz: float | None = None  # None: no low-pass (Nyquist)
    mono: bool = False  # render every clip dual-mono


@dataclass(frozen=True)
class SourceAudio:
    """A decoded source at the study rate: `samples` float64 [2, n]."""

    samples: np.ndarray
    native_rate_hz: int
    mono: bool

    @property
    def bandwidth_hz(self) -> float:
        return self.native_rate_hz / 2.0


@dataclass(frozen=True)
class RenderedClip:
    """One stimulus ready to write: `samples` float64 [2, n] at `sample_rate_hz`."""

    system: str
    variant: str
    samples: np.ndarray
    sample_rate_hz: int
    loudness_lufs: float

    @property
    def duration_s(self) -> float:
        return self.samples.shape[1] / self.sample_rate_hz


def read_source(path: str | Path, sample_rate_hz: int) -> SourceAudio:
    """Read any file hafm_core.audio reads (wav, flac, mp3, ...) at `sample_rate_hz`, noting its
    native rate (its bandwidth) and whether it is mono.

    Raises AudioDecodeError (unreadable) or InvalidAudioError (NaN, silent, >2 channels).
    """
    from hafm_core.audio import check_audio, read_audio, resample

    samples, native_rate = read_audio(path, None, mono=False)  # float32 [C, n]
    check_audio(samples, native_rate, path)
    samples = resample(samples, native_rate, sample_rate_hz).astype(np.float64)
    mono = samples.shape[0] == 1
    if not mono:
        side = np.mean((samples[0] - samples[1]) ** 2)
        mid = np.mean(samples**2)
        mono = bool(side <= mid * 10.0 ** (IDENTICAL_CHANNELS_DB / 10.0))
    if samples.shape[0] == 1:
        samples = np.repeat(samples, 2, axis=0)
    return SourceAudio(samples, int(native_rate), mono)


def read_stereo(path: str | Path, sample_rate_hz: int) -> np.ndarray:
    """float64 [2, n] at `sample_rate_hz` (mono files get two identical channels)."""
    return read_source(path, sample_rate_hz).samples


def study_rendering(sources: list[SourceAudio], config: RenderConfig) -> RenderConfig:
    """The one rendering of a study: low-pass at the narrowest source, dual-mono if any is mono."""
    nyquist = config.sample_rate_hz / 2.0
    narrowest = min([nyquist, *(s.bandwidth_hz for s in sources)])
    bandwidth = BANDWIDTH_MARGIN * narrowest
    return RenderConfig(config.sample_rate_hz, config.target_lufs, config.max_duration_s,
                        bandwidth_hz=round(bandwidth, 1), mono=any(s.mono for s in sources))


def integrated_loudness(samples: np.ndarray, sample_rate_hz: int) -> float:
    """BS.1770 integrated loudness (LUFS) of float [2, n]."""
    import pyloudnorm

    return float(pyloudnorm.Meter(sample_rate_hz).integrated_loudness(samples.T))


def _gain_to(samples: np.ndarray, sample_rate_hz: int, target_lufs: float, what: str) -> np.ndarray:
    loudness = integrated_loudness(samples, sample_rate_hz)
    if not np.isfinite(loudness):
        raise InvalidAudioError(f"{what} is silent: its loudness cannot be matched")
    return samples * 10.0 ** ((target_lufs - loudness) / 20.0)


def low_pass(samples: np.ndarray, sample_rate_hz: int, cutoff_hz: float | None) -> np.ndarray:
    """Remove everything above `cutoff_hz` (an FFT brick wall over the whole clip): [C, n] -> [C, n]."""
    if cutoff_hz is None or cutoff_hz >= sample_rate_hz / 2.0:
        return samples
    n = samples.shape[1]
    spectrum = np.fft.rfft(samples, axis=1)
    spectrum[:, np.fft.rfftfreq(n, 1.0 / sample_rate_hz) > cutoff_hz] = 0.0
    return np.fft.irfft(spectrum, n, axis=1)


def limit_peaks(samples: np.ndarray, sample_rate_hz: int, ceiling: float = PEAK_CEILING) -> tuple[np.ndarray, float]:
    """A look-ahead peak limiter: (samples with |x| <= ceiling, largest gain reduction in dB).

    The gain is the windowed minimum of ceiling/|x| smoothed by a moving average of half that
    window, so every sample's gain is at most its own ceiling/|x| (the limit holds exactly)
    and the gain moves smoothly (no clicks). Gain reduction is floored at MAX_LIMITING_DB.
    """
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    peak = np.max(np.abs(samples), axis=0)
    if peak.max() <= ceiling:
        return samples, 0.0
    width = max(3, int(LIMITER_WINDOW_S * sample_rate_hz))
    raw = np.minimum(1.0, ceiling / np.maximum(peak, 1e-12))
    gain = uniform_filter1d(minimum_filter1d(raw, 2 * width + 1, mode="nearest"), width, mode="nearest")
    gain = np.minimum(gain, raw)  # guard the edges of the average
    floor = 10.0 ** (-MAX_LIMITING_DB / 20.0)
    gain = np.maximum(gain, floor)
    return samples * gain, float(-20.0 * np.log10(gain.min()))


def match_loudness(mix: np.ndarray, sample_rate_hz: int, target_lufs: float, what: str) -> tuple[np.ndarray, float]:
    """Gain and limit until the limited mix measures `target_lufs`: (mix, loudness).

    Raises StimulusRefused when it cannot reach the target within LOUDNESS_TOLERANCE_LU.
    """
    source = _gain_to(mix, sample_rate_hz, target_lufs, what)  # unlimited, at the target
    gain_db = 0.0
    for _ in range(8):  # the limiter always works on the unlimited mix: its floor bounds the total
        mix, _ = limit_peaks(source * 10.0 ** (gain_db / 20.0), sample_rate_hz)
        if np.max(np.abs(mix)) > PEAK_CEILING:  # the limiter hit its floor: scale the peaks down
            mix = mix * (PEAK_CEILING / np.max(np.abs(mix)))
        loudness = integrated_loudness(mix, sample_rate_hz)
        if abs(loudness - target_lufs) <= 0.01:
            break
        gain_db = min(gain_db + target_lufs - loudness, MAX_LIMITING_DB)
    if not abs(loudness - target_lufs) <= LOUDNESS_TOLERANCE_LU:
        raise StimulusRefused(
            f"{what} reaches only {loudness:.1f} LUFS against the study's {target_lufs:.1f} LUFS target "
            f"after up to {MAX_LIMITING_DB:.0f} dB of peak limiting: its peaks are too high for its "
            "loudness (clicks or a very large crest factor). Trim or clean the clip, or lower the target.")
    return mix, loudness


def _fade(samples: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    n = min(samples.shape[1] // 2, int(FADE_S * sample_rate_hz))
    ramp = np.linspace(0.0, 1.0, n)
    out = samples.copy()
    out[:, :n] *= ramp
    out[:, samples.shape[1] - n:] *= ramp[::-1]
    return out


def half_beat_shift(accompaniment: np.ndarray, sample_rate_hz: int, tempo_bpm: float) -> np.ndarray:
    """Delay by half a beat, circularly (same length): [2, n] -> [2, n]."""
    shift = int(round(30.0 / tempo_bpm * sample_rate_hz))
    return np.roll(accompaniment, shift, axis=1)


def tritone_transpose(accompaniment: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """Transpose by six semitones, tempo kept: [2, n] -> [2, n]."""
    import librosa

    shifted = librosa.effects.pitch_shift(accompaniment, sr=sample_rate_hz, n_steps=6)
    return shifted[:, : accompaniment.shape[1]]


def estimate_tempo_bpm(accompaniment: np.ndarray, sample_rate_hz: int) -> float:
    import librosa

    tempo, _ = librosa.beat.beat_track(y=accompaniment.mean(axis=0), sr=sample_rate_hz)
    tempo = float(np.atleast_1d(tempo)[0])
    return tempo if tempo > 0 else 120.0


def _layout(samples: np.ndarray, mono: bool) -> np.ndarray:
    return np.repeat(samples.mean(axis=0, keepdims=True), 2, axis=0) if mono else samples


def render_excerpt(vocal: np.ndarray, accompaniments: dict[str, np.ndarray], config: RenderConfig,
                   catch_system: str | None = None, tempo_bpm: float | None = None,
                   catch_variants: tuple[str, ...] = CATCH_VARIANTS,
                   excerpt: str = "") -> list[RenderedClip]:
    """Mix one vocal with each accompaniment (all float [2, n_i]) into equal-length clips.

    The common length is the shortest input, capped at `config.max_duration_s`. Each
    accompaniment is first set to the vocal's loudness (so systems that generate quietly are
    not judged on balance); each mix is put in the study's channel layout, low-passed at its
    bandwidth, then gained and limited to `config.target_lufs`. With `catch_system`,
    manipulated copies of that system's accompaniment are added for catch trials.
    """
    sr = config.sample_rate_hz
    n = min([vocal.shape[1], *(a.shape[1] for a in accompaniments.values())])
    n = min(n, int(config.max_duration_s * sr))
    if n < MIN_DURATION_S * sr:
        raise InvalidAudioError(f"excerpt {excerpt!r} is {n / sr:.2f} s long; stimuli need at least "
                                f"{MIN_DURATION_S} s of vocal and of every accompaniment")
    vocal = vocal[:, :n]
    vocal_lufs = integrated_loudness(vocal, sr)
    if not np.isfinite(vocal_lufs):
        raise InvalidAudioError(f"the vocal of excerpt {excerpt!r} is silent")

    sources: list[tuple[str, str, np.ndarray]] = [(s, "", a[:, :n]) for s, a in accompaniments.items()]
    if catch_system is not None:
        reference = accompaniments[catch_system][:, :n]
        for variant in catch_variants:
            if variant == "half-beat-shift":
                bpm = tempo_bpm or estimate_tempo_bpm(reference, sr)
                sources.append((catch_system, variant, half_beat_shift(reference, sr, bpm)))
            elif variant == "tritone":
                sources.append((catch_system, variant, tritone_transpose(reference, sr)))
            else:
                raise ValueError(f"unknown catch variant {variant!r}")

    clips = []
    for system, variant, accompaniment in sources:
        what = f"accompaniment {system!r}{f' ({variant})' if variant else ''} of excerpt {excerpt!r}"
        accompaniment = _gain_to(accompaniment, sr, vocal_lufs + ACCOMPANIMENT_RELATIVE_LU, what)
        mix = low_pass(_layout(vocal + accompaniment, config.mono), sr, config.bandwidth_hz)
        mix, loudness = match_loudness(_fade(mix, sr), sr, config.target_lufs, f"the mix with {what}")
        clips.append(RenderedClip(system, variant, mix, sr, loudness))
    return clips


def wav_bytes_pcm16(samples: np.ndarray, sample_rate_hz: int) -> bytes:
    """A bare RIFF/WAVE (fmt + data only, 16-bit PCM) of float [C, n] in [-1, 1]."""
    import io

    pcm = np.clip(np.round(samples.T * 32767.0), -32768, 32767).astype("<i2")  # [n, C]
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(samples.shape[0])
        writer.setsampwidth(2)
        writer.setframerate(sample_rate_hz)
        writer.writeframes(pcm.tobytes())
    return buffer.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
