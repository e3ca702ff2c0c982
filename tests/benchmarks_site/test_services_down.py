"""Outages as a user meets them: the database or the broker is down, or answers and refuses the
tasks. Every command stops with exit 2 and ONE line naming the service and its URL (password
hidden); a run the broker did not take is never reported as dispatched: it waits
`undispatched` until `resume` or a relaunch of the same parameters sends it."""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest

from evalsite.celery import app
from evalsite.models import BenchmarkRun, GeneratedClip
from hafm_core.cli import main
from hafm_core.reachability import ServiceUnavailableError, require
from tests.conftest import ROOT
from tests.fake_services import refusing_redis, silent_port
from tests.progress import run_until_exit

DOWN_DATABASE = "postgres://postgres:s3cret@127.0.0.1:1/hafm"
DOWN_BROKER = "redis://:s3cret@127.0.0.1:1/0"
HIDDEN = {DOWN_DATABASE: "postgres://postgres:***@127.0.0.1:1/hafm", DOWN_BROKER: "redis://:***@127.0.0.1:1/0"}


@pytest.fixture
def audio_folders(tmp_path):
    from hafm_core.audio import write_audio

    folders = []
    for name in ("background", "eval"):
        folder = tmp_path / name
        folder.mkdir()
        write_audio(folder / "a.wav", np.random.default_rng(0).standard_normal(16_000).astype(np.float32) * 0.1,
                    16_000)
        folders.append(str(folder))
    return folders


def assert_one_line(code: int, stdout: str, stderr: str, service: str, url: str) -> None:
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1, stderr
    assert f"the {service} at {HIDDEN[url]}" in lines[0], lines[0]
    assert "s3cret" not in stdout + stderr and "Traceback" not in stderr


def hafm(argv: list[str], **env):
    return run_until_exit([sys.executable, "-m", "hafm_core", *argv], cwd=ROOT, env={**os.environ, **env},
                          what=f"hafm {' '.join(argv)}")


@pytest.mark.slow
@pytest.mark.parametrize("service, variable, url", [("database", "DATABASE_URL", DOWN_DATABASE),
                                                    ("broker", "CELERY_BROKER_URL", DOWN_BROKER)])
def test_an_unreachable_service_stops_every_command_with_one_line(service, variable, url, tmp_path,
                                                                   tiny_checkpoint_dir, audio_folders):
    commands = [["benchmark", "run", "--checkpoint", str(tiny_checkpoint_dir), "--dataset", "synthetic:3",
                 "--excerpts", "1", "--embedder", "logmel", "--wait"],
                ["fad", *audio_folders, "--embedder", "logmel", "--distributed"]]
    if service == "database":
        commands.append(["benchmark", "status", "0000"])
    for argv in commands:
        result = hafm(argv, **{variable: url, "HAFM_VAR_DIR": str(tmp_path / "var")})
        assert_one_line(result.returncode, result.stdout, result.stderr, service, url)
    # Nothing was prepared or recorded before the check: no dataset folder under the media dir.
    assert not (tmp_path / "var" / "media" / "datasets").exists()


def test_a_service_that_accepts_connections_and_never_answers_is_reported_in_seconds():
    with silent_port() as port:
        for database, broker in ((f"postgres://postgres:pw@127.0.0.1:{port}/x", None),
                                 (None, f"redis://127.0.0.1:{port}/0"),
                                 (None, f"amqp://guest:pw@127.0.0.1:{port}//")):
            started = time.monotonic()
            with pytest.raises(ServiceUnavailableError, match=r"^the (database|broker) at \S+:\*\*\*@|"
                                                              r"^the broker at redis://127"):
                require(database, broker, timeout_s=2.0)
            # Bounded by the check's timeout (2 s, +1 s guard), not by a client library's default.
            assert time.monotonic() - started < 10


@pytest.fixture
def refusing_broker(monkeypatch):
    """The app sends to a Redis that answers PING and refuses every write."""
    with refusing_redis() as url:
        monkeypatch.setattr(app.conf, "broker_url", url)
        yield url


def _run_argv(checkpoint, seed=0):
    return ["benchmark", "run", "--checkpoint", str(checkpoint), "--dataset", "synthetic:10", "--excerpts", "2",
            "--systems", "random,ground-truth", "--seed", str(seed), "--embedder", "logmel", "--json"]


@pytest.mark.django_db(transaction=True)
def test_a_run_the_broker_refuses_waits_undispatched_until_resume_or_relaunch(
        capsys, monkeypatch, media_root, tiny_checkpoint_dir, refusing_broker, tmp_path):
    code = main(_run_argv(tiny_checkpoint_dir))
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and captured.out == "", captured
    run = BenchmarkRun.objects.get()
    assert run.status == BenchmarkRun.Status.UNDISPATCHED
    assert "did not take its tasks" in lines[0] and f"hafm benchmark resume {run.id}" in lines[0]
    assert ":***@" in lines[0] and "s3cret" not in lines[0]
    # `status` says so too, and a resume while the broker still refuses is the same one line.
    assert main(["benchmark", "status", str(run.id)]) == 0
    assert "undispatched" in capsys.readouterr().out
    assert main(["benchmark", "resume", str(run.id)]) == 2
    assert "did not take its tasks" in capsys.readouterr().err
    assert BenchmarkRun.objects.get(id=run.id).status == BenchmarkRun.Status.UNDISPATCHED

    # The broker is back. Relaunching the same parameters dispatches the waiting run (not a
    # new one, and never "reused" empty): its two-per-system clips go to the queue.
    monkeypatch.setattr(app.conf, "broker_url", f"sqla+sqlite:///{tmp_path}/broker.sqlite3")
    assert main(_run_argv(tiny_checkpoint_dir)) == 0
    import json

    relaunched = json.loads(capsys.readouterr().out)
    assert relaunched["id"] == str(run.id) and relaunched["reused"] is True
    # Two clips of each of the two systems: one task per system (clips per task defaults to 4).
    assert GeneratedClip.objects.filter(run=run).count() == 4
    assert relaunched["tasks_sent"] == 2
    assert BenchmarkRun.objects.get(id=run.id).status == BenchmarkRun.Status.PENDING
    assert queued_messages(tmp_path / "broker.sqlite3") == 2


@pytest.mark.django_db(transaction=True)
def test_resume_dispatches_an_undispatched_run(capsys, monkeypatch, media_root, tiny_checkpoint_dir,
                                               refusing_broker, tmp_path):
    assert main(_run_argv(tiny_checkpoint_dir, seed=5)) == 2
    capsys.readouterr()
    run = BenchmarkRun.objects.get()
    monkeypatch.setattr(app.conf, "broker_url", f"sqla+sqlite:///{tmp_path}/broker.sqlite3")
    assert main(["benchmark", "resume", str(run.id), "--json"]) == 0
    import json

    assert json.loads(capsys.readouterr().out)["tasks_sent"] == 2  # one task per system
    assert BenchmarkRun.objects.get(id=run.id).status == BenchmarkRun.Status.PENDING
    assert queued_messages(tmp_path / "broker.sqlite3") == 2


def queued_messages(broker_file) -> int:
    """Messages waiting in an embedded (SQLAlchemy/SQLite) broker, read with sqlite3."""
    import sqlite3

    with sqlite3.connect(broker_file) as connection:
        return connection.execute("SELECT COUNT(*) FROM kombu_message WHERE visible = 1").fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_the_launch_form_never_says_launched_when_the_broker_refused(admin_client, media_root,
                                                                     tiny_checkpoint_dir, refusing_broker):
    from django.urls import reverse

    form = {"checkpoint": str(tiny_checkpoint_dir), "dataset": "synthetic:10", "systems": ["random"],
            "excerpts": 2, "seed": 1, "embedder": "logmel"}
    page = admin_client.post(reverse("evalsite:run_launch"), form, follow=True).content.decode()
    run = BenchmarkRun.objects.get()
    assert run.status == BenchmarkRun.Status.UNDISPATCHED
    assert "Benchmark launched" not in page and "did not take its tasks" in page
    assert "status-undispatched" in page
