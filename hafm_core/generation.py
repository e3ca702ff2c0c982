"""Generation to files: a system's accompaniment, its mix with the vocal and a JSON sidecar.

`hafm generate` is a thin caller of `generate_all`; the Django worker has its own batched
service (evalsite.services.generation) over the same `hafm_core.systems` interface.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hafm_core.data.files import write_json_atomic
from hafm_core.errors import ConfigError
from hafm_core.provenance import code_version, sha256_bytes

MIX_PEAK = 0.98
# "song.vocal.wav", "song_vocals.wav", "song-vocal.flac": the accompaniment is "song.wav".
_VOCAL_SUFFIX = re.compile(r"[._\- ]+vocals?$", re.IGNORECASE)


@dataclass(frozen=True)
class Excerpt:
    excerpt_id: str
    vocal: Path
    accompaniment: Path | None  # the real accompaniment, when known


def excerpts_from_input(path: Path, accompaniment: Path | None = None, split: str | None = None,
                        limit: int | None = None) -> list[Excerpt]:
    """A manifest (file or folder) -> its excerpts; a wav file -> one excerpt named after it."""
    from hafm_core.data.manifest import read_manifest

    path = Path(path)
    if path.is_file() and path.suffix.lower() in (".wav", ".flac"):
        return [Excerpt(_VOCAL_SUFFIX.sub("", path.stem) or path.stem, path, accompaniment)]
    manifest_dir = path if path.is_dir() else path.parent
    records = [r for r in read_manifest(path) if split is None or r.split == split]
    if not records:
        raise ConfigError(f"{path} has no excerpts of split {split!r}")
    excerpts = [Excerpt(r.excerpt_id, r.vocal_file(manifest_dir), r.accompaniment_file(manifest_dir))
                for r in records]
    return excerpts[:limit] if limit else excerpts


def excerpt_seed(seed: int, excerpt_id: str) -> int:
    """A 31-bit seed from the run seed and the excerpt id (independent of the batch)."""
    return int(sha256_bytes(f"{seed}:{excerpt_id}".encode())[:8], 16) & 0x7FFFFFFF


def _file_stem(excerpt_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in excerpt_id)


def output_paths(excerpt: Excerpt, out_dir: Path) -> tuple[Path, Path, Path]:
    """(accompaniment wav, mix wav, JSON sidecar) that `generate_all` writes for `excerpt`."""
    stem = _file_stem(excerpt.excerpt_id)
    return out_dir / f"{stem}.wav", out_dir / "mix" / f"{stem}.wav", out_dir / f"{stem}.json"


def read_vocals(excerpts: list[Excerpt]) -> list[tuple[Excerpt, np.ndarray, int]]:
    """(excerpt, vocal float32 [n], rate) of each excerpt, every vocal checked before any is
    generated from: not truncated, finite, not silent, at least `MIN_VOCAL_DURATION_S` long."""
    from hafm_core.audio import MIN_VOCAL_DURATION_S, read_checked_audio

    return [(e, *read_checked_audio(e.vocal, mono=True, what="vocal", min_duration_s=MIN_VOCAL_DURATION_S,
                                    min_duration_reason="minimum for a vocal")) for e in excerpts]


def generate_all(system, excerpts: list[Excerpt], out_dir: Path, seed: int, checkpoint: Path | None,
                 params, batch_size: int = 4, progress: bool = False) -> list[Path]:
    """Write accompaniment, mix and sidecar of every excerpt; returns the accompaniment paths."""
    from tqdm import tqdm

    from hafm_core.audio import write_audio
    from hafm_core.checkpoint import cascade_hash

    for excerpt in excerpts:  # before any work: an output must never replace its own input
        if output_paths(excerpt, out_dir)[0].resolve() == Path(excerpt.vocal).resolve():
            raise ConfigError(f"the accompaniment of {excerpt.vocal} would replace the vocal itself: "
                              "choose another --out folder")
    is_cascade = hasattr(system, "generate_batch")
    stages = ("semantic", "coarse", "fine") if system.name == "three-stage" else ("semantic", "coarse")
    checkpoint_hash = cascade_hash(checkpoint, stages) if is_cascade else None
    loaded = read_vocals(excerpts)
    groups: dict[tuple[int, int], list] = defaultdict(list)  # (rate, length) -> excerpts
    for item in loaded:
        groups[(item[2], len(item[1]))].append(item)
    provenance = system.provenance() if hasattr(system, "provenance") else {}
    written = []
    with tqdm(total=len(loaded), desc=f"generate {system.name}", unit="excerpt", disable=not progress) as bar:
        for (rate, _), group in groups.items():
            step = batch_size if is_cascade else 1
            for first in range(0, len(group), step):
                chunk = group[first:first + step]
                seeds = [excerpt_seed(seed, e.excerpt_id) for e, _, _ in chunk]
                if is_cascade:
                    outputs = system.generate_batch(np.stack([v for _, v, _ in chunk]), rate, seeds)
                else:
                    outputs = [system.generate(v, rate, seed=s, excerpt=e.accompaniment)
                               for (e, v, _), s in zip(chunk, seeds)]
                for (excerpt, vocal, _), accompaniment, excerpt_seed_value in zip(chunk, outputs, seeds):
                    accompaniment_path, mix_path, sidecar_path = output_paths(excerpt, out_dir)
                    written.append(write_audio(accompaniment_path, accompaniment, rate))
                    mix = vocal + accompaniment
                    peak = float(np.abs(mix).max()) if len(mix) else 0.0
                    write_audio(mix_path, mix * (MIX_PEAK / peak) if peak > MIX_PEAK else mix, rate)
                    sidecar = {"system": system.name, "excerpt": excerpt.excerpt_id, "vocal": str(excerpt.vocal),
                               "seed": excerpt_seed_value, "run_seed": seed, "checkpoint_hash": checkpoint_hash,
                               "sampling": params.to_dict() if is_cascade else None,
                               "sample_rate_hz": rate, "code_version": code_version(), **provenance}
                    write_json_atomic(sidecar_path, sidecar)
                bar.update(len(chunk))
    return written
