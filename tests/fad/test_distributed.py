"""FAD map/reduce on Celery: idempotent shards, the results page, and a real worker killed mid-shard."""

import json
import os
import shutil
import sys
import time

import pytest
from django.urls import reverse

from evalsite.celery import app
from evalsite.models import FadResult, FadShard
from evalsite.services import fad as fad_services
from hafm_core.fad.cache import EmbeddingCache
from hafm_core.fad.compute import compute_fad
from hafm_core.fad.embedders import load_embedder
from tests.conftest import ROOT, current_database_url
from tests.progress import busy_seconds, run_until_exit, wait_for_progress

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def eager_tasks(tmp_path, monkeypatch):
    """Tasks run in this process (no broker): the map/reduce logic without the transport."""
    monkeypatch.setenv("HAFM_CACHE_DIR", str(tmp_path / "cache"))
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def job_snapshot(result_id) -> tuple:
    """What moves while a FAD job makes progress: its status and each shard's state."""
    return (FadResult.objects.get(id=result_id).status,
            tuple(FadShard.objects.filter(result_id=result_id).order_by("id")
                  .values_list("status", "files_done", "attempts")))


def test_sharded_job_equals_the_single_pass_and_a_redelivered_shard_adds_nothing(audio_sets, eager_tasks, client):
    result = fad_services.start_fad(str(audio_sets["background"]), str(audio_sets["eval"]), "logmel",
                                    with_ci=True, shard_files=3)
    result.refresh_from_db()
    local = compute_fad(audio_sets["background"], audio_sets["eval"], load_embedder("logmel", device="cpu"),
                        with_ci=True)
    assert result.status == FadResult.Status.DONE, result.error
    assert result.n_shards == 6  # 8 files per side in shards of 3
    # rank-deficient covariances (40 frames, 64 dims), other shard sizes and merge order than
    # the local pass, and each side embedded afresh: still the same FAD to 1e-9
    assert result.fad == pytest.approx(local.fad, rel=1e-9)
    assert (result.ci_low, result.ci_high) == (pytest.approx(local.ci.low, rel=1e-9), pytest.approx(local.ci.high, rel=1e-9))
    assert (result.n_background, result.n_eval, result.n_eval_frames) == (8, 8, local.n_eval_frames)
    assert result.weights_hash == local.weights_hash and result.code_version
    # A second delivery of a done shard changes nothing.
    shard = result.shards.get(side=FadShard.Side.EVAL, index=0)
    outcome = fad_services.run_shard(shard.id)
    assert outcome["skipped"] is True
    shard.refresh_from_db()
    assert shard.attempts == 1
    assert FadResult.objects.get(id=result.id).fad == result.fad
    # The results page lists it with its interval.
    page = client.get(reverse("evalsite:fad_results")).content.decode()
    assert f"fad-{result.id}" in page
    assert f"{result.ci_low:.4f}" in page and f"{result.fad:.4f}" in page


def test_bad_audio_fails_the_job_with_the_file_named(tmp_path, audio_sets, eager_tasks):
    folder = tmp_path / "eval"
    shutil.copytree(audio_sets["eval"], folder)
    (folder / "song03.wav").write_bytes(b"not audio at all")
    result = fad_services.start_fad(str(audio_sets["background"]), str(folder), "logmel", shard_files=4)
    result.refresh_from_db()
    assert result.status == FadResult.Status.FAILED
    assert "song03.wav" in result.error and result.fad is None


def fad_cli(args, env):
    completed = run_until_exit([sys.executable, "-m", "hafm_core", "fad", *args], cwd=ROOT, env=env,
                               what="hafm fad --distributed")
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout), completed.stderr


@pytest.mark.services
@pytest.mark.slow
def test_killed_worker_loses_nothing_and_counts_nothing_twice(audio_sets, tmp_path, redis_url, celery_worker_factory):
    background, evaluation = tmp_path / "background", tmp_path / "eval"
    shutil.copytree(audio_sets["background"], background)
    shutil.copytree(audio_sets["eval"], evaluation)
    common = {"HAFM_DEVICE": "cpu", "OMP_NUM_THREADS": "1", "HAFM_VISIBILITY_TIMEOUT_S": "2"}

    # 1. Undisturbed, through the command line a user runs.
    calm = {**common, "HAFM_CACHE_DIR": str(tmp_path / "cache-calm")}
    worker = celery_worker_factory(redis_url, env=calm)
    cli_env = {**os.environ, **calm, "CELERY_BROKER_URL": redis_url, "HAFM_CELERY_QUEUE": worker.queue,
               "DATABASE_URL": current_database_url()}
    undisturbed, progress = fad_cli([str(background), str(evaluation), "--embedder", "logmel", "--distributed",
                                     "--json", "--ci", "--shard-files", "8"], cli_env)
    assert undisturbed["mode"] == "distributed" and "FAD job" in progress
    assert (undisturbed["n_background"], undisturbed["n_eval"]) == (8, 8)
    worker.stop()

    # 2. The same job; the worker is SIGKILLed inside the eval shard, after its first batch of
    # files is embedded and cached, while it waits to read song05 (a FIFO nobody writes to).
    crash = {**common, "HAFM_CACHE_DIR": str(tmp_path / "cache-crash")}
    blocked = evaluation / "song05.wav"
    original = blocked.read_bytes()
    blocked.unlink()
    os.mkfifo(blocked)
    worker = celery_worker_factory(redis_url, env=crash)
    result = fad_services.start_fad(str(background), str(evaluation), "logmel", with_ci=True, shard_files=8,
                                    queue=worker.queue, broker_url=redis_url)
    eval_shard = FadShard.objects.get(result=result, side=FadShard.Side.EVAL)
    wait_for_progress(lambda: FadShard.objects.get(id=eval_shard.id).files_done >= 4,
                      lambda: (job_snapshot(result.id), busy_seconds(worker.process)), what="the first eval batch",
                      details=worker.log)
    time.sleep(0.5)
    worker.kill()
    eval_shard.refresh_from_db()
    assert eval_shard.status == FadShard.Status.PENDING and eval_shard.attempts == 1
    assert FadResult.objects.get(id=result.id).status == FadResult.Status.RUNNING
    cached = list(EmbeddingCache(tmp_path / "cache-crash" / "fad").root.rglob("*.npy"))
    assert len(cached) == 8 + 4  # background shard and the first eval batch

    # 3. Restart: the unacknowledged shard is delivered again and the job completes.
    blocked.unlink()
    blocked.write_bytes(original)
    time.sleep(2.5)  # past the visibility timeout, so the restarted worker restores the message
    restarted = celery_worker_factory(redis_url, queue=worker.queue, env=crash)
    wait_for_progress(lambda: FadResult.objects.get(id=result.id).status not in FadResult.ACTIVE,
                      lambda: (job_snapshot(result.id), busy_seconds(restarted.process)), what="the job to finish",
                      details=lambda: restarted.log()[-2000:])
    result.refresh_from_db()
    assert result.status == FadResult.Status.DONE, result.error
    assert result.fad == pytest.approx(undisturbed["fad"], rel=1e-6)
    assert (result.n_background, result.n_eval) == (8, 8)
    assert (result.n_background_frames, result.n_eval_frames) == (
        undisturbed["n_background_frames"], undisturbed["n_eval_frames"])
    assert result.ci_low == pytest.approx(undisturbed["ci"]["low"], rel=1e-6)
    shards = {s.side: s for s in result.shards.all()}
    assert shards[FadShard.Side.EVAL].attempts == 2 and shards[FadShard.Side.BACKGROUND].attempts == 1


def no_bar(total, what):
    import contextlib

    class Bar:
        n = 0

        def update(self, k):
            self.n += k

    return contextlib.nullcontext(Bar())


@pytest.mark.services
@pytest.mark.slow
@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_a_killed_shard_is_resumed_and_the_client_tells_stalled_from_absent(
        broker, request, audio_sets, tmp_path, celery_worker_factory):
    from evalsite import fad_client

    broker_url = request.getfixturevalue(f"{broker}_url")
    background, evaluation = tmp_path / "background", tmp_path / "eval"
    shutil.copytree(audio_sets["background"], background)
    shutil.copytree(audio_sets["eval"], evaluation)
    env = {"HAFM_DEVICE": "cpu", "OMP_NUM_THREADS": "1", "HAFM_CACHE_DIR": str(tmp_path / "cache")}
    local = compute_fad(background, evaluation, load_embedder("logmel", device="cpu"), with_ci=True)
    blocked = evaluation / "song05.wav"
    original = blocked.read_bytes()
    blocked.unlink()
    os.mkfifo(blocked)
    worker = celery_worker_factory(broker_url, env=env)  # default visibility timeout (minutes)
    result = fad_services.start_fad(str(background), str(evaluation), "logmel", with_ci=True, shard_files=4,
                                    queue=worker.queue, broker_url=broker_url)
    stuck = FadShard.objects.get(result=result, side=FadShard.Side.EVAL, index=1)  # holds song05
    wait_for_progress(lambda: FadShard.objects.get(id=stuck.id).attempts == 1,
                      lambda: (job_snapshot(result.id), busy_seconds(worker.process)),
                      what="the worker to reach song05")
    time.sleep(0.5)
    worker.kill()  # SIGKILL mid-shard
    blocked.unlink()
    blocked.write_bytes(original)
    # No worker on the queue: the client says so (not "stalled").
    with pytest.raises(fad_client.DistributedFadError, match="no worker is consuming queue"):
        fad_client.wait(result.id, timeout_s=30, progress_bar=no_bar, stall_s=2, broker_url=broker_url)
    restarted = celery_worker_factory(broker_url, queue=worker.queue, env=env)
    # A job whose tasks were lost (never sent here) while a worker idles on its queue: the client
    # names the worker and says the job stalled, rather than "no worker".
    lost = fad_services.start_fad(str(background), str(evaluation), "logmel", shard_files=4,
                                  queue=worker.queue, send=False)
    with pytest.raises(fad_client.DistributedFadError) as stalled:
        fad_client.wait(lost.id, timeout_s=60, progress_bar=no_bar, stall_s=3, broker_url=broker_url)
    assert "no progress" in str(stalled.value) and restarted.queue in str(stalled.value)
    assert f"hafm fad --resume {lost.id}" in str(stalled.value)
    cli_env = {**os.environ, **env, "CELERY_BROKER_URL": broker_url, "HAFM_CELERY_QUEUE": worker.queue,
               "DATABASE_URL": current_database_url()}
    # Resume both: the killed shard is re-sent (or was handed back by the broker: RabbitMQ does
    # at once) and counted once; the lost job's shards are sent.
    resumed, _ = fad_cli(["--resume", str(result.id), "--distributed", "--json", "--stall", "120"], cli_env)
    recovered, _ = fad_cli(["--resume", str(lost.id), "--distributed", "--json", "--stall", "120"], cli_env)
    # Workers run single-threaded BLAS (OMP_NUM_THREADS=1), this process does not: float32
    # embeddings differ in the last bits, which rank-deficient covariances amplify to ~1e-8.
    assert recovered["fad"] == pytest.approx(local.fad, rel=1e-6)
    assert resumed["fad"] == pytest.approx(recovered["fad"], rel=1e-9), restarted.log()[-2000:]
    assert (resumed["n_eval"], resumed["n_eval_frames"]) == (8, local.n_eval_frames)  # nothing twice
    assert resumed["ci"]["low"] == pytest.approx(local.ci.low, rel=1e-6)


def test_a_broker_that_refuses_the_tasks_leaves_a_resumable_job(audio_sets, tmp_path, monkeypatch, eager_tasks):
    from evalsite import fad_client

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(fad_services, "_send", refuse)
    with pytest.raises(fad_client.DistributedFadError, match="the broker did not take the tasks") as error:
        fad_client.run_and_wait(str(audio_sets["background"]), str(audio_sets["eval"]), "logmel", None,
                                with_ci=False, with_fad_inf=False, seed=0, shard_files=4, timeout_s=5,
                                progress_bar=no_bar)
    result = FadResult.objects.get()
    assert f"hafm fad --resume {result.id}" in str(error.value)
    assert result.status == FadResult.Status.PENDING and result.error.startswith(fad_services.UNDISPATCHED)
    monkeypatch.undo()
    monkeypatch.setenv("HAFM_CACHE_DIR", str(tmp_path / "cache"))
    report = fad_client.resume_and_wait(str(result.id), timeout_s=60, progress_bar=no_bar)
    result.refresh_from_db()
    assert result.status == FadResult.Status.DONE and result.error == "" and report["n_eval"] == 8
