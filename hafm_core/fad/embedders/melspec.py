"""VGGish's log-mel front end in torch, batched (Hershey et al. 2017, `vggish_input.py`).

16 kHz audio -> 25 ms periodic-Hann windows every 10 ms, |rfft| over 512 points, 64 HTK-mel
bands from 125 to 7500 Hz (triangles in the mel domain, DC bin zeroed, as `mel_features.py`),
log(mel + 0.01); examples are 96 frames (0.96 s) of 64 bands.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

SAMPLE_RATE_HZ = 16_000
WINDOW_SAMPLES = 400  # 25 ms
HOP_SAMPLES = 160  # 10 ms
FFT_SIZE = 512
N_MELS = 64
MEL_LOW_HZ = 125.0
MEL_HIGH_HZ = 7500.0
LOG_OFFSET = 0.01
EXAMPLE_FRAMES = 96  # 0.96 s


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


@functools.cache
def mel_matrix() -> torch.Tensor:
    """float32 [257, 64]: spectrogram bins -> mel bands, as VGGish's `spectrogram_to_mel_matrix`."""
    n_bins = FFT_SIZE // 2 + 1
    bins_mel = _hz_to_mel(np.linspace(0.0, SAMPLE_RATE_HZ / 2, n_bins))
    edges = np.linspace(_hz_to_mel(MEL_LOW_HZ), _hz_to_mel(MEL_HIGH_HZ), N_MELS + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins_mel[:, None] - lower) / (centre - lower)
    falling = (upper - bins_mel[:, None]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0
    return torch.from_numpy(weights.astype(np.float32))


@functools.cache
def _window() -> torch.Tensor:
    return torch.hann_window(WINDOW_SAMPLES, periodic=True, dtype=torch.float32)


def log_mel(audio: torch.Tensor) -> torch.Tensor:
    """audio: float32 [B, n] at 16 kHz -> log-mel float32 [B, F, 64], F = 1 + (n - 400) // 160."""
    frames = audio.unfold(-1, WINDOW_SAMPLES, HOP_SAMPLES)  # (B, F, 400)
    spectrum = torch.fft.rfft(frames * _window().to(audio.device), n=FFT_SIZE).abs()  # (B, F, 257)
    return torch.log(spectrum @ mel_matrix().to(audio.device) + LOG_OFFSET)


def examples(mel: torch.Tensor, hop_frames: int) -> torch.Tensor:
    """mel: [B, F, 64] -> examples [B, E, 96, 64], E = 1 + (F - 96) // hop_frames (0 if F < 96)."""
    if mel.shape[1] < EXAMPLE_FRAMES:
        return mel.new_zeros((mel.shape[0], 0, EXAMPLE_FRAMES, N_MELS))
    return mel.unfold(1, EXAMPLE_FRAMES, hop_frames).transpose(2, 3)  # (B, E, 96, 64)
