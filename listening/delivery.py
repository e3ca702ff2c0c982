"""Per-delivery copies of a stimulus: every audio token gets its own bytes.

A rendered clip served byte-identical to every listener is its own shareable id: colluding
listeners pool content hashes and learn which clip recurs (the system every comparison
shares; the repeated pair of a catch trial; the manipulated clip that only catch trials
use). So each delivery is re-rendered from the stored clip, seeded by the delivery's audio
token (the same token always gets the same bytes, so byte ranges of one delivery agree):
- a sub-sample offset (a fractional delay, uniform in [0, 1) sample),
- a random amount of leading and trailing silence (0 to `MAX_PAD_S` each), so the file size
  and duration change too,
- TPDF dither (two uniform LSB-wide noises) before requantising to 16 bits.
None of these is audible, and the integrated loudness stays within 0.1 LU of the stored clip's
(checked in tests/listening/test_per_delivery_stimuli.py).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import io
import wave
from pathlib import Path

import numpy as np
from django.conf import settings

from listening.stimuli import wav_bytes_pcm16

MAX_PAD_S = 0.03
FULL_SCALE = 32768.0


def delivery_seed(token: str) -> int:
    """A seed only the server can compute from the token (keyed by SECRET_KEY)."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"listening.delivery:{token}".encode(), hashlib.sha256)
    return int.from_bytes(digest.digest()[:8], "little")


def read_pcm16(path: Path) -> tuple[np.ndarray, int]:
    """A PCM16 WAV (as the study writes them) -> (float64 [C, n] in [-1, 1), sample rate)."""
    with wave.open(str(path), "rb") as reader:
        channels, rate = reader.getnchannels(), reader.getframerate()
        frames = reader.readframes(reader.getnframes())
    pcm = np.frombuffer(frames, dtype="<i2").reshape(-1, channels).T
    return pcm.astype(np.float64) / FULL_SCALE, rate


def fractional_delay(samples: np.ndarray, delay: float) -> np.ndarray:
    """Delay [C, n] by `delay` samples (a linear phase ramp in the frequency domain)."""
    n = samples.shape[1]
    spectrum = np.fft.rfft(samples, axis=1)
    spectrum *= np.exp(-2j * np.pi * np.fft.rfftfreq(n) * delay)
    return np.fft.irfft(spectrum, n, axis=1)


def perturb(samples: np.ndarray, sample_rate_hz: int, seed: int) -> np.ndarray:
    """One delivery of [C, n]: padded, sub-sample shifted, dithered -> int16-ready float [C, m]."""
    rng = np.random.default_rng(seed)
    max_pad = int(MAX_PAD_S * sample_rate_hz)
    lead, trail = (int(v) for v in rng.integers(1, max_pad + 1, size=2))
    padded = np.pad(samples, ((0, 0), (lead, trail)))
    shifted = fractional_delay(padded, float(rng.uniform(0.0, 1.0)))
    lsb = 1.0 / 32767.0  # the writer's scale (stimuli.wav_bytes_pcm16)
    dither = (rng.uniform(-0.5, 0.5, shifted.shape) + rng.uniform(-0.5, 0.5, shifted.shape)) * lsb
    return shifted + dither


@functools.lru_cache(maxsize=8)
def delivered_wav(path: Path, token: str) -> bytes:
    """The bytes of one delivery of the clip at `path` (a browser fetches ranges of it repeatedly)."""
    samples, rate = read_pcm16(path)
    return wav_bytes_pcm16(perturb(samples, rate, delivery_seed(token)), rate)


def wav_samples(data: bytes) -> tuple[np.ndarray, int]:
    """Decode WAV bytes (as served) -> (float64 [C, n], rate); for checks and tests."""
    with wave.open(io.BytesIO(data), "rb") as reader:
        channels, rate = reader.getnchannels(), reader.getframerate()
        frames = reader.readframes(reader.getnframes())
    return np.frombuffer(frames, dtype="<i2").reshape(-1, channels).T.astype(np.float64) / FULL_SCALE, rate
