"""A staff user new to the site, with Django's test client and a real Celery worker: logs in
at /admin/, opens the launch form, launches a benchmark of a cascade checkpoint, watches the
run page until it finishes, reads the comparison and listens to a clip."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from django.urls import reverse

from evalsite.models import BenchmarkRun
from tests.benchmarks_site.conftest import run_snapshot
from tests.progress import busy_seconds, wait_for_progress

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SYSTEMS = ["three-stage", "two-stage", "random", "ground-truth"]


def test_a_new_staff_user_launches_watches_and_reads_a_benchmark(django_user_model, settings, media_root,
                                                                 celery_worker_factory, broker_url,
                                                                 tiny_checkpoint_dir, tiny_weights_dir):
    worker = celery_worker_factory(broker_url, env={"HAFM_MEDIA_DIR": str(media_root),
                                                    "HAFM_WEIGHTS_DIR": str(tiny_weights_dir)})
    settings.CELERY_TASK_DEFAULT_QUEUE = worker.queue
    django_user_model.objects.create_user("researcher", password="a-long-password-1", is_staff=True)
    browser = Client(enforce_csrf_checks=True)

    # Log in through the admin's own form, CSRF token and all.
    login = browser.get("/admin/login/?next=/admin/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.content.decode()).group(1)
    logged_in = browser.post("/admin/login/?next=/admin/", {"username": "researcher", "password": "a-long-password-1",
                                                            "csrfmiddlewaretoken": token, "next": "/admin/"})
    assert logged_in.status_code == 302 and logged_in["Location"] == "/admin/"

    # The home page leads to the launch form.
    home = browser.get("/").content.decode()
    launch_url = reverse("evalsite:run_launch")
    assert f'href="{launch_url}"' in home
    form = browser.get(launch_url)
    assert form.status_code == 200 and "Launch a benchmark" in form.content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.content.decode()).group(1)
    launched = browser.post(launch_url, {"checkpoint": str(tiny_checkpoint_dir), "dataset": "synthetic:10",
                                         "systems": SYSTEMS, "excerpts": 2, "seed": 3, "embedder": "logmel",
                                         "csrfmiddlewaretoken": token}, follow=True)
    run = BenchmarkRun.objects.get()
    assert launched.redirect_chain[-1][0] == reverse("evalsite:run_detail", args=[run.id])
    page = launched.content.decode()
    assert "Benchmark launched" in page and 'data-system="three-stage"' in page

    # Watch: the page polls its progress JSON until the run is no longer active.
    progress_url = reverse("evalsite:run_progress", args=[run.id])
    assert f'data-url="{progress_url}"' in page
    seen_phases, progress = set(), {}

    def poll() -> bool:
        progress.update(json.loads(browser.get(progress_url).content))
        seen_phases.add(progress["phase"])
        return not progress["active"]

    # Fails only when nothing moves (clips, fits, phase, the worker's CPU) for the stated time.
    wait_for_progress(poll, lambda: (run_snapshot(run.id), busy_seconds(worker.process)),
                      what="the run page to show the run done",
                      poll_s=0.25, details=lambda: worker.log()[-3000:])
    assert progress["status"] == "done", (progress["error"], worker.log()[-3000:])
    assert progress["totals"]["done"] == progress["totals"]["total"] == 2 * len(SYSTEMS)
    assert progress["failures"] == [] and sorted(progress["measured"]) == sorted(SYSTEMS)
    assert seen_phases >= {"finished"}
    finished = browser.get(reverse("evalsite:run_detail", args=[run.id])).content.decode()
    compare_url = reverse("evalsite:run_compare", args=[run.id])
    assert f'href="{compare_url}"' in finished and "status-done" in finished

    # Read the comparison: FAD with a CI per system, the paired improvement beside the paper's.
    compare = browser.get(compare_url).content.decode()
    for system in SYSTEMS:
        row = compare.split(f'<tr data-system="{system}">')[1].split("</tr>")[0]
        assert re.search(r"<td>\d+\.\d{3}</td>\s*<td>\[\d+\.\d{3}, \d+\.\d{3}\]</td>", row), row
    improvement = compare.split('id="improvement"')[1].split("</section>")[0]
    assert re.search(r'id="improvement-estimate">-?\d+\.\d%', improvement)
    assert "18.6%" in improvement and "1.71" in improvement and "2.10" in improvement
    assert 'id="fit-table"' in compare and "fit_score" in compare
    assert 'id="fad-history"' in compare and reverse("evalsite:plotly_js") in compare
    # ... and listen: every system's clip of the first excerpt plays.
    players = re.findall(r'<audio controls preload="none" src="([^"]+)"', compare)
    assert len(players) >= 1 + 2 * len(SYSTEMS)
    audio = browser.get(players[1])
    body = b"".join(audio.streaming_content) if audio.streaming else audio.content
    assert audio.status_code == 200 and audio["Content-Type"].startswith("audio/") and body[:4] == b"RIFF"
