"""Flat against delay codebook pattern, side by side in one run: what the coarse stage learns in
the same number of steps, and how fast each decodes a 10 s excerpt.

Learning. Both patterns train the coarse stage with `hafm train`'s loop (`train_stage`), same
seed, steps, batch and learning rate, on the same synthetic tokens whose codebooks depend on
each other as residual codebooks do: codebook 1 is a Markov chain (the successor of the previous
frame's id with probability `--keep`, else uniform), and codebook k+1 of a frame is a fixed
function of codebook k of the same frame with probability `--keep`, else uniform. The best
possible accuracy of every codebook is `keep + (1 - keep) / card` (printed as "ceiling"): both
patterns see what that needs (flat: the earlier codebooks of the frame; delay: codebook k of
frame t is the input of the step that predicts codebook k+1 of frame t), so the table shows how
fast each one learns it, not a difference of information. (The delay pattern does lose one
thing the data here does not use: codebook k of frame t cannot see codebooks > k of frame t-1.)

Speed. The coarse stage at `--speed-preset` (random weights, guidance on, static decoder)
generates one excerpt of `--speed-seconds` at batch 1: flat 4 x 750 = 3 000 steps for 10 s,
delay 750 + 3 = 753. Steps per second and seconds per excerpt are measured on this machine.

    .venv/bin/python benchmarks/codebook_pattern.py                 # tiny learning, small speed, CPU
    .venv/bin/python benchmarks/codebook_pattern.py --preset small --steps 600 --device cuda
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hafm_core import constants  # noqa: E402
from hafm_core.model import HafmLM, stage_config  # noqa: E402
from hafm_core.sampling import SamplingParams, generate  # noqa: E402
from hafm_core.train.data import TokenSet, split, stage_examples  # noqa: E402
from hafm_core.train.loop import TrainConfig, train_stage  # noqa: E402

PATTERNS = constants.CODEBOOK_PATTERNS


def synthetic_tokens(n_excerpts: int, semantic_frames: int, card: int, keep: float, seed: int) -> TokenSet:
    """Semantic streams (accompaniment a function of the vocal) and 8 codebooks with the
    dependencies of the module docstring (codebooks 5-8 uniform: the coarse stage ignores them)."""
    generator = torch.Generator().manual_seed(seed)
    n_frames = semantic_frames * 3 // 2

    def noisy(clean: torch.Tensor) -> torch.Tensor:
        replaced = torch.rand(clean.shape, generator=generator) >= keep
        return torch.where(replaced, torch.randint(0, card, clean.shape, generator=generator), clean)

    vocal = torch.randint(0, card, (n_excerpts, semantic_frames), generator=generator)
    accompaniment = torch.randperm(card, generator=generator)[vocal]
    codes = torch.randint(0, card, (n_excerpts, 8, n_frames), generator=generator)
    successor = torch.randperm(card, generator=generator)
    for t in range(1, n_frames):
        codes[:, 0, t] = noisy(successor[codes[:, 0, t - 1]])
    for k in range(3):
        codes[:, k + 1] = noisy(torch.randperm(card, generator=generator)[codes[:, k]])
    return TokenSet(vocal, accompaniment, codes)


def learn(pattern: str, args, tokens: TokenSet, out: Path) -> dict:
    train, val = split(tokens, val_every=5)
    model_config = stage_config("coarse", args.preset, semantic_vocab=args.card, codebook_size=args.card,
                                pattern=pattern)
    config = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup=args.steps // 10,
                         eval_every=args.steps, save_every=args.steps, seed=args.seed, cond_dropout=0.0)
    start = time.perf_counter()
    result = train_stage(model_config, config, stage_examples("coarse", train), stage_examples("coarse", val),
                         out / pattern, device=args.device)
    return {"accuracy": result.last_val["accuracy_per_codebook"], "loss": result.last_val["loss_per_codebook"],
            "train_s": time.perf_counter() - start}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def decode_speed(pattern: str, args) -> dict:
    """Seconds of one coarse excerpt of `--speed-seconds` at batch 1 (after one warm-up call)."""
    torch.manual_seed(0)
    device = torch.device(args.device)
    with torch.device(device):
        model = HafmLM(stage_config("coarse", args.speed_preset, pattern=pattern)).eval()
    cond_frames = int(round(args.speed_seconds * constants.SEMANTIC_FRAME_RATE_HZ))
    cond = torch.randint(0, constants.KMEANS_CLUSTERS, (1, 2, cond_frames), generator=torch.Generator().manual_seed(1))
    n_frames = model.layout.target_frames(cond_frames)
    generate(model, cond[:, :, :8], 12, [0], SamplingParams())  # warm-up: kernels, graph path
    _sync(device)
    start = time.perf_counter()
    generate(model, cond, n_frames, [0], SamplingParams())
    _sync(device)
    seconds = time.perf_counter() - start
    steps = model.layout.n_slots(n_frames)
    return {"steps": steps, "decode_s": seconds, "steps_per_s": steps / seconds,
            "s_per_10s": seconds * constants.EXCERPT_DURATION_S / args.speed_seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", choices=["tiny", "small", "base"], help="preset trained")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--excerpts", type=int, default=640, help="synthetic excerpts (every 5th validates)")
    parser.add_argument("--semantic-frames", type=int, default=40, help="excerpt length in 50 Hz frames")
    parser.add_argument("--card", type=int, default=64, help="ids per codebook and semantic stream")
    parser.add_argument("--keep", type=float, default=0.9, help="probability of the clean dependency")
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds (data and weights)")
    parser.add_argument("--speed-preset", default="small", choices=["tiny", "small", "base"])
    parser.add_argument("--speed-seconds", type=float, default=constants.EXCERPT_DURATION_S)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    ceiling = args.keep + (1 - args.keep) / args.card
    print(f"codebook_pattern: coarse stage, {where}, torch {torch.__version__}")
    print(f"learning: preset {args.preset}, {args.steps} steps x batch {args.batch_size}, lr {args.lr:g}, "
          f"{args.excerpts} excerpts of {args.semantic_frames * 3 // 2} frames, card {args.card}, "
          f"ceiling {ceiling:.3f} per codebook")
    rows = []
    header = (f"{'seed':>5}{'pattern':>8}  {'val accuracy cb1..cb4':<26}{'mean':>6}  {'val loss cb1..cb4':<26}"
              f"{'mean':>6}{'train s':>9}")
    print(header)
    for seed in (int(s) for s in args.seeds.split(",")):
        args.seed = seed
        tokens = synthetic_tokens(args.excerpts, args.semantic_frames, args.card, args.keep, seed)
        with tempfile.TemporaryDirectory() as out:
            for pattern in PATTERNS:
                row = {"seed": seed, "pattern": pattern, **learn(pattern, args, tokens, Path(out))}
                rows.append(row)
                accuracy = " ".join(f"{a:.3f}" for a in row["accuracy"])
                loss = " ".join(f"{a:.3f}" for a in row["loss"])
                print(f"{seed:>5}{pattern:>8}  {accuracy:<26}{sum(row['accuracy']) / 4:>6.3f}  {loss:<26}"
                      f"{sum(row['loss']) / 4:>6.3f}{row['train_s']:>9.1f}", flush=True)
    print(f"\nspeed: preset {args.speed_preset}, one {args.speed_seconds:g} s excerpt at batch 1, guidance on, "
          "static decoder")
    print(f"{'pattern':>8}{'steps':>7}{'steps/s':>10}{'s per 10 s':>12}")
    speeds = {}
    for pattern in PATTERNS:
        speeds[pattern] = decode_speed(pattern, args)
        speed = speeds[pattern]
        rows.append({"pattern": pattern, "speed_preset": args.speed_preset, **speed})
        print(f"{pattern:>8}{speed['steps']:>7}{speed['steps_per_s']:>10.1f}{speed['s_per_10s']:>12.2f}")
    print(f"delay / flat: {speeds['flat']['s_per_10s'] / speeds['delay']['s_per_10s']:.2f}x faster per excerpt, "
          f"{speeds['delay']['steps_per_s'] / speeds['flat']['steps_per_s']:.2f}x the steps per second")
    if args.json:
        args.json.write_text(json.dumps({"where": where, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
