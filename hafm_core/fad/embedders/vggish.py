"""`vggish`: a PyTorch VGGish that loads torchvggish's `vggish-10086976.pth` (no download).

The network and its state-dict keys are torchvggish's (harritaylor/torchvggish): `features.*`
(six 3x3 convs with four max-pools) and `embeddings.*` (12288 -> 4096 -> 4096 -> 128, ReLU
after each), on log-mel examples [96 frames, 64 bands]. The 128-d embedding is taken before
PCA and quantisation. Two protocols:

- `vggish-google-v1`: Google's FAD reference framing: the clip is peak normalised, cut into
  1 s windows every 0.5 s, and each window gives one 0.96 s example.
- `vggish-torchvggish`: torchvggish's framing: consecutive non-overlapping 0.96 s examples of
  the whole clip, no normalisation.

Input is 16 kHz mono (resampled by `hafm_core.audio` with soxr, not resampy).
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from torch import nn

from hafm_core.fad.embedders import base, melspec
from hafm_core.provenance import sha256_file
from hafm_core.weights import weights_path

PROTOCOLS = ("vggish-google-v1", "vggish-torchvggish")
DIM = 128
WINDOW_SAMPLES = 16_000  # google-v1: 1 s windows
WINDOW_HOP_SAMPLES = 8_000  # every 0.5 s
BATCH_EXAMPLES = 256


def _features() -> nn.Sequential:
    layers: list[nn.Module] = []
    in_channels = 1
    for width in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
        if width == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_channels, width, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            in_channels = width
    return nn.Sequential(*layers)


class VGGish(nn.Module):
    """examples float32 [N, 1, 96, 64] -> embeddings float32 [N, 128] (torchvggish layout)."""

    def __init__(self):
        super().__init__()
        self.features = _features()
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 4 * 6, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, DIM), nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, 512, 6, 4)
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # (N, 6 * 4 * 512), as TF's NHWC flatten
        return self.embeddings(x)


class VGGishEmbedder(base.Embedder):
    name = "vggish"
    dim = DIM
    sample_rate_hz = melspec.SAMPLE_RATE_HZ

    def __init__(self, protocol: str = PROTOCOLS[0], device: str = "cpu", path=None):
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown vggish protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
        self.protocol = protocol
        self.device = torch.device(device)
        path = path or weights_path("vggish")
        self.model = VGGish()
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state, strict=True)  # strict: torchvggish's names and shapes
        self.model = self.model.to(self.device).eval()
        self.weights_hash = sha256_file(path)
        self.code_hash = base.source_hash([base, melspec, sys.modules[__name__]])
        if protocol == "vggish-google-v1":
            self.min_duration_s = WINDOW_SAMPLES / self.sample_rate_hz
        else:
            frames = melspec.EXAMPLE_FRAMES - 1
            self.min_duration_s = (melspec.WINDOW_SAMPLES + frames * melspec.HOP_SAMPLES) / self.sample_rate_hz

    def _examples(self, audio: torch.Tensor) -> torch.Tensor:
        """audio: float32 [B, n] -> examples [B, E, 96, 64] under this protocol's framing."""
        if self.protocol == "vggish-torchvggish":
            if audio.shape[1] < melspec.WINDOW_SAMPLES:
                return audio.new_zeros((audio.shape[0], 0, melspec.EXAMPLE_FRAMES, melspec.N_MELS))
            return melspec.examples(melspec.log_mel(audio), melspec.EXAMPLE_FRAMES)
        peak = audio.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
        audio = audio / peak
        if audio.shape[1] < WINDOW_SAMPLES:
            return audio.new_zeros((audio.shape[0], 0, melspec.EXAMPLE_FRAMES, melspec.N_MELS))
        windows = audio.unfold(1, WINDOW_SAMPLES, WINDOW_HOP_SAMPLES)  # (B, W, 16000)
        mel = melspec.log_mel(windows.reshape(-1, WINDOW_SAMPLES))  # (B * W, 98, 64)
        first = mel[:, : melspec.EXAMPLE_FRAMES]  # one example per window
        return first.reshape(audio.shape[0], windows.shape[1], melspec.EXAMPLE_FRAMES, melspec.N_MELS)

    @torch.inference_mode()
    def embed_equal_length(self, batch: np.ndarray) -> np.ndarray:
        examples = self._examples(torch.from_numpy(batch).to(self.device))  # (B, E, 96, 64)
        n_examples = examples.shape[1]
        if n_examples == 0:
            return np.empty((len(batch), 0, DIM), np.float32)
        flat = examples.reshape(-1, 1, melspec.EXAMPLE_FRAMES, melspec.N_MELS)
        embedded = torch.cat([self.model(chunk) for chunk in flat.split(BATCH_EXAMPLES)])
        return embedded.reshape(len(batch), n_examples, DIM).float().cpu().numpy()
