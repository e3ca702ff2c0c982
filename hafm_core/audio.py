"""Audio I/O: read, check, resample, measure and normalise loudness, write atomically.

Arrays are float32, mono `[n]` or multichannel `[channels, n]` (channels first, as torch).
- wav / flac / ogg go through soundfile (libsndfile); mp3, mp4, m4a and MUSDB18 `.stem.mp4`
  through an `ffmpeg` subprocess that decodes to 32-bit float PCM.
- Resampling uses soxr at its "VHQ" quality (very high quality, linear phase).
- Loudness is integrated loudness per ITU-R BS.1770-4 (pyloudnorm), in LUFS.

Supported channel layouts are mono and stereo; anything else is an `InvalidAudioError`.
A file that cannot be read is an `AudioDecodeError`; both name the file.

Every read is checked, whichever command reads (tokenize, generate, FAD, fit, data prepare):
- truncated data: a WAV/RF64/AIFF whose sample data ends before its header says, an Ogg file
  without its end-of-stream page, or an ffmpeg-decoded stream shorter than its declared
  duration is a `TruncatedAudioError` naming the true and the declared length (libsndfile
  would silently return the samples that are there);
- NaN or infinite samples are an `InvalidAudioError` (counted before any resampling).
Silence and a minimum duration depend on the use: `read_checked_audio` adds them
(`check_audio`), e.g. `MIN_VOCAL_DURATION_S` for vocals that are tokenized or generated from.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np

from hafm_core.data.files import atomic_output
from hafm_core.errors import AudioDecodeError, InvalidAudioError, TruncatedAudioError

SOUNDFILE_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif")
FFMPEG_SUFFIXES = (".mp3", ".mp4", ".m4a", ".aac")
MUSDB_STREAMS = ("mixture", "drums", "bass", "other", "vocals")  # stream order of a .stem.mp4
SILENCE_PEAK = 1e-5  # -100 dBFS: a peak below this is "all silent"
CLIP_LEVEL = 0.999  # |x| at or above this counts as clipped
RESAMPLE_QUALITY = "VHQ"
MIN_VOCAL_DURATION_S = 0.5  # a vocal shorter than this is not tokenized or generated from (no phrase to follow)
FFMPEG_DURATION_TOLERANCE_S = 0.1  # codec priming/padding: decoded vs declared duration


class ClippingWarning(UserWarning):
    """Samples at full scale: the source was probably clipped."""


def is_stem_mp4(path: str | Path) -> bool:
    return Path(path).name.lower().endswith(".stem.mp4")


def _ffprobe_streams(path: Path) -> list[dict]:
    if shutil.which("ffprobe") is None:
        raise AudioDecodeError(f"cannot read {path}: ffprobe/ffmpeg is not installed (apt-get install ffmpeg)")
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "a", "-show_entries",
         "stream=index,channels,sample_rate,duration", "-of", "json", str(path)],
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


def _riff_data_span(head: bytes, size: int) -> tuple[int, int] | None:
    """(declared frames, frames present) of a RIFF/RF64 WAV, from `fmt ` and `data`, or None."""
    import struct

    block_align, ds64_data, offset = None, None, 12
    while offset + 8 <= len(head):
        chunk, length = head[offset:offset + 4], struct.unpack("<I", head[offset + 4:offset + 8])[0]
        body = offset + 8
        if chunk == b"ds64" and body + 16 <= len(head):
            ds64_data = struct.unpack("<Q", head[body + 8:body + 16])[0]
        elif chunk == b"fmt " and body + 14 <= len(head):
            block_align = struct.unpack("<H", head[body + 12:body + 14])[0]
        elif chunk == b"data":
            if length == 0xFFFFFFFF and ds64_data is None:
                return None  # a streaming writer's placeholder: no length was declared
            if not block_align:
                return None
            declared = ds64_data if length == 0xFFFFFFFF else length
            return declared // block_align, max(0, size - body) // block_align
        offset = body + length + (length & 1)
    return None


def _aiff_data_span(head: bytes, size: int) -> tuple[int, int] | None:
    """(declared frames, frames present) of an AIFF/AIFF-C, from `COMM` and `SSND`, or None."""
    import struct

    frames = bytes_per_frame = None
    offset = 12
    while offset + 8 <= len(head):
        chunk, length = head[offset:offset + 4], struct.unpack(">I", head[offset + 4:offset + 8])[0]
        body = offset + 8
        if chunk == b"COMM" and body + 8 <= len(head):
            channels, frames, bits = struct.unpack(">hIh", head[body:body + 8])
            bytes_per_frame = channels * ((bits + 7) // 8)
        elif chunk == b"SSND":
            if not frames or not bytes_per_frame:
                return None
            return frames, max(0, size - body - 8) // bytes_per_frame
        offset = body + length + (length & 1)
    return None


def _check_not_truncated(path: Path, frames_read: int, rate: int) -> None:
    """`TruncatedAudioError` when the file's data ends before its header (or stream) says.

    libsndfile returns whatever samples are there and says nothing, so the header is read here.
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
        handle.seek(max(0, size - (1 << 16)))
        tail = handle.read()
    span = None
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        span = _riff_data_span(head, size)
    elif head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        span = _aiff_data_span(head, size)
    elif head[:4] == b"OggS":
        last = tail.rfind(b"OggS")  # the last page must carry the end-of-stream flag (0x04)
        if last < 0 or last + 5 >= len(tail) or not tail[last + 5] & 0x04:
            raise TruncatedAudioError(
                f"{path}: truncated: the Ogg stream has no end-of-stream page; only {frames_read} samples "
                f"({frames_read / rate:.3f} s) could be decoded. Re-export or re-copy it")
        return
    if span is not None and span[1] < span[0]:
        declared, present = span
        raise TruncatedAudioError(
            f"{path}: truncated: its data ends after {present} samples ({present / rate:.3f} s) "
            f"but its header declares {declared} ({declared / rate:.3f} s). Re-export or re-copy it")


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
        _check_not_truncated(path, data.shape[0], int(rate))
        return data.T.copy(), int(rate)
    if suffix in FFMPEG_SUFFIXES:
        streams = _ffprobe_streams(path)
        if stream >= len(streams):
            raise AudioDecodeError(f"{path} has {len(streams)} audio streams, stream {stream} was asked for")
        info = streams[stream]
        samples, rate = _ffmpeg_decode(path, stream, int(info["channels"])), int(info["sample_rate"])
        declared_s = float(info.get("duration") or 0.0)
        decoded_s = samples.shape[-1] / rate
        if declared_s and decoded_s + FFMPEG_DURATION_TOLERANCE_S < declared_s:
            raise TruncatedAudioError(f"{path}: truncated: stream {stream} decodes to {decoded_s:.3f} s but "
                                      f"declares {declared_s:.3f} s. Re-export or re-copy it")
        return samples, rate
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
    `stream` picks the MUSDB stream (0 = mixture; see `read_stems`). A truncated file is a
    `TruncatedAudioError`, NaN or Inf samples an `InvalidAudioError` (see the module docstring).
    """
    path = Path(path)
    samples, rate = _read_native(path, stream)
    samples = _to_layout(samples, path, mono)
    _check_finite(samples, path)
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


def stack_padded(signals: list[np.ndarray]) -> np.ndarray:
    """Mono signals float32 [n_i] -> float32 [B, max n_i], each row zero-padded at the end."""
    batch = np.zeros((len(signals), max(len(x) for x in signals)), dtype=np.float32)
    for i, x in enumerate(signals):
        batch[i, :len(x)] = x
    return batch


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


def read_checked_audio(path: str | Path, sample_rate_hz: int | None = None, mono: bool = True,
                       min_duration_s: float | None = None, allow_silent: bool = False,
                       what: str = "", min_duration_reason: str = "minimum") -> tuple[np.ndarray, int]:
    """`read_audio` + `check_audio`: the samples must also be non-silent (unless `allow_silent`)
    and at least `min_duration_s` long. `what` (e.g. "vocal") prefixes the file in messages.
    Clipping is not warned about here: `hafm data prepare` reports it once, where audio enters."""
    samples, rate = read_audio(path, sample_rate_hz, mono)
    name = f"{what} {path}" if what else path
    checked = check_audio(samples, rate, name, min_duration_s=min_duration_s, allow_silent=allow_silent,
                          min_duration_reason=min_duration_reason, warn_clipping=False)
    return checked, rate


def _check_finite(samples: np.ndarray, name) -> None:
    finite = np.isfinite(samples)
    if not finite.all():
        bad = int((~finite).sum())
        raise InvalidAudioError(f"{name}: {bad} samples are NaN or Inf (first at sample "
                                f"{int(np.argwhere(~finite)[0][-1])}); the file or its decoder is broken")


def check_audio(samples: np.ndarray, sample_rate_hz: int, name: str | Path,
                min_duration_s: float | None = None, allow_silent: bool = False,
                min_duration_reason: str = "excerpt", warn_clipping: bool = True) -> np.ndarray:
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
    _check_finite(samples, name)
    duration_s = samples.shape[-1] / sample_rate_hz
    if min_duration_s is not None and duration_s + 1e-9 < min_duration_s:
        raise InvalidAudioError(f"{name}: {duration_s:.2f} s long, shorter than the requested "
                                f"{min_duration_s:g} s {min_duration_reason}")
    peak = float(np.abs(samples).max())
    if peak < SILENCE_PEAK and not allow_silent:
        raise InvalidAudioError(f"{name}: all silent (peak {peak:.2e}, below -100 dBFS)")
    clipped = int((np.abs(samples) >= CLIP_LEVEL).sum()) if warn_clipping else 0
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
