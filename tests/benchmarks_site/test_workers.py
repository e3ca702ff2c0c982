"""A worker killed mid-run and a resume that redoes only what is missing, on the tiny cascade.

A run of the four systems through a worker, checked clip by clip, is the staff journey's run
(test_staff_journey.py: one run serves the site's pages and the results' checks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalsite.models import BenchmarkRun, GeneratedClip, SystemResult
from evalsite.services import benchmarks
from tests.benchmarks_site.conftest import make_dataset, wait_for_run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SYSTEMS = ["three-stage", "two-stage", "random", "ground-truth"]


def _worker(factory, broker_url, media_root, weights, queue=None):
    return factory(broker_url, queue=queue, env={"HAFM_MEDIA_DIR": str(media_root), "HAFM_WEIGHTS_DIR": str(weights)})


def _launch(checkpoint_dir, media_root, queue, n_tracks, systems=SYSTEMS):
    checkpoint = benchmarks.register_checkpoint(checkpoint_dir)
    dataset = make_dataset(media_root, n_tracks=n_tracks)
    return benchmarks.launch_run(checkpoint=checkpoint, dataset=dataset, systems=systems, n_excerpts=n_tracks,
                                 seed=0, embedder="logmel", queue=queue).run


def test_resume_after_a_killed_worker_redoes_only_missing_clips(celery_worker_factory, broker_url, media_root,
                                                                tiny_checkpoint_dir, tiny_weights_dir):
    worker = _worker(celery_worker_factory, broker_url, media_root, tiny_weights_dir)
    run = _launch(tiny_checkpoint_dir, media_root, worker.queue, n_tracks=4)
    total = 4 * len(SYSTEMS)
    done = GeneratedClip.objects.filter(run=run, status="done")
    wait_for_run(run.id, worker, until=lambda: done.count() >= 2, what="two clips")
    worker.kill()
    before = dict(done.values_list("id", "finished"))
    assert 0 < len(before) < total
    mtimes = {clip_id: Path(path).stat().st_mtime_ns
              for clip_id, path in done.values_list("id", "accompaniment_path")}
    run.refresh_from_db()
    assert run.is_active  # the crash did not end the run: it waits for a worker
    second = _worker(celery_worker_factory, broker_url, media_root, tiny_weights_dir, queue=worker.queue)
    sent = benchmarks.resume_run(run)
    assert sent >= 1
    wait_for_run(run.id, second)
    run.refresh_from_db()
    assert run.status == BenchmarkRun.Status.DONE, run.error
    after = dict(GeneratedClip.objects.filter(run=run, id__in=before).values_list("id", "finished"))
    assert after == before  # nothing done before the crash was redone
    assert {clip_id: Path(path).stat().st_mtime_ns for clip_id, path in
            GeneratedClip.objects.filter(id__in=before).values_list("id", "accompaniment_path")} == mtimes
    assert GeneratedClip.objects.filter(run=run, status="done").count() == total
    assert SystemResult.objects.filter(run=run).count() == len(SYSTEMS)
