"""`manage.py run_demo` end to end against a real Celery worker on the embedded broker, at its
smallest size: weights, data, tokens, training, the four systems, FAD and fit, a study."""

from __future__ import annotations

import io
import math
import re

import pytest
from django.core.management import call_command

from evalsite.models import BenchmarkRun, Checkpoint, SystemResult

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SYSTEMS = ["three-stage", "two-stage", "random", "ground-truth"]


@pytest.mark.demo
def test_the_demo_runs_the_main_job_through_a_worker(tmp_path, settings, monkeypatch, celery_worker_factory,
                                                     broker_url, stempeg_sample_path, client):
    from listening.models import Study

    var = tmp_path / "var"
    folders = {"HAFM_VAR_DIR": var, "HAFM_MEDIA_DIR": var / "media", "HAFM_WEIGHTS_DIR": var / "weights",
               "HAFM_CACHE_DIR": var / "cache"}
    for name, folder in folders.items():
        folder.mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(name, str(folder))
    settings.VAR_DIR, settings.MEDIA_ROOT = var, var / "media"
    worker = celery_worker_factory(broker_url, env={name: str(folder) for name, folder in folders.items()})
    settings.CELERY_TASK_DEFAULT_QUEUE = worker.queue

    out = io.StringIO()
    call_command("run_demo", "--size", "smoke", stdout=out)
    text = out.getvalue()

    for phase in ("weights", "data", "tokens", "training", "benchmark", "measure", "study"):
        assert f"==> [{phase}] done in" in text, text
    run = BenchmarkRun.objects.get()
    assert run.status == BenchmarkRun.Status.DONE, f"{run.error}\n{worker.log()[-3000:]}"
    assert f"/runs/{run.id}/compare" in text
    # The checkpoint is the one the demo trained: all three stages, a few steps each.
    assert Checkpoint.objects.get() == run.checkpoint and run.checkpoint.stages == ["semantic", "coarse", "fine"]
    results = {r.system: r for r in SystemResult.objects.filter(run=run)}
    assert sorted(results) == sorted(SYSTEMS)
    for system, result in results.items():
        assert math.isfinite(result.fad) and result.fad_low <= result.fad <= result.fad_high, system
        assert result.n_eval == run.n_excerpts == 2 and result.fit, system
        assert f"{system}: FAD {result.fad:.3f}" in text
    assert "relative_improvement" in run.results["three_vs_two"]
    study = Study.objects.get()
    assert str(run.id) in study.source and f"/listen/s/{study.public_id}/" in text
    # Anonymous visitors see neither the system-labelled comparison nor the study's staff name.
    assert client.get(f"/runs/{run.id}/compare").status_code == 404
    home = client.get("/").content.decode()
    assert f"/runs/{run.id}/compare" not in home and study.name not in home
    # The printed staff login opens the comparison and the dashboards, as a first-time visitor would use it.
    login = re.search(r"log in at \S+ as (\S+) / (\S+)", text)
    assert login, text
    assert client.login(username=login.group(1), password=login.group(2))
    page = client.get(f"/runs/{run.id}/compare").content.decode()
    assert all(f'data-system="{system}"' in page for system in SYSTEMS)
    home = client.get("/").content.decode()
    assert f"/runs/{run.id}/compare" in home and study.name in home
    assert client.get(f"/analysis/studies/{study.public_id}/").status_code == 200
