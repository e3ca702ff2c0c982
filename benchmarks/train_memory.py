"""Peak GPU memory of one cascade stage's training step: attention as one masked call against
chunked attention (and activation checkpointing), same weights and batch, side by side in one run.

The default target is issue #17's: the fine stage at `base`, a batch of 8 excerpts of 10 s
(3 000 conditioning tokens, then 3 000 target steps with the flat pattern or 753 with the delay
pattern, `hafm train`'s default), bf16 autocast and AdamW as `hafm train` uses them on CUDA. Each variant starts from the same initial weights and batch, so their losses
must agree step by step (up to bf16 rounding); the table prints the largest difference.
A variant that runs out of memory is reported as such and the others still run.

    python benchmarks/train_memory.py --device cuda                       # base, fine, batch 8
    .venv/bin/python benchmarks/train_memory.py      # no GPU: small, batch 2 of 4 s (peak RSS is not split)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hafm_core import constants  # noqa: E402
from hafm_core.model import HafmLM, stage_config  # noqa: E402

VARIANTS = {  # name -> (attn_chunk, activation_checkpointing)
    "chunked 512 + block checkpointing": (512, True),
    "chunked 512": (512, False),
    "one masked call (old)": (0, False),
}


def run_variant(config, state: dict, cond: torch.Tensor, target: torch.Tensor, chunk: int, recompute: bool,
                steps: int, device: torch.device) -> dict:
    with torch.device(device):
        model = HafmLM(config)
    model.load_state_dict(state)
    model.attn_chunk, model.activation_checkpointing = chunk, recompute
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    losses, start = [], time.perf_counter()
    try:
        for _ in range(steps):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                loss, _ = model.loss(cond, target)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
    except torch.OutOfMemoryError:
        return {"oom": True, "losses": losses}
    finally:
        del model, optimizer
    seconds = (time.perf_counter() - start) / steps
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else float("nan")
    return {"oom": False, "losses": losses, "peak_gib": peak, "s_per_step": seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default=None, choices=["tiny", "small", "base"],
                        help="default: base on CUDA, small on CPU")
    parser.add_argument("--stage", default="fine", choices=["semantic", "coarse", "fine"])
    parser.add_argument("--pattern", default=constants.DEFAULT_CODEBOOK_PATTERN, choices=constants.CODEBOOK_PATTERNS,
                        help="codebook pattern (default: hafm train's); 10 s of fine: 3 000 + 3 000 tokens "
                             "flat, 3 000 + 753 delay")
    parser.add_argument("--batch", type=int, default=None, help="default: 8 on CUDA, 2 on CPU")
    parser.add_argument("--seconds", type=float, default=None, help="default: 10 on CUDA, 4 on CPU")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--dropout", type=float, help="override the preset's dropout (0: losses comparable exactly)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names from the table")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    args.preset = args.preset or ("base" if cuda else "small")
    args.batch = args.batch or (8 if cuda else 2)
    args.seconds = args.seconds or (constants.EXCERPT_DURATION_S if cuda else 4.0)
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    overrides = {"pattern": args.pattern} | ({} if args.dropout is None else {"dropout": args.dropout})
    config = stage_config(args.stage, args.preset, **overrides)
    torch.manual_seed(0)
    state = {k: v.clone() for k, v in HafmLM(config).state_dict().items()}
    layout = config.layout
    cond_rate, target_rate = layout.cond_frame_rate_hz, layout.target_frame_rate_hz
    cond_frames, target_frames = int(args.seconds * cond_rate), int(args.seconds * target_rate)
    generator = torch.Generator().manual_seed(1)
    cond_codes = torch.randint(0, layout.cond_streams[0].card, (args.batch, layout.n_cond, cond_frames),
                               generator=generator)
    cond = layout.cond_tokens(cond_codes).to(device)
    target = torch.randint(0, layout.target_cards[0], (args.batch, layout.n_target, target_frames),
                           generator=generator).to(device)
    print(f"train_memory: {args.stage} stage, preset {args.preset} ({sum(v.numel() for v in state.values()) / 1e6:.0f} M "
          f"parameters), {args.pattern} pattern, batch {args.batch} x {cond.shape[1] + layout.n_slots(target_frames)} tokens, "
          f"{card}, torch {torch.__version__}, {'bf16 autocast, ' if device.type == 'cuda' else ''}AdamW, "
          f"{args.steps} steps, dropout {config.dropout}")
    print(f"\n{'variant':<36}{'peak GiB':>10}{'s/step':>9}{'max |loss - old|':>18}  losses")
    results = {}
    for name in args.variants.split(","):
        chunk, recompute = VARIANTS[name]
        torch.manual_seed(2)  # the same dropout stream for every variant (chunking still draws it differently)
        results[name] = run_variant(config, state, cond, target, chunk, recompute, args.steps, device)
    reference = results.get("one masked call (old)")
    for name, result in results.items():
        if result["oom"]:
            print(f"{name:<36}{'out of memory':>19}")
            continue
        if reference and not reference["oom"]:
            diff = max(abs(a - b) for a, b in zip(result["losses"], reference["losses"]))
        else:
            diff = float("nan")
        print(f"{name:<36}{result['peak_gib']:>10.1f}{result['s_per_step']:>9.2f}{diff:>18.4f}  "
              + ", ".join(f"{x:.4f}" for x in result["losses"]))
    if args.json:
        args.json.write_text(json.dumps({"card": card, "pattern": args.pattern, **results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
