"""KV-cached against full-recompute sampling, same weights, one run: tokens/s, batch size, memory.

The coarse stage of a 10 s excerpt: 1 000 conditioning tokens (2 x 500 semantic frames), then
3 000 interleaved target tokens (4 x 750), with classifier-free guidance (2 rows per excerpt).

Full recompute costs O(T^2) per token, so by default it is timed at `--recompute-points` evenly
spaced prefix lengths and its total is the mean step time times the 3 000 steps (the step time
grows linearly with the prefix, so evenly spaced points give an unbiased estimate; the table says
"estimated"). `--full-recompute` times every step instead.

    .venv/bin/python benchmarks/sampling_kv_cache.py                       # tiny, CPU, ~1-2 min
    .venv/bin/python benchmarks/sampling_kv_cache.py --preset base --device cuda --full-recompute
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import torch

from hafm_core.model import HafmLM, KVCache, stage_config
from hafm_core.patterns import BOS_ID
from hafm_core.sampling import SamplingParams, draw_uniforms, generate, sample_next


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_cached(model: HafmLM, cond: torch.Tensor, n_frames: int, device: str) -> float:
    _sync(device)
    start = time.perf_counter()
    generate(model, cond, n_frames, seeds=list(range(cond.shape[0])))
    _sync(device)
    return time.perf_counter() - start


@torch.no_grad()
def time_recompute_steps(model: HafmLM, cond: torch.Tensor, n_frames: int, slots: list[int],
                         device: str) -> list[float]:
    """Seconds of one full-recompute sampling step (guided, batch of cond) at each target slot."""
    layout = model.layout
    batch = cond.shape[0]
    cond_tokens = layout.cond_tokens(cond.to(device))
    cond_tokens = torch.cat([cond_tokens, torch.full_like(cond_tokens, 1)])  # cond + NULL rows
    n_slots = n_frames * layout.n_target
    target = torch.randint(0, layout.target_cards[0], (2 * batch, n_slots), device=device)
    target += layout.target_offsets[0]
    tokens = torch.cat([cond_tokens, torch.full_like(target[:, :1], BOS_ID), target[:, :-1]], dim=1)
    positions = layout.positions(cond.shape[2], n_slots, device=device)
    segments = layout.segments(cond_tokens.shape[1], n_slots, device=device)
    uniforms = draw_uniforms(range(batch), n_slots, device)
    params, times = SamplingParams(), []
    for slot in slots:
        end = cond_tokens.shape[1] + slot + 1
        _sync(device)
        start = time.perf_counter()
        hidden = model(tokens[:, :end], positions[:end], segments[:end])[:, -1]
        logits = model.head_logits(hidden, slot % layout.n_target).float()
        logits = logits[batch:] + params.guidance_scale * (logits[:batch] - logits[batch:])
        sample_next(logits, params, uniforms[:, slot])
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", choices=["tiny", "small", "base"])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-sizes", default="1,4")
    parser.add_argument("--recompute-points", type=int, default=6)
    parser.add_argument("--full-recompute", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = HafmLM(stage_config("coarse", args.preset)).to(args.device).eval()
    cond_frames = int(round(args.seconds * 50))
    n_frames = model.layout.target_frames(cond_frames)
    n_slots = n_frames * model.layout.n_target
    cond = torch.randint(0, 500, (1, 2, cond_frames))
    print(f"coarse stage, preset {args.preset} ({model.num_parameters() / 1e6:.2f} M parameters), "
          f"device {args.device}, {torch.get_num_threads()} CPU threads")
    print(f"{args.seconds:g} s excerpt: {2 * cond_frames} conditioning tokens, {n_slots} target tokens, "
          "guidance on (2 rows per excerpt)")

    time_cached(model, cond[:, :, :10], model.layout.target_frames(10), args.device)  # warm-up
    cached_s = time_cached(model, cond, n_frames, args.device)
    if args.full_recompute:
        slots = list(range(n_slots))
    else:
        count = max(2, args.recompute_points)
        slots = [round(i * (n_slots - 1) / (count - 1)) for i in range(count)]
    step_times = time_recompute_steps(model, cond, n_frames, slots, args.device)
    recompute_s = sum(step_times) if args.full_recompute else sum(step_times) / len(step_times) * n_slots
    how = "measured" if args.full_recompute else f"estimated from {len(slots)} prefix lengths"
    print(f"\n{'sampler':<16}{'seconds':>10}{'tokens/s':>12}")
    print(f"{'KV cache':<16}{cached_s:>10.2f}{n_slots / cached_s:>12.1f}")
    print(f"{'full recompute':<16}{recompute_s:>10.2f}{n_slots / recompute_s:>12.1f}   ({how})")
    print(f"speed-up of the KV cache: {recompute_s / cached_s:.1f}x")

    print(f"\n{'batch':>6}{'tokens/s':>12}{'per excerpt':>13}{'KV cache MiB':>14}{'peak MiB':>10}")
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        batch_cond = torch.randint(0, 500, (batch, 2, cond_frames))
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        seconds = time_cached(model, batch_cond, n_frames, args.device)
        cache = KVCache(model.config, 2 * batch, 2 * cond_frames + n_slots, "meta", torch.float32)
        cache_mib = sum(t.numel() * 4 for t in cache.keys + cache.values) / 2**20
        if args.device.startswith("cuda"):
            peak_mib = torch.cuda.max_memory_allocated() / 2**20
        else:
            peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS
        print(f"{batch:>6}{batch * n_slots / seconds:>12.1f}{n_slots / seconds:>13.1f}"
              f"{cache_mib:>14.1f}{peak_mib:>10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
