"""Pages as a user meets them: staff launch form, run page and its JSON, comparison, audio."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from evalsite.models import BenchmarkRun, GeneratedClip, SystemResult
from evalsite.services import benchmarks
from tests.benchmarks_site.conftest import make_dataset

pytestmark = pytest.mark.django_db

SYSTEMS = ["three-stage", "two-stage", "random", "ground-truth"]


@pytest.fixture
def planned_run(media_root, tiny_checkpoint_dir):
    checkpoint = benchmarks.register_checkpoint(tiny_checkpoint_dir)
    dataset = make_dataset(media_root, n_tracks=3)
    return benchmarks.launch_run(checkpoint=checkpoint, dataset=dataset, systems=SYSTEMS, n_excerpts=3, seed=0,
                                 embedder="logmel", dispatch=False).run


def test_the_launch_form_is_for_staff_only(client, django_user_model):
    url = reverse("evalsite:run_launch")
    assert client.get(url).status_code == 302  # to the login page
    django_user_model.objects.create_user("listener", password="x" * 12)
    client.login(username="listener", password="x" * 12)
    assert client.get(url).status_code == 302


def test_staff_launch_from_the_form_plans_a_run_and_a_second_submit_reuses_it(
        admin_client, admin_user, settings, media_root, tiny_checkpoint_dir, broker_url):
    settings.CELERY_TASK_DEFAULT_QUEUE = "page-test-queue"
    page = admin_client.get(reverse("evalsite:run_launch"))
    assert page.status_code == 200 and b"Launch a benchmark" in page.content
    form = {"checkpoint": str(tiny_checkpoint_dir), "dataset": "synthetic:10", "systems": ["random", "ground-truth"],
            "excerpts": 2, "seed": 4, "embedder": "logmel"}
    response = admin_client.post(reverse("evalsite:run_launch"), form, follow=True)
    run = BenchmarkRun.objects.get()
    assert response.redirect_chain[-1][0] == reverse("evalsite:run_detail", args=[run.id])
    assert b"Benchmark launched" in response.content
    assert run.created_by == admin_user and run.queue == "page-test-queue"
    assert run.systems == ["random", "ground-truth"] and run.n_excerpts == 2
    assert GeneratedClip.objects.filter(run=run).count() == 4
    again = admin_client.post(reverse("evalsite:run_launch"), form, follow=True)
    assert b"already exists" in again.content and BenchmarkRun.objects.count() == 1
    # The form prefills the next launch with what was used.
    assert str(tiny_checkpoint_dir).encode() in admin_client.get(reverse("evalsite:run_launch")).content


def test_a_bad_dataset_path_is_shown_on_the_form_and_nothing_is_created(admin_client, media_root, tmp_path,
                                                                       tiny_checkpoint_dir):
    empty = tmp_path / "no-stems"
    empty.mkdir()
    form = {"checkpoint": str(tiny_checkpoint_dir), "dataset": f"stems:{empty}", "systems": ["random"],
            "seed": 0, "embedder": "logmel"}
    response = admin_client.post(reverse("evalsite:run_launch"), form)
    assert response.status_code == 200
    assert b"holds no stems" in response.content
    assert not BenchmarkRun.objects.exists()


def test_run_page_and_progress_json_show_counts_and_failure_reasons(client, planned_run):
    clips = list(GeneratedClip.objects.filter(run=planned_run, system="random").order_by("id"))
    GeneratedClip.objects.filter(id=clips[0].id).update(status="done", accompaniment_path="a.wav", seconds=2.0)
    GeneratedClip.objects.filter(id=clips[1].id).update(status="failed", error="InvalidAudioError: silent vocal")
    page = client.get(reverse("evalsite:run_detail", args=[planned_run.id]))
    assert page.status_code == 200
    assert b"silent vocal" in page.content
    data = json.loads(client.get(reverse("evalsite:run_progress", args=[planned_run.id])).content)
    by_system = {s["system"]: s for s in data["systems"]}
    assert by_system["random"] == {"system": "random", "total": 3, "done": 1, "failed": 1, "pending": 1,
                                   "percent": pytest.approx(66.7), "mean_clip_s": 2.0}
    assert by_system["three-stage"]["pending"] == 3
    assert data["failures"] == [{"system": "random", "excerpt": clips[1].excerpt.key,
                                 "error": "InvalidAudioError: silent vocal"}]


def test_cancel_button_needs_staff_and_cancels(client, admin_client, planned_run):
    url = reverse("evalsite:run_cancel", args=[planned_run.id])
    client.post(url)
    planned_run.refresh_from_db()
    assert planned_run.status == BenchmarkRun.Status.PENDING
    admin_client.post(url)
    planned_run.refresh_from_db()
    assert planned_run.status == BenchmarkRun.Status.CANCELLED


def test_comparison_page_shows_fad_cis_paper_figures_fit_and_a_local_plotly(admin_client, planned_run):
    client = admin_client  # system-labelled audio is staff-only (test_run_audio_access.py)
    for system, fad in (("three-stage", 1.5), ("two-stage", 2.0), ("random", 4.0), ("ground-truth", 0.4)):
        SystemResult.objects.create(run=planned_run, system=system, fad=fad, fad_low=fad - 0.1, fad_high=fad + 0.1,
                                    n_eval=3, n_background=3, embedder="logmel", fad_method="jackknife",
                                    fit={"n_ok": 2 if system == "random" else 3, "n_excerpts": 3,
                                         "metrics": {"fit_score": {
                                        "mean": 0.61, "ci_low": 0.5, "ci_high": 0.7, "n": 3}}})
    BenchmarkRun.objects.filter(id=planned_run.id).update(status="done", phase="finished", results={
        "three_vs_two": {"difference": {"estimate": -0.5, "low": -0.8, "high": -0.2},
                         "relative_improvement": {"estimate": 0.25, "low": 0.1, "high": 0.4, "method": "paired"}}})
    page = client.get(reverse("evalsite:run_compare", args=[planned_run.id]))
    text = page.content.decode()
    assert page.status_code == 200
    assert "[1.400, 1.600]" in text and "[1.900, 2.100]" in text
    assert "25.0%" in text and "[10.0%, 40.0%]" in text and "18.6%" in text
    assert "1.71" in text and "2.1" in text
    assert "0.610" in text  # fit score per system
    rates = [cell.split("<")[0] for cell in text.split('class="failure-rate">')[1:]]
    assert sorted(rates) == ["0%", "0%", "0%", "33%"]  # beside the mean: 1 of random's 3 failed
    assert reverse("evalsite:plotly_js") in text and "cdn" not in text.lower()
    history = json.loads(text.split('id="fad-history-data" type="application/json">')[1].split("</script>")[0])
    assert {p["system"] for p in history} == set(SYSTEMS)
    js = client.get(reverse("evalsite:plotly_js"))
    assert js.status_code == 200 and b"plotly" in js.content[:2000].lower()
    home = client.get(reverse("evalsite:home")).content.decode()
    assert reverse("evalsite:run_compare", args=[planned_run.id]) in home


def test_audio_is_served_only_from_the_media_folder(admin_client, planned_run, tmp_path):
    client = admin_client
    clip = GeneratedClip.objects.filter(run=planned_run).select_related("excerpt").first()
    vocal = client.get(reverse("evalsite:excerpt_audio", args=[clip.excerpt.id, "vocal"]))
    assert vocal.status_code == 200 and vocal.content[:4] == b"RIFF"
    outside = tmp_path / "outside.wav"
    outside.write_bytes(b"RIFF0000")
    GeneratedClip.objects.filter(id=clip.id).update(status="done", accompaniment_path=str(outside))
    assert client.get(reverse("evalsite:clip_audio", args=[clip.id, "accompaniment"])).status_code == 404
