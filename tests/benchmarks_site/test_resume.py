"""`resume` re-sends exactly what the run's current phase is missing, read back from the broker:
after a worker was killed, its task may be gone with it (Redis holds it for the visibility
timeout), so the run must be brought back without waiting for that."""

from __future__ import annotations

from uuid import UUID

import pytest
from django.utils import timezone

from evalsite.models import BenchmarkRun, GeneratedClip, SystemResult
from evalsite.services import benchmarks
from tests.benchmarks_site.conftest import make_dataset, queued_tasks

pytestmark = pytest.mark.django_db

SYSTEMS = ["three-stage", "two-stage", "random", "ground-truth"]


@pytest.fixture
def started_run(media_root, tiny_checkpoint_dir):
    checkpoint = benchmarks.register_checkpoint(tiny_checkpoint_dir)
    dataset = make_dataset(media_root, n_tracks=3, write_audio=False)
    run = benchmarks.launch_run(checkpoint=checkpoint, dataset=dataset, systems=SYSTEMS, n_excerpts=3, seed=0,
                                embedder="logmel", dispatch=False).run
    BenchmarkRun.objects.filter(id=run.id).update(status=BenchmarkRun.Status.RUNNING, started=timezone.now())
    return run


def _generated(run, keep_pending: int = 0) -> None:
    clips = list(GeneratedClip.objects.filter(run=run).order_by("id"))
    done = clips[keep_pending:]
    GeneratedClip.objects.filter(id__in=[c.id for c in done]).update(status="done", accompaniment_path="/a.wav")


def _measured(run, systems) -> None:
    for system in systems:
        SystemResult.objects.create(run=run, system=system, fad=1.0, fad_low=0.5, fad_high=1.5, embedder="logmel")


def test_generation_phase_resends_each_pending_clip(started_run, broker_url):
    _generated(started_run, keep_pending=5)
    pending = GeneratedClip.objects.filter(run=started_run, status="pending")
    systems = dict(pending.values_list("id", "system"))
    sent = benchmarks.resume_run(started_run)
    queued = queued_tasks(broker_url)
    assert sent == len(queued) and {name for name, _ in queued} == {"evalsite.benchmarks.generate_clips"}
    batches = [clip_ids for _, (_, clip_ids) in queued]
    # Every pending clip once, in tasks of at most `clips_per_task` clips of one system.
    assert sorted(c for batch in batches for c in batch) == sorted(str(c) for c in systems)
    size = started_run.parameters["clips_per_task"]
    assert all(0 < len(batch) <= size and len({systems[UUID(c)] for c in batch}) == 1 for batch in batches)
    assert sent == sum(-(-list(systems.values()).count(s) // size) for s in set(systems.values()))


def test_measure_phase_resends_the_systems_not_measured(started_run, broker_url):
    _generated(started_run)
    BenchmarkRun.objects.filter(id=started_run.id).update(phase=BenchmarkRun.Phase.MEASURE)
    _measured(started_run, ["three-stage", "random"])
    started_run.refresh_from_db()
    assert benchmarks.resume_run(started_run) == 2
    queued = queued_tasks(broker_url)
    assert [name for name, _ in queued] == ["evalsite.benchmarks.measure_system"] * 2
    assert sorted(args for _, args in queued) == sorted([str(started_run.id), s] for s in ("two-stage",
                                                                                           "ground-truth"))
    started_run.refresh_from_db()
    assert started_run.status == BenchmarkRun.Status.RUNNING and started_run.phase == BenchmarkRun.Phase.MEASURE


def test_compare_phase_resends_the_comparison(started_run, broker_url):
    _generated(started_run)
    _measured(started_run, SYSTEMS)
    BenchmarkRun.objects.filter(id=started_run.id).update(phase=BenchmarkRun.Phase.COMPARE)
    started_run.refresh_from_db()
    assert benchmarks.resume_run(started_run) == 1
    assert [name for name, _ in queued_tasks(broker_url)] == ["evalsite.benchmarks.compare_systems"]
