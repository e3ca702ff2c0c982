"""Training of one cascade stage: AdamW, warmup + cosine decay, accumulation, DDP, exact resume.

    result = train_stage(model_config, train_config, train_examples, val_examples, out_root)

Determinism: the model is built after `torch.manual_seed(seed)`; batches and conditioning
dropout come from one `torch.Generator` seeded with `seed`; its state, the global torch RNG
state (dropout), the optimizer and the scheduler are saved in `ckpt_last.pt`, so N steps in one
run equal N/2 steps + resume + N/2 steps bit for bit on CPU.

Preemption: `ckpt_last.pt` is written atomically every `save_every` steps and when the process
gets SIGTERM or SIGINT (the step in flight finishes first, then `TrainingInterrupted` is
raised). `resume=True` continues from the last save bit for bit; log rows written after that
save are dropped from `log.jsonl`, so the log never repeats a step.

Data parallel: launched by `torchrun`, each rank draws the same global batch and keeps the
rows `rank::world_size`; DDP averages the gradients, so the run matches one process with the
same global batch up to float summation order. gloo on CPU, NCCL on CUDA.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from hafm_core import constants
from hafm_core.checkpoint import (
    checkpoint_path,
    config_from_payload,
    read_checkpoint,
    save_checkpoint,
)
from hafm_core.errors import CheckpointError, ConfigError, DatasetError
from hafm_core.model import HafmLM, ModelConfig
from hafm_core.patterns import NULL_ID
from hafm_core.provenance import code_version
from hafm_core.train.data import CropSampler, StageExamples

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000
    batch_size: int = 16  # global, over all ranks and accumulation micro-batches
    accumulate: int = 1
    lr: float = 3e-4
    warmup: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    cond_dropout: float = 0.15  # probability of replacing an excerpt's conditioning by NULL
    eval_every: int = 100
    seed: int = 0
    save_every: int = 100  # write ckpt_last.pt every N steps (and on SIGTERM/SIGINT)
    crop_s: float = 10.0  # training window: longer excerpts give random crops, shorter ones their own length
    attn_chunk: int = 0  # > 0: attention in blocks of this many query rows, recomputed in backward
    activation_checkpointing: bool = False  # recompute each transformer block in the backward pass

    def __post_init__(self) -> None:
        if self.batch_size % self.accumulate:
            raise ConfigError(f"batch_size={self.batch_size} is not a multiple of accumulate={self.accumulate}")
        if min(self.steps, self.batch_size, self.accumulate, self.eval_every, self.save_every) < 1:
            raise ConfigError("steps, batch_size, accumulate, eval_every and save_every must be at least 1")
        if not self.crop_s >= constants.UNIT_S:
            raise ConfigError(f"crop_s={self.crop_s} must be at least {constants.UNIT_S} s (one 40 ms unit)")

    @property
    def crop_units(self) -> int:
        return int(round(self.crop_s / constants.UNIT_S))


class TrainingInterrupted(Exception):
    """SIGTERM or SIGINT arrived; `ckpt_last.pt` holds `global_step` and `--resume` continues."""

    def __init__(self, signal_number: int, global_step: int, path: Path):
        super().__init__(f"stopped by {signal.Signals(signal_number).name} after step {global_step}; "
                         f"{path} saved, continue with --resume")
        self.signal_number = signal_number
        self.global_step = global_step
        self.path = path


class _StopRequests:
    """Remembers a SIGTERM/SIGINT instead of dying mid-step; restores the old handlers on exit."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.received: int | None = None
        self._previous: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for number in self.SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number, _frame) -> None:
        self.received = number

    def __exit__(self, *_exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def requested(self, world: int, device) -> int | None:
        """The signal to stop on, agreed by every rank (any rank's signal stops them all)."""
        if world == 1:
            return self.received
        flag = torch.tensor([self.received or 0], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag.item()) or None


@dataclass(frozen=True)
class TrainResult:
    out_dir: Path
    global_step: int
    best_val_loss: float
    last_val: dict = field(default_factory=dict)  # {"loss": float, "loss_per_codebook": [...], "accuracy_per_codebook": [...]}
    is_main_process: bool = True  # rank 0 (the one that writes checkpoints)
    data: dict = field(default_factory=dict)  # CropSampler.describe(): how each excerpt was used


class _TeacherForcing(nn.Module):
    """Puts `HafmLM.loss` behind `forward` so DistributedDataParallel's hooks see it."""

    def __init__(self, model: HafmLM):
        super().__init__()
        self.model = model

    def forward(self, cond: torch.Tensor, target: torch.Tensor):
        return self.model.loss(cond, target)


def lr_factor(step: int, config: TrainConfig) -> float:
    """Linear warmup to 1, then cosine decay to `min_lr_ratio` at `steps`."""
    if step < config.warmup:
        return (step + 1) / config.warmup
    progress = min(1.0, (step - config.warmup) / max(1, config.steps - config.warmup))
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed(device: str) -> str:
    """Join the torchrun process group when WORLD_SIZE > 1; returns this rank's device."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return device
    use_cuda = device.startswith("cuda")
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return f"cuda:{local}"
    return device


def leave_distributed() -> None:
    """Wait for every rank, then tear the process group down before the interpreter exits.

    A rank that exits with gloo's threads still alive aborts ("terminate called without an
    active exception") and torchrun reports the whole job as failed.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _check_ids(examples: StageExamples, config: ModelConfig) -> None:
    """DatasetError when a stream holds ids outside its range (e.g. k-means with other clusters)."""
    layout = config.layout
    for tensor, streams in ((examples.cond_streams, layout.cond_streams),
                            (examples.target_codes, layout.target_streams)):
        for k, stream in enumerate(streams):
            values = tensor[:, k]
            if values.numel() and (values.min() < 0 or values.max() >= stream.card):
                raise DatasetError(
                    f"stage {config.stage!r}: stream {stream.name} has ids in [{int(values.min())}, "
                    f"{int(values.max())}], outside [0, {stream.card}); check --semantic-vocab "
                    "against the k-means clusters of the tokens")


def _batch(examples: StageExamples, index: torch.Tensor, offsets: torch.Tensor, length: int,
           drop: torch.Tensor, model: HafmLM, device):
    cond_streams, target = examples.window(index, offsets, length)
    cond = model.layout.cond_tokens(cond_streams)  # (b, L_c)
    cond = cond.masked_fill(drop[:, None], NULL_ID)
    return cond.to(device), target.to(device)


@torch.no_grad()
def evaluate(model: HafmLM, examples: StageExamples, batch_size: int, device,
             crop_units: int | None = None) -> dict:
    """Validation loss and accuracy per codebook, conditioning always present: every excerpt
    once, its first `crop_units` (or all of it when shorter)."""
    model.eval()
    n_streams = examples.target_codes.shape[1]
    loss_sum, correct, count = torch.zeros(n_streams, dtype=torch.float64), torch.zeros(n_streams), 0
    for index, offsets, length in CropSampler(examples, crop_units).evaluation_batches(batch_size):
        cond, target = _batch(examples, index, offsets, length, torch.zeros(len(index), dtype=torch.bool),
                              model, device)
        _, metrics = model.loss(cond, target)
        loss_sum += metrics["loss"].double().cpu() * len(index)
        correct += metrics["correct"].cpu()
        count += metrics["count"]
    model.train()
    per_codebook = (loss_sum / len(examples)).tolist()
    return {"loss": sum(per_codebook) / n_streams, "loss_per_codebook": per_codebook,
            "accuracy_per_codebook": (correct / count).tolist()}


def _rng_state(generator: torch.Generator) -> dict:
    state = {"torch": torch.get_rng_state(), "data": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore(path: Path, stage: str, model_config: ModelConfig, train_config: TrainConfig,
             model: HafmLM, optimizer, scheduler, generator) -> tuple[int, float]:
    payload = read_checkpoint(path, stage)
    stored = config_from_payload(payload, stage, path)
    if stored != model_config:
        field_name = next(f for f in asdict(stored) if getattr(stored, f) != getattr(model_config, f))
        raise CheckpointError(f"stage {stage!r}: cannot resume from {path}: field 'config.{field_name}' is "
                              f"{getattr(stored, field_name)!r} there but {getattr(model_config, field_name)!r} now")
    for name in ("optimizer", "scheduler", "rng", "train_config"):
        if name not in payload:
            raise CheckpointError(f"stage {stage!r}: cannot resume from {path}: no field {name!r}")
    if payload["train_config"].get("seed") != train_config.seed:
        raise CheckpointError(f"stage {stage!r}: cannot resume from {path}: field 'train_config.seed' is "
                              f"{payload['train_config'].get('seed')} there but {train_config.seed} now")
    model.load_state_dict(payload["model_state"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    torch.set_rng_state(payload["rng"]["torch"])
    generator.set_state(payload["rng"]["data"])
    if "cuda" in payload["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["rng"]["cuda"])
    return int(payload["global_step"]), float(payload.get("best_val_loss", math.inf))


def train_stage(model_config: ModelConfig, train_config: TrainConfig, train_examples: StageExamples,
                val_examples: StageExamples, out_root: str | Path, device: str = "cpu",
                resume: bool = False, stop_at_step: int | None = None, progress: bool = False) -> TrainResult:
    """Train one stage; writes `out_root/ar_<stage>/{ckpt_best,ckpt_last}.pt` and `log.jsonl`.

    stop_at_step: stop (and save `ckpt_last.pt`) before `train_config.steps`, as an interrupted
    run would; `resume=True` continues from `ckpt_last.pt`.
    """
    stage = model_config.stage
    device = init_distributed(device)
    rank, world = _rank_world()
    micro = train_config.batch_size // train_config.accumulate
    if micro % world:
        raise ConfigError(f"batch_size / accumulate = {micro} is not a multiple of {world} processes")
    for examples in (train_examples, val_examples):
        _check_ids(examples, model_config)
    sampler = CropSampler(train_examples, train_config.crop_units)
    if rank == 0:
        log.info("stage %s training data: %s", stage, sampler.describe())
    torch.manual_seed(train_config.seed)
    model = HafmLM(model_config).to(device)
    model.attn_chunk = train_config.attn_chunk
    model.activation_checkpointing = train_config.activation_checkpointing
    generator = torch.Generator().manual_seed(train_config.seed)
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": train_config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=train_config.lr, betas=(0.9, 0.95))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, train_config))
    out_dir = checkpoint_path(out_root, stage).parent
    step, best = 0, math.inf
    if resume:
        step, best = _restore(checkpoint_path(out_root, stage, "last"), stage, model_config,
                              train_config, model, optimizer, scheduler, generator)
        if rank == 0:
            _drop_log_rows_after(out_dir / "log.jsonl", step)
    wrapped = _TeacherForcing(model)
    if world > 1:
        wrapped = DistributedDataParallel(wrapped, device_ids=[int(device.split(":")[1])] if ":" in device else None)
    use_bf16 = torch.device(device).type == "cuda"
    end = min(train_config.steps, stop_at_step or train_config.steps)
    bar = None
    if progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=train_config.steps, initial=step, desc=f"train {stage}", unit="step")
    last_val: dict = {}
    model.train()

    def save_last() -> Path:
        path = out_dir / "ckpt_last.pt"
        if rank == 0:
            save_checkpoint(path, {
                **_payload(model, model_config, train_config, step, best, last_val),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": _rng_state(generator)})
        return path

    with _StopRequests() as stops:
        while step < end:
            losses = []
            for micro_step in range(train_config.accumulate):
                index, offsets, length = sampler.draw(micro, generator)
                drop = torch.rand(micro, generator=generator) < train_config.cond_dropout
                cond, target = _batch(train_examples, index[rank::world], offsets[rank::world], length,
                                      drop[rank::world], model, device)
                sync = micro_step == train_config.accumulate - 1 or world == 1
                context = wrapped.no_sync() if not sync else contextlib.nullcontext()
                with context, torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_bf16):
                    loss, _ = wrapped(cond, target)
                    (loss / train_config.accumulate).backward()
                losses.append(loss.item())
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), train_config.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            row = {"step": step, "lr": scheduler.get_last_lr()[0], "train_loss": sum(losses) / len(losses),
                   "grad_norm": float(grad_norm)}
            if step % train_config.eval_every == 0 or step == train_config.steps:
                last_val = evaluate(model, val_examples, micro, device, train_config.crop_units)
                row.update({f"val_{key}": value for key, value in last_val.items()})
                if rank == 0 and last_val["loss"] < best:
                    best = last_val["loss"]
                    save_checkpoint(out_dir / "ckpt_best.pt",
                                    _payload(model, model_config, train_config, step, best, last_val))
            if rank == 0:
                _append_log(out_dir / "log.jsonl", row)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{row['train_loss']:.3f}")
            signal_number = stops.requested(world, device)
            if signal_number is not None:
                if bar is not None:
                    bar.close()
                raise TrainingInterrupted(signal_number, step, save_last())
            if step % train_config.save_every == 0 and step < end:
                save_last()
    if bar is not None:
        bar.close()
    if world > 1:
        check_ranks_in_sync(model)
    save_last()
    return TrainResult(out_dir, step, best, last_val, rank == 0, sampler.describe())


def _payload(model: HafmLM, model_config: ModelConfig, train_config: TrainConfig, step: int,
             best: float, val: dict) -> dict:
    return {"model_state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            "config": model_config.to_dict(), "train_config": asdict(train_config),
            "step": step, "global_step": step, "best_val_loss": best, "val": val,
            "code_version": code_version()}


def _drop_log_rows_after(path: Path, step: int) -> None:
    """Keep the log rows of steps <= `step` (rows a crashed run wrote after its last save go)."""
    if not path.exists():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step]
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    os.replace(tmp, path)


def _append_log(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")


def check_ranks_in_sync(model: HafmLM) -> None:
    """Raise RuntimeError when the ranks' parameters differ (a DDP bug, never user input)."""
    checksum = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum()
    gathered = [torch.zeros_like(checksum) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, checksum)
    if any(value != gathered[0] for value in gathered):
        raise RuntimeError(f"data-parallel ranks diverged: parameter checksums {[float(v) for v in gathered]}")
