"""`hafm train --stage semantic|coarse|fine --tokens DIR --preset P --out CKPT`: train one stage.

Writes `CKPT/ar_<stage>/ckpt_best.pt` (lowest validation loss), `ckpt_last.pt` (everything
needed by `--resume`) and `log.jsonl` (one JSON object per step; validation rows add
`val_loss`, `val_loss_per_codebook`, `val_accuracy_per_codebook`). Several GPUs or hosts:
`torchrun --nproc-per-node N -m hafm_core train ...` (DistributedDataParallel; gloo on CPU).

Preemption: `ckpt_last.pt` is rewritten atomically every `--save-every` steps and when the
process gets SIGTERM (a scheduler's preemption notice) or Ctrl-C; the command then exits 143
or 130 and `--resume` continues bit for bit from the last save.

Without `--resume`, a stage folder that already holds checkpoints or a log is refused unless
`--overwrite` (checkpoints are replaced when the new run writes them; the old log is kept as
`log.previous.jsonl`), and the command says what it replaced.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from hafm_core.cli.args import (
    check_output_dir,
    nonnegative_int,
    positive_float,
    positive_int,
    refuse_existing,
    seed,
    unit_interval,
)
from hafm_core.constants import CODEBOOK_PATTERNS, DEFAULT_CODEBOOK_PATTERN

HELP = "train one stage of the cascade on a token cache (hafm tokenize's output)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", required=True, choices=["semantic", "coarse", "fine"])
    parser.add_argument("--tokens", type=Path, required=True, metavar="DIR", help="token cache folder")
    parser.add_argument("--preset", default="tiny", choices=["tiny", "small", "base"])
    parser.add_argument("--out", type=Path, required=True, metavar="CKPT", help="checkpoint root folder")
    parser.add_argument("--steps", type=positive_int, default=1000)
    parser.add_argument("--batch-size", type=positive_int, default=16, help="global batch (all processes)")
    parser.add_argument("--accumulate", type=positive_int, default=1, help="micro-batches per step")
    parser.add_argument("--lr", type=positive_float, default=3e-4)
    parser.add_argument("--warmup", type=nonnegative_int, default=100)
    parser.add_argument("--cond-dropout", type=unit_interval, default=0.15,
                        help="conditioning dropout probability in [0, 1] (guidance)")
    parser.add_argument("--eval-every", type=positive_int, default=100)
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--semantic-vocab", type=positive_int, default=500, help="k-means clusters of the tokens")
    parser.add_argument("--pattern", choices=CODEBOOK_PATTERNS, default=DEFAULT_CODEBOOK_PATTERN,
                        help="codebook pattern of the stage, stored in its checkpoint: flat (one codebook per "
                             "step, K x T steps) or delay (MusicGen's: the K codebooks staggered by one step "
                             f"each, T + K - 1 steps); the 1-stream semantic stage has T steps either way "
                             f"(default {DEFAULT_CODEBOOK_PATTERN})")
    parser.add_argument("--crop-s", type=positive_float, default=10.0,
                        help="training window in seconds: longer excerpts give random crops of it, shorter "
                             "ones are trained at their own length (default 10)")
    parser.add_argument("--attn-chunk", type=nonnegative_int, default=0, metavar="ROWS",
                        help="attend ROWS query tokens at a time, recomputed in the backward pass: attention "
                             "memory grows with ROWS x T instead of T^2 (0: all at once)")
    parser.add_argument("--activation-checkpointing", action="store_true",
                        help="recompute each transformer block in the backward pass (less memory, ~30%% slower)")
    parser.add_argument("--save-every", type=positive_int, default=100,
                        help="write ckpt_last.pt every N steps (also on SIGTERM/SIGINT; default 100)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--resume", action="store_true", help="continue from CKPT/ar_<stage>/ckpt_last.pt")
    output.add_argument("--overwrite", action="store_true",
                        help="start afresh over a stage folder that holds checkpoints (replaces them and the log)")
    parser.add_argument("--device", default=None, help="torch device (default: HAFM_DEVICE, else cuda if present)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from hafm_core.checkpoint import stage_dir
    from hafm_core.config import torch_device
    from hafm_core.errors import ConfigError
    from hafm_core.model import stage_config
    from hafm_core.train.data import load_token_cache, stage_examples
    from hafm_core.train.loop import (
        TrainConfig,
        TrainingInterrupted,
        leave_distributed,
        train_stage,
    )

    if args.batch_size % args.accumulate:
        raise ConfigError(f"--batch-size {args.batch_size} is not a multiple of --accumulate {args.accumulate}")
    check_output_dir(args.out, what="checkpoint folder")
    folder = stage_dir(args.out, args.stage)
    replaced = []
    if not args.resume:
        previous = [folder / name for name in ("ckpt_best.pt", "ckpt_last.pt", "log.jsonl")]
        replaced = refuse_existing(previous, args.overwrite, f"hafm train --stage {args.stage} without --resume")
    train_tokens, val_tokens = load_token_cache(args.tokens)
    model_config = stage_config(args.stage, args.preset, semantic_vocab=args.semantic_vocab, pattern=args.pattern)
    train_config = TrainConfig(steps=args.steps, batch_size=args.batch_size, accumulate=args.accumulate,
                               lr=args.lr, warmup=args.warmup, cond_dropout=args.cond_dropout,
                               eval_every=args.eval_every, save_every=args.save_every, crop_s=args.crop_s,
                               attn_chunk=args.attn_chunk, activation_checkpointing=args.activation_checkpointing,
                               seed=args.seed)
    if replaced and (folder / "log.jsonl").exists() and int(os.environ.get("RANK", "0")) == 0:
        # The log is appended to: a fresh run starts a new one; the old one is kept beside it.
        (folder / "log.jsonl").replace(folder / "log.previous.jsonl")
    try:
        result = train_stage(model_config, train_config, stage_examples(args.stage, train_tokens),
                             stage_examples(args.stage, val_tokens), args.out,
                             device=args.device or torch_device(), resume=args.resume,
                             progress=not args.json)
    except TrainingInterrupted as stopped:
        print(f"hafm train: {stopped}", file=sys.stderr)
        return 128 + stopped.signal_number
    finally:
        leave_distributed()
    if not result.is_main_process:
        return 0
    summary = {"stage": args.stage, "preset": args.preset, "out": str(result.out_dir),
               "global_step": result.global_step, "best_val_loss": result.best_val_loss,
               "val_accuracy_per_codebook": result.last_val.get("accuracy_per_codebook"),
               "n_train": len(train_tokens), "n_validation": len(val_tokens), "training_data": result.data,
               "replaced": [str(p) for p in replaced]}
    if args.json:
        print(json.dumps(summary))
    else:
        for path in replaced:
            print(f"replaced {path}")
        accuracy = ", ".join(f"{a:.3f}" for a in summary["val_accuracy_per_codebook"] or [])
        data = result.data
        print(f"{args.stage}: {data['n_excerpts']} training excerpts ({data['n_cropped']} longer than "
              f"{data['crop_s']:g} s cropped at random, {data['n_shorter']} shorter trained at their own "
              "length, none dropped)")
        print(f"{args.stage}: {result.global_step} steps, best validation loss {result.best_val_loss:.4f}, "
              f"accuracy per codebook [{accuracy}] -> {result.out_dir}")
    return 0
