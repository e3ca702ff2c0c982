"""Clips of a run: a system's accompaniments for excerpts' vocals, their mixes and sidecars.

The systems themselves are `hafm_core.systems` (one interface: vocal + seed -> accompaniment
of the same length). A task's clips of one system and one vocal length are generated in ONE
call: the cascade's `generate_batch` samples them together, each excerpt from its own seed and
decoded on its own, so a clip's audio does not depend on the clips generated beside it. A
worker keeps the systems it built (models loaded once per process), keyed by checkpoint hash,
so consecutive tasks load nothing.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evalsite.models import BenchmarkRun, Excerpt, GeneratedClip
from hafm_core.data.files import write_json_atomic
from hafm_core.provenance import code_version


@dataclass(frozen=True)
class ClipOutput:
    accompaniment_path: Path
    mix_path: Path
    sidecar: dict


@dataclass(frozen=True)
class ClipBatch:
    """Clips of one system whose vocals share a rate and a length: one call of the system.

    vocals: float32 [B, n] mono, in the order of `clips`.
    """

    system: str
    clips: list[GeneratedClip]
    vocals: np.ndarray
    sample_rate_hz: int


@functools.lru_cache(maxsize=8)
def _system(name: str, checkpoint_path: str, checkpoint_hash: str, pool: tuple[str, ...], dtype: str,
            device: str):
    """A loaded system. `pool`: accompaniment files the `random` system draws from; `dtype`: the
    cascade's precision (a run in another dtype gets its own copy of the models); `device`: where
    the models and tokenizers run (this worker's `HAFM_DEVICE`, else its GPU, else the CPU)."""
    from hafm_core import systems

    return systems.load_system(name, checkpoint=checkpoint_path or None, random_pool=list(pool), dtype=dtype,
                               device=device)


def _pool(run: BenchmarkRun) -> tuple[str, ...]:
    """What `random` draws another track's accompaniment from: every excerpt of the run's
    dataset, in key order. Not only the run's excerpts: with few of them, drawing among
    themselves returns the reference set reshuffled, and its FAD would be ~0 by construction."""
    return tuple(Excerpt.objects.filter(dataset_id=run.dataset_id)
                 .order_by("key").values_list("accompaniment_path", flat=True))


def read_vocal(clip: GeneratedClip) -> tuple[np.ndarray, int]:
    """The clip's vocal: float32 [n] mono and its rate (`HafmError` when it cannot be read)."""
    from hafm_core.audio import read_audio

    return read_audio(clip.excerpt.vocal_path, mono=True)


def group_clips(clips: Sequence[GeneratedClip], vocals: dict) -> list[ClipBatch]:
    """Clips -> batches of one system, rate and vocal length, in the order the clips came.

    vocals: {clip id: (float32 [n], rate)} of every clip.
    """
    groups: dict[tuple, list[GeneratedClip]] = defaultdict(list)
    for clip in clips:
        samples, rate = vocals[clip.id]
        groups[(clip.system, rate, len(samples))].append(clip)
    return [ClipBatch(system, members, np.stack([vocals[c.id][0] for c in members]), rate)
            for (system, rate, _), members in groups.items()]


def generate_batch(run: BenchmarkRun, batch: ClipBatch, out_dir: Path) -> list[ClipOutput]:
    """Generate a batch in one call of its system, then write each clip's accompaniment, mix
    and sidecar atomically under `out_dir`; outputs in the order of `batch.clips`."""
    from hafm_core.config import torch_device

    device = torch_device()
    system = _system(batch.system, run.checkpoint.path, run.checkpoint.content_hash, _pool(run), run.dtype, device)
    seeds = [clip.seed for clip in batch.clips]
    if hasattr(system, "generate_batch"):
        accompaniments = system.generate_batch(batch.vocals, batch.sample_rate_hz, seeds)
    else:
        accompaniments = [system.generate(vocal, batch.sample_rate_hz, seed=seed,
                                          excerpt=clip.excerpt.accompaniment_path)
                          for clip, vocal, seed in zip(batch.clips, batch.vocals, seeds)]
    return [write_clip(run, clip, vocal, np.asarray(accompaniment), batch.sample_rate_hz, out_dir, device)
            for clip, vocal, accompaniment in zip(batch.clips, batch.vocals, accompaniments)]


def write_clip(run: BenchmarkRun, clip: GeneratedClip, vocal: np.ndarray, accompaniment: np.ndarray,
               rate: int, out_dir: Path, device: str = "cpu") -> ClipOutput:
    """Accompaniment, mix (peak-limited) and sidecar of one clip, each written atomically."""
    from hafm_core.audio import write_audio

    if accompaniment.shape != vocal.shape:
        raise ValueError(f"{clip.system} returned {accompaniment.shape} samples for a vocal of {vocal.shape}")
    excerpt = clip.excerpt
    stem = excerpt.key.replace("/", "_")
    accompaniment_path = write_audio(out_dir / f"{stem}.wav", accompaniment, rate)
    mix = vocal + accompaniment
    peak = float(np.abs(mix).max())
    mix_path = write_audio(out_dir / "mix" / f"{stem}.wav", mix / peak * 0.98 if peak > 0.98 else mix, rate)
    sidecar = {"system": clip.system, "excerpt": excerpt.key, "seed": clip.seed,
               "checkpoint_hash": run.checkpoint.content_hash, "sampling": run.parameters.get("sampling", {}),
               "dtype": run.dtype, "device": device, "sample_rate_hz": rate, "code_version": code_version(), "run": str(run.id)}
    write_json_atomic(out_dir / f"{stem}.json", sidecar)
    return ClipOutput(accompaniment_path, mix_path, sidecar)
