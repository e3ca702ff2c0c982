"""The static decoder against the growing KV cache and full recompute, token for token, for both
codebook patterns, before any timing is trusted.

On CUDA (`small`, fp32) the static decoder replays a captured CUDA graph; it is also compared
with the same step run eagerly. Without a GPU the same comparisons run on CPU (`tiny` by
default: there the static step is always eager), so the script is checked wherever it runs.
Exits 1 when an agreement is below `--min-agreement` (1.0 on CPU, where the tokens are
identical; 0.9 on CUDA, where kernels of other shapes may round differently and one flipped draw
parts the sequences).

    python benchmarks/cuda_decoder_check.py                     # CUDA if present, else CPU at tiny
    python benchmarks/cuda_decoder_check.py --patterns delay --frames 40
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hafm_core import constants  # noqa: E402
from hafm_core.model import HafmLM, stage_config  # noqa: E402
from hafm_core.sampling import SamplingParams, generate  # noqa: E402

SEEDS = [1, 2, 3, 4]
PARAMS = {"default": SamplingParams(), "greedy": SamplingParams(temperature=0.0)}


def decoders(cuda: bool) -> dict[str, dict]:
    """name -> generate() keyword arguments; the first is the one the others are compared with."""
    graph = {"graph": {}, "eager static": {"cuda_graph": False}} if cuda else {"static": {}}
    return {**graph, "cached": {"decoder": "cached"}, "recompute": {"decoder": "recompute"}}


def check_pattern(pattern: str, preset: str, n_frames: int, device: torch.device) -> float:
    """Print one line per stage and sampling setting; returns the worst agreement."""
    worst = 1.0
    kinds = decoders(device.type == "cuda")
    first, *others = kinds
    for stage in ("semantic", "coarse", "fine"):
        torch.manual_seed(0)
        with torch.device(device):
            model = HafmLM(stage_config(stage, preset, pattern=pattern)).eval()
        cond = torch.randint(0, constants.KMEANS_CLUSTERS, (len(SEEDS), model.layout.n_cond, n_frames),
                             generator=torch.Generator().manual_seed(1))
        for name, params in PARAMS.items():
            tokens = {kind: generate(model, cond, n_frames, SEEDS, params, **kwargs) for kind, kwargs in kinds.items()}
            agreements = {kind: float((tokens[first] == tokens[kind]).float().mean()) for kind in others}
            worst = min(worst, *agreements.values())
            print(f"{pattern:<7}{stage:<9}{name:<8}"
                  + "   ".join(f"{first} = {kind}: {value:.4f}" for kind, value in agreements.items()))
    return worst


def main(argv: list[str] | None = None) -> int:
    cuda_present = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if cuda_present else "cpu")
    parser.add_argument("--preset", default=None, choices=["tiny", "small", "base"],
                        help="default: small on CUDA, tiny on CPU")
    parser.add_argument("--patterns", default="delay,flat", help="comma-separated, checked in this order")
    parser.add_argument("--frames", type=int, default=None, help="target frames per excerpt (default 40 CUDA, 30 CPU)")
    parser.add_argument("--min-agreement", type=float, default=None, help="default: 0.9 on CUDA, 1.0 on CPU")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    preset = args.preset or ("small" if cuda else "tiny")
    n_frames = args.frames or (40 if cuda else 30)
    threshold = args.min_agreement if args.min_agreement is not None else (0.9 if cuda else 1.0)
    where = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads (no CUDA graph)"
    print(f"cuda_decoder_check: {where}, torch {torch.__version__}, preset {preset}, {len(SEEDS)} excerpts x "
          f"{n_frames} frames, guidance on")
    start, worst = time.perf_counter(), 1.0
    for pattern in args.patterns.split(","):
        worst = min(worst, check_pattern(pattern, preset, n_frames, device))
    print(f"worst agreement {worst:.4f} (needed {threshold:g}), {time.perf_counter() - start:.0f} s")
    return 0 if worst >= threshold else 1


if __name__ == "__main__":
    sys.exit(main())
