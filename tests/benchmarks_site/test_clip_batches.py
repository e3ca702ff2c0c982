"""Clips per task is a run parameter: a worker generates a task's clips of one system in one
batched call, and a clip's audio is the same whatever the number of clips per task.

The tasks are the ones `dispatch_run` sends (read back from the embedded broker) and are run
here, in this process, by the same service function a worker calls.
"""

from __future__ import annotations

import numpy as np
import pytest

from evalsite.models import GeneratedClip
from evalsite.services import benchmark_work, benchmarks
from tests.benchmarks_site.conftest import make_dataset, queued_tasks

pytestmark = pytest.mark.django_db

SYSTEMS = ["three-stage"]  # the cascade batches; its three stages and decoding cover two-stage's too
N_EXCERPTS = 3


def _generate(checkpoint, dataset, broker_url, clips_per_task: int) -> dict[tuple[str, str], np.ndarray]:
    """Launch, run every dispatched generation task, return {(excerpt key, system): audio}."""
    from hafm_core.audio import read_audio

    run = benchmarks.launch_run(checkpoint=checkpoint, dataset=dataset, systems=SYSTEMS, n_excerpts=N_EXCERPTS,
                                seed=5, embedder="logmel", dispatch=False, clips_per_task=clips_per_task).run
    assert run.parameters["clips_per_task"] == clips_per_task
    sent = benchmarks.dispatch_run(run.id)
    tasks = [args for name, args in queued_tasks(broker_url)
             if name == "evalsite.benchmarks.generate_clips" and args[0] == str(run.id)]
    assert sent == len(tasks) == len(SYSTEMS) * -(-N_EXCERPTS // clips_per_task)
    for run_id, clip_ids in tasks:
        assert 1 <= len(clip_ids) <= clips_per_task
        assert benchmark_work.generate_clips(run_id, clip_ids) == len(clip_ids)
    clips = GeneratedClip.objects.filter(run=run).select_related("excerpt")
    assert [c.error for c in clips if c.status != "done"] == []
    audio = {(c.excerpt.key, c.system): read_audio(c.accompaniment_path)[0] for c in clips}
    benchmarks.cancel_run(run)  # no longer live: the next launch plans a new run instead of reusing it
    return audio


def test_a_clips_audio_is_the_same_whatever_the_clips_per_task(media_root, broker_url, tiny_checkpoint_dir,
                                                               tiny_weights_dir, monkeypatch):
    monkeypatch.setenv("HAFM_WEIGHTS_DIR", str(tiny_weights_dir))
    checkpoint = benchmarks.register_checkpoint(tiny_checkpoint_dir)
    dataset = make_dataset(media_root, n_tracks=N_EXCERPTS)
    one_by_one = _generate(checkpoint, dataset, broker_url, clips_per_task=1)
    batched = _generate(checkpoint, dataset, broker_url, clips_per_task=2)  # a batch of 2, then 1
    assert len(one_by_one) == N_EXCERPTS * len(SYSTEMS) and batched.keys() == one_by_one.keys()
    for key, audio in one_by_one.items():
        assert np.array_equal(batched[key], audio), key
    assert not np.array_equal(one_by_one[("track000-0", "three-stage")], one_by_one[("track001-0", "three-stage")])


def test_clips_per_task_must_be_a_whole_number_of_at_least_one(media_root, tiny_checkpoint_dir):
    checkpoint = benchmarks.register_checkpoint(tiny_checkpoint_dir)
    dataset = make_dataset(media_root, n_tracks=2, write_audio=False)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(benchmarks.LaunchError, match="clips per task"):
            benchmarks.launch_run(checkpoint=checkpoint, dataset=dataset, systems=SYSTEMS, n_excerpts=2, seed=0,
                                  embedder="logmel", dispatch=False, clips_per_task=bad)
