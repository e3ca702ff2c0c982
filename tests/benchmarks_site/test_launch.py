"""Launching runs: planning cost, reuse of a live run, bad checkpoints and datasets, cancel."""

from __future__ import annotations

import shutil

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from evalsite.models import BenchmarkRun, Checkpoint, GeneratedClip
from evalsite.services import benchmarks
from hafm_core.errors import CheckpointError, DatasetError
from tests.benchmarks_site.conftest import make_dataset

pytestmark = pytest.mark.django_db

SYSTEMS = ["three-stage", "two-stage", "random", "ground-truth"]


def _launch(checkpoint, dataset, n_excerpts, seed=0, systems=SYSTEMS):
    return benchmarks.launch_run(checkpoint=checkpoint, dataset=dataset, systems=systems, n_excerpts=n_excerpts,
                                 seed=seed, embedder="logmel", dispatch=False)


def _launch_queries(checkpoint, dataset, n_excerpts, seed) -> int:
    with CaptureQueriesContext(connection) as queries:
        launch = _launch(checkpoint, dataset, n_excerpts, seed)
    assert GeneratedClip.objects.filter(run=launch.run).count() == n_excerpts * len(SYSTEMS)
    return len(queries)


def test_planning_queries_do_not_grow_with_the_number_of_clips(media_root, tiny_checkpoint_dir):
    checkpoint = benchmarks.register_checkpoint(tiny_checkpoint_dir)
    dataset = make_dataset(media_root, n_tracks=50, write_audio=False)
    small = _launch_queries(checkpoint, dataset, n_excerpts=5, seed=1)  # 20 clips
    large = _launch_queries(checkpoint, dataset, n_excerpts=50, seed=2)  # 200 clips
    assert large == small
    assert large <= 10


def test_planned_clips_pair_systems_on_the_same_excerpts_and_seeds(media_root, tiny_checkpoint_dir):
    checkpoint = benchmarks.register_checkpoint(tiny_checkpoint_dir)
    dataset = make_dataset(media_root, n_tracks=6, excerpts_per_track=2, write_audio=False)
    run = _launch(checkpoint, dataset, n_excerpts=6, seed=3).run
    clips = list(GeneratedClip.objects.filter(run=run).select_related("excerpt"))
    by_excerpt: dict[str, set] = {}
    for clip in clips:
        by_excerpt.setdefault(clip.excerpt.key, set()).add((clip.system, clip.seed))
    assert len(by_excerpt) == 6
    for entries in by_excerpt.values():
        assert {system for system, _ in entries} == set(SYSTEMS)
        assert len({seed for _, seed in entries}) == 1  # paired: one seed per excerpt
    # Round-robin over tracks: six excerpts come from six different songs.
    assert len({clip.excerpt.track for clip in clips}) == 6
    assert all(clip.status == GeneratedClip.Status.PENDING for clip in clips)


def test_launching_the_same_run_twice_reuses_it(media_root, tiny_checkpoint_dir):
    checkpoint = benchmarks.register_checkpoint(tiny_checkpoint_dir)
    dataset = make_dataset(media_root, n_tracks=4, write_audio=False)
    first = _launch(checkpoint, dataset, n_excerpts=3)
    second = _launch(checkpoint, dataset, n_excerpts=3)
    assert not first.reused and second.reused
    assert second.run.id == first.run.id
    assert BenchmarkRun.objects.count() == 1
    assert GeneratedClip.objects.count() == 3 * len(SYSTEMS)
    other_seed = _launch(checkpoint, dataset, n_excerpts=3, seed=9)
    assert not other_seed.reused and BenchmarkRun.objects.count() == 2


def test_a_cancelled_run_can_be_launched_again_and_keeps_its_clips(media_root, tiny_checkpoint_dir):
    checkpoint = benchmarks.register_checkpoint(tiny_checkpoint_dir)
    dataset = make_dataset(media_root, n_tracks=3, write_audio=False)
    first = _launch(checkpoint, dataset, n_excerpts=2).run
    benchmarks.cancel_run(first)
    first.refresh_from_db()
    assert first.status == BenchmarkRun.Status.CANCELLED and first.finished is not None
    again = _launch(checkpoint, dataset, n_excerpts=2)
    assert not again.reused and again.run.id != first.id
    assert GeneratedClip.objects.filter(run=first).count() == 2 * len(SYSTEMS)
    with pytest.raises(benchmarks.LaunchError, match="same parameters is live"):
        benchmarks.resume_run(first)


def test_a_partial_checkpoint_is_a_clear_error_and_nothing_is_recorded(tmp_path, tiny_checkpoint_dir):
    partial = tmp_path / "partial"
    shutil.copytree(tiny_checkpoint_dir, partial)
    shutil.rmtree(partial / "ar_fine")
    with pytest.raises(CheckpointError, match="'fine'"):
        benchmarks.register_checkpoint(partial)
    (partial / "ar_coarse" / "ckpt_best.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="'coarse'.*corrupt"):
        benchmarks.register_checkpoint(partial, stages=("semantic", "coarse"))
    with pytest.raises(CheckpointError, match="does not exist"):
        benchmarks.register_checkpoint(tmp_path / "nowhere")
    assert not Checkpoint.objects.exists()


def test_systems_without_a_model_need_no_stage_but_two_stage_needs_coarse(media_root, tmp_path, tiny_checkpoint_dir):
    semantic_only = tmp_path / "semantic-only"
    shutil.copytree(tiny_checkpoint_dir / "ar_semantic", semantic_only / "ar_semantic")
    checkpoint = benchmarks.register_checkpoint(semantic_only, stages=("semantic",))
    dataset = make_dataset(media_root, n_tracks=3, write_audio=False)
    with pytest.raises(CheckpointError, match="no stage 'coarse'"):
        _launch(checkpoint, dataset, n_excerpts=2, systems=["two-stage", "random"])
    assert not BenchmarkRun.objects.exists()


def test_bad_dataset_specs_and_sizes_are_clear_errors(media_root, tmp_path, tiny_checkpoint_dir):
    with pytest.raises(DatasetError, match="does not exist"):
        benchmarks.parse_dataset_spec(f"musdb18:{tmp_path}/missing")
    with pytest.raises(DatasetError, match="not one of"):
        benchmarks.parse_dataset_spec("youtube:abc")
    with pytest.raises(DatasetError, match="N >= 2"):
        benchmarks.parse_dataset_spec("synthetic:one")
    assert benchmarks.parse_dataset_spec("synthetic:3").n_tracks == 3
    checkpoint = benchmarks.register_checkpoint(tiny_checkpoint_dir)
    dataset = make_dataset(media_root, n_tracks=3, write_audio=False)
    with pytest.raises(benchmarks.LaunchError, match="has 3 excerpts"):
        _launch(checkpoint, dataset, n_excerpts=10)
    with pytest.raises(benchmarks.LaunchError, match="unknown system"):
        _launch(checkpoint, dataset, n_excerpts=2, systems=["four-stage"])
    assert not BenchmarkRun.objects.exists()
