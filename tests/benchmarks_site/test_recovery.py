"""Recovery from workers killed with SIGKILL in the measure phase, on Redis and RabbitMQ.

- `resume` re-sends what the current phase is missing (here: the unmeasured systems), with
  Redis at its default visibility timeout (300 s), so only the resume can bring the run back soon;
- without any resume, the killed worker's unacknowledged task comes back by itself (RabbitMQ: at
  once; Redis: after the visibility timeout) and the run finishes, nothing counted twice;
- a step whose worker dies every time fails the run with that reason instead of looping.
"""

from __future__ import annotations

import pytest

from evalsite.models import BenchmarkRun, GeneratedClip, SystemResult
from evalsite.services import benchmarks
from evalsite.services.benchmark_work import MAX_STEP_ATTEMPTS
from tests.benchmarks_site.conftest import make_dataset, wait_for_run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.services]

SYSTEMS = ["random", "ground-truth"]  # no model to run: generation is quick, measuring (fit) is not


def _worker(factory, broker_url, media_root, weights, queue=None, **env):
    return factory(broker_url, queue=queue, env={"HAFM_MEDIA_DIR": str(media_root),
                                                 "HAFM_WEIGHTS_DIR": str(weights), **env})


def _launch(checkpoint_dir, media_root, queue, systems=SYSTEMS, n_tracks=2):
    checkpoint = benchmarks.register_checkpoint(checkpoint_dir, stages=())
    dataset = make_dataset(media_root, n_tracks=n_tracks)
    return benchmarks.launch_run(checkpoint=checkpoint, dataset=dataset, systems=systems, n_excerpts=n_tracks,
                                 seed=0, embedder="logmel", queue=queue).run


def _measuring(run_id) -> bool:
    """A worker has started measuring a system (the step's start is counted before any work)."""
    run = BenchmarkRun.objects.get(id=run_id)
    return run.phase == BenchmarkRun.Phase.MEASURE and any(k.startswith("measure:") for k in run.step_attempts)


def _started(run_id, step: str, times: int):
    return lambda: BenchmarkRun.objects.get(id=run_id).step_attempts.get(step, 0) >= times


def _kill_while_measuring(run, worker) -> None:
    wait_for_run(run.id, worker, until=lambda: _measuring(run.id), what="the measure phase")
    worker.kill()
    run.refresh_from_db()
    assert run.status == BenchmarkRun.Status.RUNNING and run.phase == BenchmarkRun.Phase.MEASURE
    assert SystemResult.objects.filter(run=run).count() < len(SYSTEMS)


def _assert_done_once(run) -> None:
    run.refresh_from_db()
    assert run.status == BenchmarkRun.Status.DONE, run.error
    results = SystemResult.objects.filter(run=run)
    assert sorted(results.values_list("system", flat=True)) == sorted(SYSTEMS)  # one result per system
    assert all(r.n_eval == r.n_background == run.n_excerpts for r in results)
    clips = GeneratedClip.objects.filter(run=run)
    assert clips.count() == clips.filter(status="done").exclude(fit={}).count() == run.n_excerpts * len(SYSTEMS)


def test_resume_sends_the_measurements_a_killed_worker_lost(celery_worker_factory, redis_url, media_root,
                                                             tiny_checkpoint_dir, tiny_weights_dir, monkeypatch):
    from evalsite.celery import app

    monkeypatch.setattr(app.conf, "broker_url", redis_url)
    # Redis at the default visibility timeout (300 s): the lost task would come back only then.
    worker = _worker(celery_worker_factory, redis_url, media_root, tiny_weights_dir)
    run = _launch(tiny_checkpoint_dir, media_root, worker.queue)
    _kill_while_measuring(run, worker)
    second = _worker(celery_worker_factory, redis_url, media_root, tiny_weights_dir, queue=worker.queue)
    sent = benchmarks.resume_run(run)
    measured = SystemResult.objects.filter(run=run).count()
    assert sent == len(SYSTEMS) - measured >= 1  # exactly the systems not measured yet
    wait_for_run(run.id, second)
    _assert_done_once(run)


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_a_killed_workers_task_comes_back_by_itself_and_counts_once(broker, request, celery_worker_factory,
                                                                    media_root, tiny_checkpoint_dir,
                                                                    tiny_weights_dir, monkeypatch):
    from evalsite.celery import app

    url = request.getfixturevalue(f"{broker}_url")
    monkeypatch.setattr(app.conf, "broker_url", url)
    # Redis: a short visibility timeout stands in for the default 300 s (same mechanism).
    env = {"HAFM_VISIBILITY_TIMEOUT_S": "5"}
    worker = _worker(celery_worker_factory, url, media_root, tiny_weights_dir, **env)
    run = _launch(tiny_checkpoint_dir, media_root, worker.queue)
    _kill_while_measuring(run, worker)
    second = _worker(celery_worker_factory, url, media_root, tiny_weights_dir, queue=worker.queue, **env)
    wait_for_run(run.id, second)  # no resume: the broker hands the lost task to the new worker
    _assert_done_once(run)


def test_a_step_whose_worker_dies_every_time_fails_the_run_with_the_reason(
        celery_worker_factory, rabbitmq_url, media_root, tiny_checkpoint_dir, tiny_weights_dir, monkeypatch):
    """RabbitMQ returns a dead worker's message at once: kill every worker that starts measuring,
    as a crash in native code (a poisoned numba cache) would. The next delivery fails the run."""
    from evalsite.celery import app

    monkeypatch.setattr(app.conf, "broker_url", rabbitmq_url)
    worker = _worker(celery_worker_factory, rabbitmq_url, media_root, tiny_weights_dir)
    run = _launch(tiny_checkpoint_dir, media_root, worker.queue, systems=["random"])
    for attempt in range(1, MAX_STEP_ATTEMPTS + 1):
        wait_for_run(run.id, worker, until=_started(run.id, "measure:random", attempt),
                     what=f"measuring start {attempt}")
        worker.kill()
        worker = _worker(celery_worker_factory, rabbitmq_url, media_root, tiny_weights_dir, queue=worker.queue)
    wait_for_run(run.id, worker)
    run.refresh_from_db()
    assert run.status == BenchmarkRun.Status.FAILED
    assert f"measuring random: started {MAX_STEP_ATTEMPTS} times and never finished" in run.error
    assert "hafm benchmark resume" in run.error
    assert not SystemResult.objects.filter(run=run).exists()
