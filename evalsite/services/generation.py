"""One clip of a run: a system's accompaniment for an excerpt's vocal, its mix and its sidecar.

The systems themselves are `hafm_core.systems` (one interface: vocal + seed -> accompaniment
of the same length). A worker keeps the systems it built (models loaded once per process),
keyed by checkpoint hash, so a task of four clips loads nothing after the first.
"""

from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=8)
def _system(name: str, checkpoint_path: str, checkpoint_hash: str, pool: tuple[str, ...]):
    """A loaded system. `pool`: accompaniment files the `random` system draws from."""
    from hafm_core import systems

    return systems.load_system(name, checkpoint=checkpoint_path or None, random_pool=list(pool))


def _pool(run: BenchmarkRun) -> tuple[str, ...]:
    """What `random` draws another track's accompaniment from: every excerpt of the run's
    dataset, in key order. Not only the run's excerpts: with few of them, drawing among
    themselves returns the reference set reshuffled, and its FAD would be ~0 by construction."""
    return tuple(Excerpt.objects.filter(dataset_id=run.dataset_id)
                 .order_by("key").values_list("accompaniment_path", flat=True))


def generate_clip(run: BenchmarkRun, clip: GeneratedClip, out_dir: Path) -> ClipOutput:
    """Generate, then write accompaniment, mix and sidecar atomically under `out_dir`."""
    from hafm_core.audio import read_audio, write_audio

    excerpt = clip.excerpt
    vocal, rate = read_audio(excerpt.vocal_path, mono=True)
    system = _system(clip.system, run.checkpoint.path, run.checkpoint.content_hash, _pool(run))
    accompaniment = system.generate(vocal, rate, seed=clip.seed, excerpt=excerpt.accompaniment_path)
    if accompaniment.shape != vocal.shape:
        raise ValueError(f"{clip.system} returned {accompaniment.shape} samples for a vocal of {vocal.shape}")
    stem = excerpt.key.replace("/", "_")
    accompaniment_path = write_audio(out_dir / f"{stem}.wav", accompaniment, rate)
    mix = vocal + accompaniment
    peak = float(np.abs(mix).max())
    mix_path = write_audio(out_dir / "mix" / f"{stem}.wav", mix / peak * 0.98 if peak > 0.98 else mix, rate)
    sidecar = {"system": clip.system, "excerpt": excerpt.key, "seed": clip.seed,
               "checkpoint_hash": run.checkpoint.content_hash, "sampling": run.parameters.get("sampling", {}),
               "sample_rate_hz": rate, "code_version": code_version(), "run": str(run.id)}
    write_json_atomic(out_dir / f"{stem}.json", sidecar)
    return ClipOutput(accompaniment_path, mix_path, sidecar)
