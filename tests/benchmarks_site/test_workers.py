"""A run through real Celery workers: generation, measurement, comparison; a killed worker; resume.

Needs the cascade's systems (`hafm_core.systems`): skipped until they are installed.
"""

from __future__ import annotations

import time

import pytest

from evalsite.models import BenchmarkRun, GeneratedClip, SystemResult
from evalsite.services import benchmarks
from tests.benchmarks_site.conftest import make_dataset

pytest.importorskip("hafm_core.systems")
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SYSTEMS = ["random", "ground-truth-raw"]


def _wait(predicate, timeout_s=120.0, worker=None):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out; worker log:\n{worker.log()[-3000:] if worker else ''}")
        time.sleep(0.05)


def _launch(checkpoint_dir, media_root, queue, n_tracks=3):
    checkpoint = benchmarks.register_checkpoint(checkpoint_dir, stages=())
    dataset = make_dataset(media_root, n_tracks=n_tracks)
    return benchmarks.launch_run(checkpoint=checkpoint, dataset=dataset, systems=SYSTEMS, n_excerpts=n_tracks,
                                 seed=0, embedder="logmel", queue=queue).run


def test_a_run_finishes_through_a_worker_with_fad_per_system(celery_worker_factory, broker_url, media_root,
                                                             tiny_checkpoint_dir):
    worker = celery_worker_factory(broker_url, env={"HAFM_MEDIA_DIR": str(media_root)})
    run = _launch(tiny_checkpoint_dir, media_root, worker.queue)
    _wait(lambda: not BenchmarkRun.objects.get(id=run.id).is_active, worker=worker)
    run.refresh_from_db()
    assert run.status == BenchmarkRun.Status.DONE, run.error
    assert GeneratedClip.objects.filter(run=run, status="done").count() == 3 * len(SYSTEMS)
    results = {r.system: r for r in SystemResult.objects.filter(run=run)}
    assert set(results) == set(SYSTEMS)
    # ground-truth-raw is the background itself: FAD 0 up to rounding.
    assert results["ground-truth-raw"].fad == pytest.approx(0.0, abs=1e-6)
    assert results["random"].fad > results["ground-truth-raw"].fad


def test_resume_after_a_killed_worker_redoes_only_missing_clips(celery_worker_factory, broker_url, media_root,
                                                                tiny_checkpoint_dir):
    worker = celery_worker_factory(broker_url, env={"HAFM_MEDIA_DIR": str(media_root)})
    run = _launch(tiny_checkpoint_dir, media_root, worker.queue, n_tracks=8)
    done = GeneratedClip.objects.filter(run=run, status="done")
    _wait(lambda: done.exists(), worker=worker)
    worker.kill()
    before = dict(done.values_list("id", "finished"))
    assert 0 < len(before) < 8 * len(SYSTEMS)
    second = celery_worker_factory(broker_url, queue=worker.queue, env={"HAFM_MEDIA_DIR": str(media_root)})
    run.refresh_from_db()
    sent = benchmarks.resume_run(run)
    assert sent >= 1
    _wait(lambda: not BenchmarkRun.objects.get(id=run.id).is_active, worker=second)
    after = dict(GeneratedClip.objects.filter(run=run, id__in=before).values_list("id", "finished"))
    assert after == before  # nothing done before the crash was redone
    assert GeneratedClip.objects.filter(run=run, status="done").count() == 8 * len(SYSTEMS)
