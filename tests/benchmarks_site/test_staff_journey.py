"""A staff user new to the site, with Django's test client and a real Celery worker: logs in
at /admin/, opens the launch form, launches a benchmark of a cascade checkpoint, watches the
run page until it finishes, reads the comparison and listens to a clip. The same run, read back
from the database and its files, is the suite's end-to-end check of the four systems through a
worker: clips, sidecars, FAD and fit per system, the paired comparison."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from evalsite.models import BenchmarkRun, GeneratedClip, SystemResult
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
    run.refresh_from_db()
    assert_four_systems_ran(run)


def assert_four_systems_ran(run: BenchmarkRun) -> None:
    """Every clip, result and comparison of a done run of the four systems, from the database and files."""
    from hafm_core.audio import read_audio

    n = run.n_excerpts
    clips = GeneratedClip.objects.filter(run=run).select_related("excerpt")
    assert [c.error for c in clips if c.status != "done"] == []
    assert clips.count() == n * len(SYSTEMS)
    assert run.parameters["clips_per_task"] >= 1
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
        assert result.error == "" and result.n_eval == n and result.n_background == n, (system, result.error)
        assert math.isfinite(result.fad) and result.fad_low <= result.fad <= result.fad_high, system
        assert result.fit, f"{system}: no fit summary"
    # The cascade's audio is decoded from codes; the random system is real music: the cascade is farther.
    assert results["three-stage"].fad > results["random"].fad
    assert results["two-stage"].fad > results["random"].fad
    # The systems decode from different codes: three-stage and two-stage do not sound the same.
    first = run.parameters["excerpts"][0]
    three = read_audio(clips.get(system="three-stage", excerpt__key=first).accompaniment_path)[0]
    two = read_audio(clips.get(system="two-stage", excerpt__key=first).accompaniment_path)[0]
    assert abs(three - two).max() > 0.05
    comparison = run.results["three_vs_two"]
    improvement = comparison["relative_improvement"]
    assert improvement["low"] <= improvement["estimate"] <= improvement["high"]
    assert improvement["estimate"] == pytest.approx(1 - results["three-stage"].fad / results["two-stage"].fad,
                                                    rel=1e-6, abs=1e-9)
    assert sorted(comparison["excerpts"]) == sorted(run.parameters["excerpts"])
