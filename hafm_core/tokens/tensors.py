"""Accept numpy arrays or torch tensors at the tokenizer boundary and give back the same kind.

numpy in -> numpy out (on the CPU); a tensor in -> a tensor out on the input's device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class InputKind:
    is_numpy: bool
    device: torch.device


def as_audio_batch(audio, device: torch.device | str, name: str = "audio") -> tuple[torch.Tensor, InputKind]:
    """float32 tensor [B, n] on `device` from a [B, n] (or [n]) array or tensor."""
    if isinstance(audio, np.ndarray):
        kind = InputKind(True, torch.device("cpu"))
        tensor = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    elif isinstance(audio, torch.Tensor):
        kind = InputKind(False, audio.device)
        tensor = audio.to(torch.float32)
    else:
        raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(audio).__name__}")
    if tensor.ndim == 1:
        tensor = tensor[None]
    if tensor.ndim != 2:
        raise ValueError(f"{name} must have shape [B, n], got {tuple(tensor.shape)}")
    return tensor.to(device), kind


def as_input_kind(result: torch.Tensor, kind: InputKind):
    if kind.is_numpy:
        return result.detach().cpu().numpy()
    return result.detach().to(kind.device)
