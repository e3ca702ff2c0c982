"""Attack: an anonymous visitor crawls the site to pair a study's excerpts with system names.

The run comparison page plays each system's clip under its name; a listener who reaches it
can match a study's stimuli to it. Here a scripted anonymous client follows every link it
can reach (and forges the audio URLs of the run's clips), and tries to match what it gets
against the audio the study was made from. Publishing is a staff action refused while any
study uses the run's excerpts; a published run's excerpts are refused to new studies.
"""

from __future__ import annotations

import re
from collections import deque
from urllib.parse import urljoin, urlparse

import numpy as np
import pytest
from django.urls import reverse

from evalsite.models import BenchmarkRun, GeneratedClip
from evalsite.services import benchmarks, run_audio
from evalsite.services.benchmark_studies import create_study_from_run
from hafm_core.audio import write_audio
from hafm_core.provenance import sha256_file
from listening.exceptions import StudySetupError
from listening.models import Study
from tests.benchmarks_site.conftest import make_dataset

pytestmark = pytest.mark.django_db

SYSTEMS = ["three-stage", "two-stage", "ground-truth"]
LINK = re.compile(r'(?:href|src|action)="([^"#]+)"')


@pytest.fixture
def finished_run(media_root, tiny_checkpoint_dir):
    """A done run whose clips are real files (each system: a scaled copy of the accompaniment)."""
    checkpoint = benchmarks.register_checkpoint(tiny_checkpoint_dir)
    dataset = make_dataset(media_root, n_tracks=2)
    run = benchmarks.launch_run(checkpoint=checkpoint, dataset=dataset, systems=SYSTEMS, n_excerpts=2, seed=0,
                                embedder="logmel", dispatch=False).run
    rng = np.random.default_rng(0)
    for clip in GeneratedClip.objects.filter(run=run).select_related("excerpt"):
        path = media_root / "runs" / f"{clip.id}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_audio(path, (0.2 * rng.standard_normal(64_000)).astype(np.float32), 16_000)
        GeneratedClip.objects.filter(id=clip.id).update(status="done", accompaniment_path=str(path),
                                                        mix_path=str(path))
    BenchmarkRun.objects.filter(id=run.id).update(status="done", phase="finished")
    run.refresh_from_db()
    return run


def crawl(client, extra: list[str]) -> dict[str, tuple[int, str, bytes]]:
    """Every same-site URL reachable from the home page (plus `extra`): {url: (status, type, body)}."""
    seen: dict[str, tuple[int, str, bytes]] = {}
    queue = deque(["/", *extra])
    while queue and len(seen) < 400:
        url = queue.popleft()
        if url in seen or url.startswith("/admin/"):
            continue
        response = client.get(url)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        kind = response.get("Content-Type", "")
        seen[url] = (response.status_code, kind, body)
        if response.status_code == 200 and kind.startswith("text/html"):
            for link in LINK.findall(body.decode()):
                target = urljoin(url, link)
                if urlparse(target).netloc in ("", "testserver"):
                    queue.append(urlparse(target).path)
    return seen


def forged_audio_urls(run) -> list[str]:
    urls = []
    for clip in GeneratedClip.objects.filter(run=run):
        urls += [reverse("evalsite:clip_audio", args=[clip.id, kind]) for kind in ("mix", "accompaniment")]
        urls += [reverse("evalsite:excerpt_audio", args=[clip.excerpt_id, kind])
                 for kind in ("vocal", "accompaniment")]
    return urls + [reverse("evalsite:run_compare", args=[run.id]), reverse("evalsite:run_detail", args=[run.id])]


def test_an_anonymous_crawler_pairs_no_study_excerpt_with_a_system(client, finished_run):
    study = create_study_from_run(finished_run, name="three-stage beats two-stage (staff only)",
                                  quota_per_pair=2)
    Study.objects.create(name="paused study of ground-truth", status=Study.Status.PAUSED, quota_per_pair=1,
                         completion_code="X", media_dir="x")
    Study.objects.create(name="closed study of random", status=Study.Status.CLOSED, quota_per_pair=1,
                         completion_code="X", media_dir="x")
    sources = {sha256_file(s.source_accompaniment) for s in study.stimuli.all()}
    sources |= {sha256_file(s.source_vocal) for s in study.stimuli.all()}

    pages = crawl(client, forged_audio_urls(finished_run))
    audio = {url: body for url, (status, kind, body) in pages.items() if status in (200, 206) and
             kind.startswith("audio/")}
    import hashlib

    assert not {hashlib.sha256(body).hexdigest() for body in audio.values()} & sources
    assert not audio, f"system-labelled audio served to an anonymous visitor: {sorted(audio)}"
    text = b"".join(body for _, kind, body in pages.values() if kind.startswith("text/")).decode()
    assert "<audio" not in text and "Comparison of" not in text  # no comparison players reached
    for name in Study.objects.values_list("name", flat=True):
        assert name not in text
    listener_links = set(re.findall(r"/listen/s/([0-9a-f-]{36})/", text))
    assert listener_links == {str(study.public_id)}  # the open study only, under its listener title


def test_publishing_is_refused_while_a_study_uses_the_excerpts(admin_client, client, finished_run):
    study = create_study_from_run(finished_run, name="uses the run", quota_per_pair=2)
    response = admin_client.post(reverse("evalsite:run_publish", args=[finished_run.id]), follow=True)
    assert "1 listening study uses" in response.content.decode()
    finished_run.refresh_from_db()
    assert not finished_run.audio_public
    assert client.get(reverse("evalsite:run_compare", args=[finished_run.id])).status_code == 404

    # A study made from re-uploaded copies of the vocals (other paths, same bytes) also counts.
    study.stimuli.update(source_vocal="/elsewhere/upload.wav")
    with pytest.raises(run_audio.PublishRefused):
        run_audio.publish(finished_run)

    study.delete()
    admin_client.post(reverse("evalsite:run_publish", args=[finished_run.id]))
    finished_run.refresh_from_db()
    assert finished_run.audio_public
    pages = crawl(client, [])
    assert pages[reverse("evalsite:run_compare", args=[finished_run.id])][0] == 200
    assert any(kind.startswith("audio/") for status, kind, _ in pages.values() if status == 200)

    # ... and a published run's excerpts cannot be put in a new study.
    with pytest.raises(StudySetupError, match="published run comparison"):
        create_study_from_run(finished_run, name="after publishing", quota_per_pair=2)
    run_audio.unpublish(finished_run)
    assert client.get(reverse("evalsite:run_compare", args=[finished_run.id])).status_code == 404
    assert create_study_from_run(finished_run, name="after unpublishing", quota_per_pair=2).pk


def test_only_staff_may_publish(client, django_user_model, finished_run):
    django_user_model.objects.create_user("listener", password="x" * 12)
    client.login(username="listener", password="x" * 12)
    response = client.post(reverse("evalsite:run_publish", args=[finished_run.id]))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    finished_run.refresh_from_db()
    assert not finished_run.audio_public
