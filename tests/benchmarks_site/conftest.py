"""Benchmark-site fixtures: a registered synthetic dataset, a tiny cascade checkpoint, a broker.

The dataset rows are made from synthetic multitracks written as wav files under the media
folder (what `hafm data prepare` would produce); the checkpoint holds random-init `tiny`
stages saved with `hafm_core.checkpoint.save_checkpoint`.
"""

from __future__ import annotations

import ast
import json
import sqlite3
from pathlib import Path

import pytest

DURATION_S = 4.0
SAMPLE_RATE_HZ = 16_000


@pytest.fixture
def media_root(tmp_path, settings) -> Path:
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    return root


def make_dataset(media_root: Path, n_tracks: int, excerpts_per_track: int = 1, write_audio: bool = True,
                 split: str = "test"):
    """A Dataset with `n_tracks * excerpts_per_track` excerpts (wav files when write_audio)."""
    from evalsite.models import Dataset, Excerpt
    from hafm_core.audio import write_audio as write_wav
    from hafm_core.provenance import sha256_bytes
    from hafm_core.synth import synthesize_multitrack

    folder = media_root / "datasets" / f"synthetic-{n_tracks}x{excerpts_per_track}"
    folder.mkdir(parents=True, exist_ok=True)
    dataset = Dataset.objects.create(kind="synthetic", source=f"synthetic:{n_tracks}",
                                     manifest_path=str(folder / "manifest.jsonl"),
                                     manifest_hash=sha256_bytes(f"{folder}".encode()))
    excerpts = []
    for track in range(n_tracks):
        multitrack = synthesize_multitrack(seed=track, duration_s=DURATION_S, sample_rate_hz=SAMPLE_RATE_HZ) \
            if write_audio else None
        for index in range(excerpts_per_track):
            key = f"track{track:03d}-{index}"
            vocal, accompaniment = folder / f"{key}.vocal.wav", folder / f"{key}.accompaniment.wav"
            if write_audio:
                write_wav(vocal, multitrack.stems["vocals"], SAMPLE_RATE_HZ)
                write_wav(accompaniment, multitrack.accompaniment, SAMPLE_RATE_HZ)
            excerpts.append(Excerpt(dataset=dataset, key=key, track=f"track{track:03d}", split=split,
                                    start_s=0.0, duration_s=DURATION_S, vocal_path=str(vocal),
                                    accompaniment_path=str(accompaniment), content_hash=sha256_bytes(key.encode())))
    Excerpt.objects.bulk_create(excerpts)
    return dataset


@pytest.fixture(scope="session")
def tiny_checkpoint_dir(tmp_path_factory) -> Path:
    """A cascade folder with random-init `tiny` semantic, coarse and fine stages."""
    import torch

    from hafm_core.checkpoint import checkpoint_path, save_checkpoint
    from hafm_core.model import HafmLM, stage_config
    from hafm_core.patterns import STAGES

    root = tmp_path_factory.mktemp("ckpt") / "tiny-cascade"
    torch.manual_seed(0)
    for stage in STAGES:
        config = stage_config(stage, "tiny")
        save_checkpoint(checkpoint_path(root, stage), {"model_state": HafmLM(config).state_dict(),
                                                       "config": config.to_dict(), "global_step": 0})
    return root


@pytest.fixture(scope="session")
def tiny_weights_dir(tmp_path_factory) -> Path:
    """HAFM_WEIGHTS_DIR with tiny HuBERT and EnCodec, and seeded random k-means centroids
    (500 x 32, what the tiny cascade's semantic vocabulary expects; fitting them is not needed)."""
    import numpy as np

    from hafm_core.tokens.tiny import KMEANS_FILE, write_tiny_weights

    root = write_tiny_weights(tmp_path_factory.mktemp("weights"), seed=0)
    centroids = np.random.default_rng(0).standard_normal((500, 32)).astype(np.float32)
    np.save(root / KMEANS_FILE, centroids)
    return root


@pytest.fixture
def broker_url(tmp_path, monkeypatch) -> str:
    """A fresh embedded broker for this test: the app sends there, workers started on it read it."""
    from evalsite.celery import app

    url = f"sqla+sqlite:///{tmp_path}/broker.sqlite3"
    monkeypatch.setattr(app.conf, "broker_url", url)
    return url


def run_snapshot(run_id) -> tuple:
    """What moves while a run makes progress: status, phase, clips finished, clips fitted, systems measured."""
    from evalsite.models import BenchmarkRun, GeneratedClip, SystemResult

    run = BenchmarkRun.objects.get(id=run_id)
    clips = GeneratedClip.objects.filter(run_id=run_id)
    return (run.status, run.phase, clips.exclude(status="pending").count(), clips.exclude(fit={}).count(),
            SystemResult.objects.filter(run_id=run_id).count())


def wait_for_run(run_id, *workers, until=None, what: str = "the run to end") -> None:
    """Wait until the run is no longer active (or `until()`), failing only when it stops moving:
    no clip, fit, result or phase, and no CPU used by its workers, for the stated time."""
    from evalsite.models import BenchmarkRun
    from tests.progress import busy_seconds, wait_for_progress

    def finished() -> bool:
        return until() if until is not None else not BenchmarkRun.objects.get(id=run_id).is_active

    wait_for_progress(finished, lambda: (run_snapshot(run_id), busy_seconds(*(w.process for w in workers))),
                      what=what, poll_s=0.1,
                      details=lambda: "\n".join(w.log()[-3000:] for w in workers))


def queued_tasks(broker_url: str) -> list[tuple[str, list]]:
    """(task name, its positional arguments) of every message waiting in the embedded broker."""
    path = broker_url.removeprefix("sqla+sqlite:///")
    with sqlite3.connect(path) as connection:
        payloads = [json.loads(p) for (p,) in connection.execute(
            "SELECT payload FROM kombu_message WHERE visible = 1 ORDER BY id")]
    return [(p["headers"]["task"], list(ast.literal_eval(p["headers"]["argsrepr"]))) for p in payloads]
