"""On a GPU: the CUDA-graph decoder against the eager static step and the growing KV cache,
token for token, at `small` (fp32), before any timing is trusted.

    python benchmarks/cuda_decoder_check.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hafm_core.model import HafmLM, stage_config  # noqa: E402
from hafm_core.sampling import SamplingParams, generate  # noqa: E402


def main() -> int:
    if not torch.cuda.is_available():
        print("cuda_decoder_check: no CUDA device here; the CPU tests (tests/model/test_decoding.py) cover the eager step")
        return 0
    device = torch.device("cuda")
    print(f"cuda_decoder_check: {torch.cuda.get_device_name(device)}, torch {torch.__version__}")
    worst = 1.0
    for stage in ("semantic", "coarse", "fine"):
        torch.manual_seed(0)
        with torch.device(device):
            model = HafmLM(stage_config(stage, "small")).eval()
        cond = torch.randint(0, 500, (4, model.layout.n_cond, 50), generator=torch.Generator().manual_seed(1))
        for name, params in (("default", SamplingParams()), ("greedy", SamplingParams(temperature=0.0))):
            graph = generate(model, cond, 60, [1, 2, 3, 4], params)
            eager = generate(model, cond, 60, [1, 2, 3, 4], params, cuda_graph=False)
            cached = generate(model, cond, 60, [1, 2, 3, 4], params, decoder="cached")
            agree_eager = float((graph == eager).float().mean())
            agree_cached = float((graph == cached).float().mean())
            worst = min(worst, agree_eager, agree_cached)
            print(f"{stage:<9}{name:<8} graph = eager static: {agree_eager:.4f}   graph = cached: {agree_cached:.4f}")
    print(f"worst agreement {worst:.4f}")
    return 0 if worst > 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
