"""Audio I/O: read, check, resample, measure and normalise loudness, write atomically.

Arrays are float32, mono `[n]` or multichannel `[channels, n]` (channels first, as torch).
- wav / flac / ogg go through soundfile (libsndfile); mp3, mp4, m4a and MUSDB18 `.stem.mp4`
  through an `ffmpeg` subprocess that decodes to 32-bit float PCM.
- Resampling uses soxr at its "VHQ" quality (very high quality, linear phase).
- Loudness is integrated loudness per ITU-R BS.1770-4 (pyloudnorm), in LUFS.

Supported channel layouts are mono and stereo; anything else is an `InvalidAudioError`.
A file that cannot be read is an `AudioDecodeError`; both name the file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np

from hafm_core.data.files import atomic_output
from hafm_core.errors import AudioDecodeError, InvalidAudioError

SOUNDFILE_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif")
FFMPEG_SUFFIXES = (".mp3", ".mp4", ".m4a", ".aac")
MUSDB_STREAMS = ("mixture", "drums", "bass", "other", "vocals")  # stream order of a .stem.mp4
SILENCE_PEAK = 1e-5  # -100 dBFS: a peak below this is "all silent"
CLIP_LEVEL = 0.999  # |x| at or above this counts as clipped
RESAMPLE_QUALITY = "VHQ"


class ClippingWarning(UserWarning):
    """Samples at full scale: the source was probably clipped."""


def is_stem_mp4(path: str | Path) -> bool:
    return Path(path).name.lower().endswith(".stem.mp4")


def _ffprobe_streams(path: Path) -> list[dict]:
    if shutil.which("ffprobe") is None:
        raise AudioDecodeError(f"cannot read {path}: ffprobe/ffmpeg is not installed (apt-get install ffmpeg)")
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "a", "-show_entries",
         "stream=index,channels,sample_rate", "-of", "json", str(path)],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise AudioDecodeError(f"cannot read {path}: {result.stderr.strip() or 'ffprobe failed'}")
    streams = json.loads(result.stdout or "{}").get("streams", [])
    if not streams:
        raise AudioDecodeError(f"cannot read {path}: it holds no audio stream")
    return streams


def _ffmpeg_decode(path: Path, stream: int, channels: int) -> np.ndarray:
    """float32 [channels, n] of audio stream `stream` at its native rate."""
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-map", f"0:a:{stream}",
         "-f", "f32le", "-acodec", "pcm_f32le", "-"],
        capture_output=True, check=False,
    )
    if result.returncode != 0:
        raise AudioDecodeError(f"cannot decode {path}: {result.stderr.decode(errors='replace').strip()}")
    samples = np.frombuffer(result.stdout, dtype="<f4")
    return samples[: len(samples) // channels * channels].reshape(-1, channels).T.copy()


def _read_native(path: Path, stream: int = 0) -> tuple[np.ndarray, int]:
    """float32 [channels, n] at the file's own rate."""
    if not path.is_file():
        raise AudioDecodeError(f"cannot read {path}: no such file")
    suffix = path.suffix.lower()
    if suffix in SOUNDFILE_SUFFIXES:
        import soundfile

        try:
            data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError, ValueError) as error:
            raise AudioDecodeError(f"cannot read {path}: {error}") from error
        return data.T.copy(), int(rate)
    if suffix in FFMPEG_SUFFIXES:
        streams = _ffprobe_streams(path)
        if stream >= len(streams):
            raise AudioDecodeError(f"{path} has {len(streams)} audio streams, stream {stream} was asked for")
        info = streams[stream]
        return _ffmpeg_decode(path, stream, int(info["channels"])), int(info["sample_rate"])
    raise AudioDecodeError(f"cannot read {path}: unsupported format {suffix!r} "
                           f"(supported: {', '.join(SOUNDFILE_SUFFIXES + FFMPEG_SUFFIXES)})")


def _to_layout(samples: np.ndarray, path: Path, mono: bool) -> np.ndarray:
    channels = samples.shape[0]
    if channels not in (1, 2):
        raise InvalidAudioError(f"{path} has {channels} channels: only mono and stereo are supported; "
                                "downmix it first (e.g. ffmpeg -ac 2)")
    if mono:
        return samples.mean(axis=0).astype(np.float32)
    return samples.astype(np.float32)


def read_audio(path: str | Path, sample_rate_hz: int | None = None, mono: bool = True,
               stream: int = 0) -> tuple[np.ndarray, int]:
    """Read a file -> (samples float32 [n] if mono else [channels, n], sample rate in Hz).

    With `sample_rate_hz`, the samples are resampled to it (soxr VHQ). For a `.stem.mp4`,
    `stream` picks the MUSDB stream (0 = mixture; see `read_stems`).
    """
    path = Path(path)
    samples, rate = _read_native(path, stream)
    samples = _to_layout(samples, path, mono)
    if sample_rate_hz is not None and sample_rate_hz != rate:
        samples, rate = resample(samples, rate, sample_rate_hz), sample_rate_hz
    return samples, rate


def read_stems(path: str | Path, sample_rate_hz: int | None = None,
               mono: bool = True) -> tuple[dict[str, np.ndarray], int]:
    """A MUSDB18 `.stem.mp4` -> ({mixture, drums, bass, other, vocals: float32 [n] or [channels, n]}, rate)."""
    path = Path(path)
    streams = _ffprobe_streams(path)
    if len(streams) < len(MUSDB_STREAMS):
        raise AudioDecodeError(f"{path} has {len(streams)} audio streams; a MUSDB18 stem file has 5 "
                               f"({', '.join(MUSDB_STREAMS)})")
    stems, rate = {}, None
    for index, name in enumerate(MUSDB_STREAMS):
        stems[name], rate = read_audio(path, sample_rate_hz, mono, stream=index)
    length = min(s.shape[-1] for s in stems.values())  # AAC streams can differ by a few samples
    return {name: s[..., :length] for name, s in stems.items()}, int(rate)


def resample(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """float32 [n] or [channels, n] at `from_hz` -> same layout at `to_hz` (soxr VHQ).

    The output has `round(n * to_hz / from_hz)` samples (exact for the 44.1/24/16 kHz ratios of
    whole 40 ms units).
    """
    import soxr

    if from_hz == to_hz:
        return samples.astype(np.float32, copy=False)
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 1:
        return soxr.resample(samples, from_hz, to_hz, quality=RESAMPLE_QUALITY).astype(np.float32)
    out = soxr.resample(np.ascontiguousarray(samples.T), from_hz, to_hz, quality=RESAMPLE_QUALITY)
    return np.ascontiguousarray(out.T, dtype=np.float32)


def write_audio(path: str | Path, samples: np.ndarray, sample_rate_hz: int, subtype: str = "FLOAT") -> Path:
    """Write float32 [n] or [channels, n] atomically; the format follows the suffix (wav, flac).

    wav defaults to 32-bit float (lossless for our arrays); flac needs `subtype="PCM_16"` or `"PCM_24"`.
    """
    import soundfile

    path = Path(path)
    if path.suffix.lower() == ".flac" and subtype == "FLOAT":
        subtype = "PCM_24"
    data = np.asarray(samples, dtype=np.float32)
    data = data if data.ndim == 1 else data.T
    with atomic_output(path) as tmp:
        soundfile.write(str(tmp), data, sample_rate_hz, subtype=subtype, format=path.suffix[1:].upper())
    return path


def samples_sha256(samples: np.ndarray, sample_rate_hz: int) -> str:
    """Content hash of audio: sha256 of the rate, the shape and the float32 little-endian samples.

    Used instead of a file hash because libsndfile stamps float wavs with a time (PEAK chunk),
    so the same samples written twice give different file bytes.
    """
    import hashlib

    data = np.ascontiguousarray(samples, dtype="<f4")
    digest = hashlib.sha256(f"{sample_rate_hz}:{data.shape}:".encode())
    digest.update(data.tobytes())
    return digest.hexdigest()


def check_audio(samples: np.ndarray, sample_rate_hz: int, name: str | Path,
                min_duration_s: float | None = None, allow_silent: bool = False) -> np.ndarray:
    """Return `samples` if usable, else `InvalidAudioError` naming `name`; `ClippingWarning` on clipping.

    Unusable: a layout other than [n] or [1 | 2, n], NaN or Inf, all silent (peak below
    -100 dBFS; allowed with `allow_silent`, e.g. a track without bass), shorter than
    `min_duration_s`.
    """
    samples = np.asarray(samples)
    if samples.ndim not in (1, 2) or (samples.ndim == 2 and samples.shape[0] not in (1, 2)):
        raise InvalidAudioError(f"{name}: unsupported channel layout {samples.shape}; expected [n] (mono) "
                                "or [channels, n] with 1 or 2 channels")
    if samples.shape[-1] == 0:
        raise InvalidAudioError(f"{name}: no samples")
    finite = np.isfinite(samples)
    if not finite.all():
        bad = int((~finite).sum())
        raise InvalidAudioError(f"{name}: {bad} samples are NaN or Inf (first at sample "
                                f"{int(np.argwhere(~finite)[0][-1])}); the file or its decoder is broken")
    duration_s = samples.shape[-1] / sample_rate_hz
    if min_duration_s is not None and duration_s + 1e-9 < min_duration_s:
        raise InvalidAudioError(f"{name}: {duration_s:.2f} s long, shorter than the requested "
                                f"{min_duration_s:g} s excerpt")
    peak = float(np.abs(samples).max())
    if peak < SILENCE_PEAK and not allow_silent:
        raise InvalidAudioError(f"{name}: all silent (peak {peak:.2e}, below -100 dBFS)")
    clipped = int((np.abs(samples) >= CLIP_LEVEL).sum())
    if clipped:
        message = f"{name}: {clipped} samples at full scale (|x| >= {CLIP_LEVEL}); the audio is probably clipped"
        warnings.warn(message, ClippingWarning, stacklevel=2)
    return samples


def loudness_lufs(samples: np.ndarray, sample_rate_hz: int) -> float:
    """Integrated loudness (ITU-R BS.1770-4, gated) of [n] or [channels, n]; -inf for silence."""
    import pyloudnorm

    data = np.asarray(samples, dtype=np.float64)
    data = data if data.ndim == 1 else data.T
    meter = pyloudnorm.Meter(sample_rate_hz)
    if data.shape[0] < int(meter.block_size * sample_rate_hz):
        raise InvalidAudioError(f"cannot measure loudness of {data.shape[0] / sample_rate_hz:.3f} s: "
                                f"BS.1770 needs at least {meter.block_size} s")
    return float(meter.integrated_loudness(data))


def normalize_loudness(samples: np.ndarray, sample_rate_hz: int, target_lufs: float = -23.0) -> np.ndarray:
    """Scale to `target_lufs` integrated loudness (a plain gain; peaks may exceed 1, not clipped)."""
    current = loudness_lufs(samples, sample_rate_hz)
    if not np.isfinite(current):
        raise InvalidAudioError("cannot normalise the loudness of silent audio (loudness is -inf LUFS)")
    gain = 10.0 ** ((target_lufs - current) / 20.0)
    return (np.asarray(samples, dtype=np.float32) * np.float32(gain)).astype(np.float32)
