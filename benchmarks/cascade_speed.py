"""Whole-cascade decoding speed: the static (fixed-shape, CUDA-graph) decoder against the growing
KV cache it replaces, side by side in one run, per codebook pattern, stage, batch size and dtype.

One 10 s excerpt is 500 semantic steps, then 3 000 coarse and 3 000 fine steps with the flat
pattern (codebooks flattened frame by frame) or 753 and 753 with the delay pattern (a frame's 4
codebooks in one step), guidance on (2 rows per excerpt). Weights are random (seeded): the speed
does not depend on them. Each stage's output conditions the next, as in `hafm generate`.

"real time" is audio seconds per wall second for the whole batch (> 1: faster than real time).
The old decoder is slow at `base` on a GPU (about 18 ms a step), so by default it is timed on
two prefixes of each stage and extrapolated to the whole stage (marked "*"); pass
`--old-full` to time it on everything, `--old-dtypes ''` to skip it. Token agreement of bf16/fp16
with fp32 is measured two ways: free-running (same seeds: after the first differing token the
sequences part) and teacher-forced (top-1 of the next token on the fp32 sequence). With `--json`
the rows are rewritten after each one, so a run cut short by a timeout keeps what it measured.

    .venv/bin/python benchmarks/cascade_speed.py                         # small, CPU: everyday figure
    python benchmarks/cascade_speed.py --preset base --device cuda --patterns delay,flat \
        --batch-sizes 1,16 --dtypes float32,bfloat16,float16 --old-batch-sizes 1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hafm_core import constants  # noqa: E402
from hafm_core.data.files import write_json_atomic  # noqa: E402
from hafm_core.model import HafmLM, stage_config  # noqa: E402
from hafm_core.sampling import SamplingParams, generate  # noqa: E402
from hafm_core.systems import DTYPES  # noqa: E402

STAGES = ("semantic", "coarse", "fine")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn) -> tuple[float, object]:
    device = fn.device
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - start, out


class Call:
    """generate() of one stage with fixed arguments, remembering its device for timing."""

    def __init__(self, model: HafmLM, cond: torch.Tensor, n_frames: int, seeds: list[int], decoder: str):
        self.model, self.cond, self.n_frames, self.seeds, self.decoder = model, cond, n_frames, seeds, decoder
        self.device = next(model.parameters()).device

    def __call__(self) -> torch.Tensor:
        return generate(self.model, self.cond, self.n_frames, self.seeds, SamplingParams(), decoder=self.decoder)


def build_models(preset: str, device: torch.device, pattern: str) -> dict[str, HafmLM]:
    models = {}
    for i, stage in enumerate(STAGES):
        torch.manual_seed(i)
        with torch.device(device):  # initialise on the device: 300 M parameters are slow on CPU
            models[stage] = HafmLM(stage_config(stage, preset, pattern=pattern)).eval()
    return models


def stage_inputs(stage: str, outputs: dict[str, torch.Tensor], cond_frames: int, batch: int) -> tuple[torch.Tensor, int]:
    """(local conditioning ids [B, n_cond, T_c], target frames) of `stage` in the cascade."""
    if stage == "semantic":
        generator = torch.Generator().manual_seed(1234)
        vocal = torch.randint(0, constants.KMEANS_CLUSTERS, (batch, 1, cond_frames), generator=generator)
        outputs["vocal"] = vocal
        return vocal, cond_frames
    if stage == "coarse":
        return torch.cat([outputs["vocal"], outputs["semantic"].cpu()], dim=1), cond_frames * 3 // 2
    return outputs["coarse"].cpu(), outputs["coarse"].shape[2]


def time_old(call: Call, full: bool, points: tuple[float, float]) -> tuple[float, bool]:
    """Seconds of the old decoder for the whole stage (measured, or extrapolated from two prefixes)."""
    if full:
        return _timed(call)[0], False
    lengths = [max(2, int(call.n_frames * p)) for p in points]
    times = []
    for frames in lengths:
        short = Call(call.model, call.cond, frames, call.seeds, "cached")
        times.append(_timed(short)[0])
    per_frame = (times[1] - times[0]) / (lengths[1] - lengths[0])
    return times[0] + per_frame * (call.n_frames - lengths[0]), True


@torch.no_grad()
def teacher_forced_agreement(model32: HafmLM, model_low: HafmLM, cond: torch.Tensor, codes: torch.Tensor) -> float:
    """Share of next-token top-1 predictions equal between fp32 and a lower precision."""
    layout = model32.layout
    device = next(model32.parameters()).device
    cond_ids = layout.cond_tokens(cond.to(device))
    for model in (model32, model_low):
        model.attn_chunk = 512  # never a [B, H, T, T] mask
    top32 = model32.target_logits(cond_ids, codes.to(device)).argmax(-1)
    top_low = model_low.target_logits(cond_ids, codes.to(device)).float().argmax(-1)
    for model in (model32, model_low):
        model.attn_chunk = 0
    return float((top32 == top_low).float().mean())


def cascade_models(base_models: dict[str, HafmLM], dtype_name: str, device: torch.device) -> dict[str, HafmLM]:
    """The fp32 models, or copies of them in `dtype_name` (the same weights, rounded)."""
    if dtype_name == "float32":
        return base_models
    models = {}
    for stage, model in base_models.items():
        with torch.device(device):
            low = HafmLM(model.config)
        low.load_state_dict(model.state_dict())
        models[stage] = low.to(DTYPES[dtype_name]).eval()
    return models


def _fmt(value: float, width: int, spec: str = ".2f", suffix: str = "") -> str:
    """A table cell; "-" where nothing was measured (NaN)."""
    return f"{'-':>{width}}" if value != value else f"{format(value, spec) + suffix:>{width}}"


HEADER = (f"{'pattern':<8}{'dtype':<9}{'batch':>6}{'stage':>10}{'steps':>7}{'old s':>10}{'new s':>9}"
          f"{'speed-up':>10}{'new ms/step':>13}")


def print_row(row: dict) -> None:
    mark = "*" if row["old_estimated"] and row["old_s"] == row["old_s"] else " "
    line = (f"{row['pattern']:<8}{row['dtype']:<9}{row['batch']:>6}{row['stage']:>10}"
            f"{row.get('steps', ''):>7}{_fmt(row['old_s'], 9)}{mark}{_fmt(row['new_s'], 9)}"
            f"{_fmt(row['old_s'] / row['new_s'], 9, '.1f', 'x')} ")
    if row["stage"] == "cascade":
        print(line + f"  real time: old {_fmt(row['real_time_old'], 0, '.2f', 'x')}, "
                     f"new {row['real_time_new']:.2f}x")
        return
    line += f"{row['new_ms_per_step']:>12.2f}"
    if "teacher_forced_agreement" in row:
        line += (f"   agreement free {row['free_running_agreement']:.3f}, "
                 f"teacher-forced {row['teacher_forced_agreement']:.4f}")
    print(line)


def measure_pattern(args, pattern: str, device: torch.device, card: str, emit) -> None:
    """Every (dtype, batch) cascade of one codebook pattern; `emit(row)` as each row is measured."""
    cond_frames = int(round(args.seconds * constants.SEMANTIC_FRAME_RATE_HZ))
    base_models = build_models(args.preset, device, pattern)
    print(f"\n{pattern} pattern: " + ", ".join(f"{s} {m.num_parameters() / 1e6:.1f} M" for s, m in base_models.items())
          + "\n" + HEADER)
    # Warm-up: kernels, allocator, the graph path.
    for decoder in ("static", "cached"):
        Call(base_models["coarse"], torch.zeros(1, 2, 8, dtype=torch.long), 8, [0], decoder)()
    reference = {}
    for dtype_name in args.dtypes.split(","):
        models = cascade_models(base_models, dtype_name, device)
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            seeds = list(range(batch))
            outputs: dict[str, torch.Tensor] = {}
            totals = {"old": 0.0, "new": 0.0}
            estimated = False
            time_old_here = dtype_name in args.old_dtypes.split(",") and (
                not args.old_batch_sizes or str(batch) in args.old_batch_sizes.split(","))
            common = {"card": card, "preset": args.preset, "pattern": pattern, "dtype": dtype_name, "batch": batch}
            for stage in STAGES:
                cond, n_frames = stage_inputs(stage, outputs, cond_frames, batch)
                new_s, codes = _timed(Call(models[stage], cond, n_frames, seeds, "static"))
                outputs[stage] = codes
                steps = models[stage].layout.n_slots(n_frames)
                old_s = float("nan")
                if time_old_here:
                    old_s, est = time_old(Call(models[stage], cond, n_frames, seeds, "cached"), args.old_full,
                                          args.prefixes)
                    estimated |= est
                totals["old"] += old_s
                totals["new"] += new_s
                row = {**common, "stage": stage, "steps": steps, "old_s": old_s, "old_estimated": estimated,
                       "new_s": new_s, "new_ms_per_step": 1000 * new_s / steps}
                if dtype_name == "float32":
                    reference[(batch, stage)] = (cond, codes)
                elif (batch, stage) in reference:
                    cond32, codes32 = reference[(batch, stage)]
                    row["free_running_agreement"] = float((codes.cpu() == codes32.cpu()).float().mean())
                    row["teacher_forced_agreement"] = teacher_forced_agreement(
                        base_models[stage], models[stage], cond32[:1], codes32[:1])
                emit(row)
            audio_s = args.seconds * batch
            emit({**common, "stage": "cascade", "old_s": totals["old"], "old_estimated": estimated,
                  "new_s": totals["new"], "real_time_old": audio_s / totals["old"],
                  "real_time_new": audio_s / totals["new"]})
        del models
    del base_models
    if device.type == "cuda":
        torch.cuda.empty_cache()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small", choices=["tiny", "small", "base"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seconds", type=float, default=constants.EXCERPT_DURATION_S)
    parser.add_argument("--patterns", default=constants.DEFAULT_CODEBOOK_PATTERN,
                        help=f"comma-separated codebook patterns of all three stages, from "
                             f"{','.join(constants.CODEBOOK_PATTERNS)} (default: the default pattern)")
    parser.add_argument("--batch-sizes", default="1")
    parser.add_argument("--dtypes", default="float32", help=f"comma-separated, from {','.join(DTYPES)}")
    parser.add_argument("--old-full", action=argparse.BooleanOptionalAction, default=None,
                        help="time the old decoder on whole stages (default on CPU; on CUDA it is extrapolated)")
    parser.add_argument("--old-prefixes", default="0.1,0.3", help="two shares of each stage the old decoder is timed on")
    parser.add_argument("--old-dtypes", default="float32",
                        help="dtypes the old decoder is timed in ('' : not at all)")
    parser.add_argument("--old-batch-sizes", default="", help="batch sizes the old decoder is timed at (default: all)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    parser.add_argument("--json", type=Path, help="also write the rows here, rewritten after each row")
    args = parser.parse_args(argv)
    patterns = args.patterns.split(",")
    for name, values, allowed in (("--patterns", patterns, constants.CODEBOOK_PATTERNS),
                                  ("--dtypes", args.dtypes.split(","), DTYPES)):
        unknown = [v for v in values if v not in allowed]
        if unknown:
            parser.error(f"{name}: {unknown[0]!r} is not one of {', '.join(allowed)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    args.prefixes = tuple(float(p) for p in args.old_prefixes.split(","))
    if args.old_full is None:
        args.old_full = device.type != "cuda"
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"cascade_speed: preset {args.preset}, {card}, torch {torch.__version__}, {args.seconds:g} s "
          f"excerpts, guidance on")
    rows: list[dict] = []

    def emit(row: dict) -> None:
        rows.append(row)
        print_row(row)
        if args.json:  # after every row: a run cut short by a timeout keeps what it measured
            write_json_atomic(args.json, rows)

    for pattern in patterns:
        measure_pattern(args, pattern, device, card, emit)
    if device.type == "cuda":
        print(f"\npeak GPU memory: {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB")
    if not args.old_full and args.old_dtypes:
        print(f"* old decoder extrapolated from {args.prefixes[0]:.0%} and {args.prefixes[1]:.0%} prefixes of "
              "each stage (--old-full measures all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
