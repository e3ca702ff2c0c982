"""Render listening stimuli: the excerpt's vocal mixed with each accompaniment, blind to system.

Every clip of one excerpt has the same length, sample rate, channel count and integrated
loudness (ITU-R BS.1770 via pyloudnorm), and is written as a bare PCM WAV (RIFF, fmt and data
chunks only, by the stdlib `wave` writer: libsndfile's float WAVs carry a time-stamped PEAK
chunk): size, duration, level and metadata give nothing away about the system.

Catch clips come from the reference accompaniment: shifted by half a beat (circularly, so the
length stays) or transposed by a tritone.

Arrays are float64 [2, n_samples] (stereo) at the study sample rate unless stated.
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
PEAK_CEILING = 0.99


@dataclass(frozen=True)
class RenderConfig:
    sample_rate_hz: int = 44_100
    target_lufs: float = -23.0
    max_duration_s: float = 20.0


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


def read_stereo(path: str | Path, sample_rate_hz: int) -> np.ndarray:
    """Read any file hafm_core.audio reads (wav, flac, mp3, ...) as float64 [2, n] at `sample_rate_hz`.

    Raises AudioDecodeError (unreadable) or InvalidAudioError (NaN, silent, >2 channels).
    """
    from hafm_core.audio import check_audio, read_audio

    samples, _ = read_audio(path, sample_rate_hz, mono=False)  # float32 [C, n]
    check_audio(samples, sample_rate_hz, path)
    if samples.shape[0] == 1:
        samples = np.repeat(samples, 2, axis=0)
    return samples.astype(np.float64)


def integrated_loudness(samples: np.ndarray, sample_rate_hz: int) -> float:
    """BS.1770 integrated loudness (LUFS) of float [2, n]."""
    import pyloudnorm

    return float(pyloudnorm.Meter(sample_rate_hz).integrated_loudness(samples.T))


def _gain_to(samples: np.ndarray, sample_rate_hz: int, target_lufs: float, what: str) -> np.ndarray:
    loudness = integrated_loudness(samples, sample_rate_hz)
    if not np.isfinite(loudness):
        raise InvalidAudioError(f"{what} is silent: its loudness cannot be matched")
    return samples * 10.0 ** ((target_lufs - loudness) / 20.0)


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


def render_excerpt(vocal: np.ndarray, accompaniments: dict[str, np.ndarray], config: RenderConfig,
                   catch_system: str | None = None, tempo_bpm: float | None = None,
                   catch_variants: tuple[str, ...] = ("half-beat-shift", "tritone"),
                   excerpt: str = "") -> list[RenderedClip]:
    """Mix one vocal with each accompaniment (all float [2, n_i]) into equal-length clips.

    The common length is the shortest input, capped at `config.max_duration_s`. Each
    accompaniment is first set to the vocal's loudness (so systems that generate quietly are
    not judged on balance), then each mix is set to `config.target_lufs`. With `catch_system`,
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
        what = f"accompaniment {system!r} of excerpt {excerpt!r}"
        accompaniment = _gain_to(accompaniment, sr, vocal_lufs + ACCOMPANIMENT_RELATIVE_LU, what)
        mix = _gain_to(vocal + accompaniment, sr, config.target_lufs, f"mix with {what}")
        peak = float(np.max(np.abs(mix)))
        if peak > PEAK_CEILING:  # rare at -23 LUFS; keep it from clipping rather than distort
            mix *= PEAK_CEILING / peak
        mix = _fade(mix, sr)
        clips.append(RenderedClip(system, variant, mix, sr, integrated_loudness(mix, sr)))
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
