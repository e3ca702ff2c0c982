"""Benchmark: batched against per-file embedding, for each FAD embedder, side by side.

Batched: `embed_batch(clips)` runs all clips' frames through the network together; per-file:
`embed(clip)` once per clip. VGGish runs on a random state dict in torchvggish's layout (the
real file cannot be downloaded here; the cost does not depend on the weights' values).

    .venv/bin/python benchmarks/fad_embedding.py                    # 16 clips of 4 s
    .venv/bin/python benchmarks/fad_embedding.py --clips 64 --seconds 10 --embedders vggish crepe
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hafm_core.audio import resample
from hafm_core.fad.embedders.crepe import CrepeEmbedder
from hafm_core.fad.embedders.logmel import LogMelEmbedder
from hafm_core.fad.embedders.vggish import VGGish, VGGishEmbedder
from hafm_core.synth import synthesize_multitrack


def random_vggish_file(folder: Path) -> Path:
    model = VGGish()  # torchvggish's layout, random init
    path = folder / "vggish-10086976.pth"
    torch.save({k: v.half() for k, v in model.state_dict().items()}, path)
    return path


def build(name: str, folder: Path):
    if name == "logmel":
        return LogMelEmbedder(device="cpu")
    if name == "crepe":
        return CrepeEmbedder(device="cpu")
    return VGGishEmbedder(device="cpu", path=random_vggish_file(folder))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--embedders", nargs="+", default=["logmel", "crepe", "vggish"])
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}; {args.clips} clips of {args.seconds:g} s")
    print(f"{'embedder':>10} {'per-file s':>11} {'batched s':>10} {'speed-up':>9} {'audio h/min':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.embedders:
            embedder = build(name, Path(tmp))
            clips = [resample(synthesize_multitrack(seed, args.seconds, 44_100).accompaniment * 0.5,
                              44_100, embedder.sample_rate_hz) for seed in range(args.clips)]
            embedder.embed(clips[0])  # warm-up
            start = time.perf_counter()
            single = [embedder.embed(clip) for clip in clips]
            per_file = time.perf_counter() - start
            start = time.perf_counter()
            batched = embedder.embed_batch(clips)
            together = time.perf_counter() - start
            assert all(math.isclose(float(np.abs(a - b).max()), 0.0, abs_tol=1e-3) for a, b in zip(single, batched))
            hours_per_min = args.clips * args.seconds / 3600 / (together / 60)
            print(f"{name:>10} {per_file:>11.3f} {together:>10.3f} {per_file / together:>8.2f}x {hours_per_min:>12.3f}")


if __name__ == "__main__":
    main()
