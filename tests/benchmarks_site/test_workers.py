"""A run through real Celery workers: the four systems on the tiny cascade, FAD and fit per
system, the paired comparison; a worker killed mid-run and a resume that redoes only what is missing."""

from __future__ import annotations

import math
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


def test_a_run_of_the_four_systems_finishes_through_a_worker(celery_worker_factory, broker_url, media_root,
                                                             tiny_checkpoint_dir, tiny_weights_dir):
    from hafm_core.audio import read_audio

    worker = _worker(celery_worker_factory, broker_url, media_root, tiny_weights_dir)
    run = _launch(tiny_checkpoint_dir, media_root, worker.queue, n_tracks=3)
    wait_for_run(run.id, worker)
    run.refresh_from_db()
    assert run.status == BenchmarkRun.Status.DONE, run.error
    clips = GeneratedClip.objects.filter(run=run).select_related("excerpt")
    assert [c.error for c in clips if c.status != "done"] == []
    assert clips.count() == 3 * len(SYSTEMS)
    for clip in clips:
        vocal, rate = read_audio(clip.excerpt.vocal_path)
        accompaniment, accompaniment_rate = read_audio(clip.accompaniment_path)
        assert accompaniment_rate == rate and accompaniment.shape == vocal.shape
        assert Path(clip.mix_path).is_file() and Path(clip.accompaniment_path).with_suffix(".json").is_file()
        assert clip.sidecar["system"] == clip.system and clip.sidecar["checkpoint_hash"] == run.checkpoint.content_hash
        assert clip.fit, f"{clip.system} {clip.excerpt.key}: no fit metrics"
    results = {r.system: r for r in SystemResult.objects.filter(run=run)}
    assert set(results) == set(SYSTEMS)
    for system, result in results.items():
        assert result.error == "" and result.n_eval == 3 and result.n_background == 3, (system, result.error)
        assert math.isfinite(result.fad) and result.fad_low <= result.fad <= result.fad_high, system
        assert result.fit, f"{system}: no fit summary"
    # The cascade's audio is decoded from codes; the random system is real music: the cascade is farther.
    assert results["three-stage"].fad > results["random"].fad
    assert results["two-stage"].fad > results["random"].fad
    # The systems decode from different codes: three-stage and two-stage do not sound the same.
    three = read_audio(clips.get(system="three-stage", excerpt__key="track000-0").accompaniment_path)[0]
    two = read_audio(clips.get(system="two-stage", excerpt__key="track000-0").accompaniment_path)[0]
    assert abs(three - two).max() > 0.05
    comparison = run.results["three_vs_two"]
    improvement = comparison["relative_improvement"]
    assert improvement["low"] <= improvement["estimate"] <= improvement["high"]
    assert improvement["estimate"] == pytest.approx(1 - results["three-stage"].fad / results["two-stage"].fad,
                                                    rel=1e-6, abs=1e-9)
    assert sorted(comparison["excerpts"]) == ["track000-0", "track001-0", "track002-0"]


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
