"""`vggish`: a PyTorch VGGish that loads torchvggish's `vggish-10086976.pth` (no download).

The network and its state-dict keys are torchvggish's (harritaylor/torchvggish): `features.*`
(six 3x3 convs with four max-pools) and `embeddings.*` (12288 -> 4096 -> 4096 -> 128), on
log-mel examples [96 frames, 64 bands]. The 128-d embedding is taken before PCA and
quantisation. Each protocol reproduces one reference tool's preprocessing and layer (all of
them resample other rates to 16 kHz with soxr, where the tools use resampy or ffmpeg: files
already at 16 kHz are unaffected):

- `vggish-google` (the default): Google's FAD reference, google-research/google-research
  `frechet_audio_distance` (audioset_model.py at commit 02429086, step size 8000). The clip is
  divided by max(0.1, largest sample) (its largest *positive* sample, not |x|), cut into 1 s
  windows every 0.5 s (a last partial window is dropped), and each window gives one example,
  its first 96 log-mel frames. The embedding is vggish_slim's `vggish/embedding`, the linear
  fc2 output (pre-activation). Google's wav reader hands 16-bit PCM to the normaliser in
  integer units, where the 0.1 floor never binds; the floor here is on float samples in
  [-1, 1], as for the float examples of its test files.
- `vggish-fadtk`: microsoft/fadtk's `VGGishModel` defaults (model_loader.py at commit 0b2ba39:
  use_pca=False, use_activation=False): audio read as 16-bit integers and divided by 32768,
  clips shorter than 1 s zero-padded to 1 s, torchvggish's framing (non-overlapping 0.96 s
  examples, no normalisation), pre-activation fc2, embeddings stored as float16.
- `vggish-frechet-audio-distance`: gudgud96/frechet-audio-distance defaults (fad.py and
  utils.py at commit 4a4f192: use_pca=False, use_activation=False, dtype float32): float
  samples, torchvggish's framing, pre-activation fc2, float32 embeddings.
- `vggish-torchvggish`: torchvggish's own `forward` (postprocess off): non-overlapping 0.96 s
  examples, no normalisation, ReLU(fc2).
- `vggish-google-v1`: this project's earlier protocol, kept so older results can be
  reproduced: peak normalisation by max|x| without a floor, Google's framing, ReLU(fc2).
  It matches no reference tool; do not compare it with published numbers.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hafm_core.fad.embedders import base, melspec
from hafm_core.provenance import sha256_file
from hafm_core.weights import weights_path

DIM = 128
WINDOW_SAMPLES = 16_000  # Google's framing: 1 s windows
WINDOW_HOP_SAMPLES = 8_000  # every 0.5 s
GOOGLE_LOUDNESS_FLOOR = 0.1  # divide by max(0.1, largest sample)
BATCH_EXAMPLES = 256


@dataclass(frozen=True)
class Protocol:
    """How one reference tool turns a clip into VGGish embeddings (see the module docstring)."""

    framing: str  # "google": 1 s windows every 0.5 s; "torchvggish": non-overlapping 0.96 s
    normalise: str  # "none", "google" (max(0.1, max x)) or "peak" (max |x|, legacy)
    activation: bool  # ReLU after fc2 (torchvggish) or the linear fc2 output (pre-activation)
    int16_input: bool = False  # samples quantised to 16-bit integers / 32768
    pad_to_samples: int = 0  # shorter clips are zero-padded to this length
    float16_embeddings: bool = False  # embeddings rounded to float16 (as stored by the tool)


PROTOCOL_SPECS = {
    "vggish-google": Protocol("google", "google", activation=False),
    "vggish-fadtk": Protocol("torchvggish", "none", activation=False, int16_input=True,
                             pad_to_samples=16_000, float16_embeddings=True),
    "vggish-frechet-audio-distance": Protocol("torchvggish", "none", activation=False),
    "vggish-torchvggish": Protocol("torchvggish", "none", activation=True),
    "vggish-google-v1": Protocol("google", "peak", activation=True),
}
PROTOCOLS = tuple(PROTOCOL_SPECS)


def prepare(audio: torch.Tensor, spec: Protocol) -> torch.Tensor:
    """Clips float32 [B, n] -> the samples the tool feeds to its log-mel front end [B, n']."""
    if spec.int16_input:
        audio = torch.round(audio * 32768.0).clamp(-32768.0, 32767.0) / 32768.0
    if audio.shape[1] < spec.pad_to_samples:
        audio = torch.nn.functional.pad(audio, (0, spec.pad_to_samples - audio.shape[1]))
    if spec.normalise == "google":
        audio = audio / audio.amax(dim=1, keepdim=True).clamp_min(GOOGLE_LOUDNESS_FLOOR)
    elif spec.normalise == "peak":
        audio = audio / audio.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
    return audio


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

    def forward(self, x: torch.Tensor, activation: bool = True) -> torch.Tensor:
        """activation=False: the linear fc2 output, before the last ReLU (Google's embedding)."""
        x = self.features(x)  # (N, 512, 6, 4)
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # (N, 6 * 4 * 512), as TF's NHWC flatten
        return self.embeddings(x) if activation else self.embeddings[:-1](x)


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
        self.spec = PROTOCOL_SPECS[protocol]
        if self.spec.pad_to_samples:
            self.min_duration_s = 0.0  # padded: every clip gives at least one example
        elif self.spec.framing == "google":
            self.min_duration_s = WINDOW_SAMPLES / self.sample_rate_hz
        else:
            frames = melspec.EXAMPLE_FRAMES - 1
            self.min_duration_s = (melspec.WINDOW_SAMPLES + frames * melspec.HOP_SAMPLES) / self.sample_rate_hz

    def _examples(self, audio: torch.Tensor) -> torch.Tensor:
        """audio: float32 [B, n] -> examples [B, E, 96, 64] under this protocol's framing."""
        audio = prepare(audio, self.spec)
        if self.spec.framing == "torchvggish":
            if audio.shape[1] < melspec.WINDOW_SAMPLES:
                return audio.new_zeros((audio.shape[0], 0, melspec.EXAMPLE_FRAMES, melspec.N_MELS))
            return melspec.examples(melspec.log_mel(audio), melspec.EXAMPLE_FRAMES)
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
        embedded = torch.cat([self.model(chunk, self.spec.activation) for chunk in flat.split(BATCH_EXAMPLES)])
        if self.spec.float16_embeddings:
            embedded = embedded.half()
        return embedded.reshape(len(batch), n_examples, DIM).float().cpu().numpy()
