"""A study made from uploads is rendered by a Celery task, never inside the request (#18 item 9).

The request saves the clips and a `rendering` study and sends the task; the staff page shows
rendered clips / total, then the open study. Bad audio fails the study with its reason, a
broker that refuses the task leaves it `undispatched` until "Render again", a redelivered task
renders nothing twice, and no listener can join a study that is not rendered.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from django.core.files.uploadedfile import SimpleUploadedFile

from listening import services, tasks
from listening.exceptions import ParticipationRefused, StudySetupError
from listening.models import Item, Stimulus, Study
from listening.uploads import SOURCES_SUBDIR
from tests.benchmarks_site.test_services_down import queued_messages
from tests.fake_services import refusing_redis
from tests.progress import busy_seconds, wait_for_progress

pytestmark = pytest.mark.django_db

SYSTEMS = ("three-stage", "random")
N_STIMULI = 2 * len(SYSTEMS)  # two excerpts, no catch clips


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_user("staff", password="pw-123456", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


@pytest.fixture
def embedded_broker(tmp_path, monkeypatch) -> Path:
    """The app sends to a fresh embedded broker that no worker reads: tasks wait there."""
    from evalsite.celery import app

    path = tmp_path / "broker.sqlite3"
    monkeypatch.setattr(app.conf, "broker_url", f"sqla+sqlite:///{path}")
    return path


def upload(client, clip_entries, vocal_bytes: bytes | None = None, name: str = "uploaded"):
    files = [SimpleUploadedFile(f"{e['excerpt']}__{e['system']}.wav", Path(e["accompaniment_path"]).read_bytes())
             for e in clip_entries if e["system"] in SYSTEMS]
    for excerpt in ("track0", "track1"):
        vocal = next(e["vocal_path"] for e in clip_entries if e["excerpt"] == excerpt)
        files.append(SimpleUploadedFile(f"{excerpt}__vocal.wav", vocal_bytes or Path(vocal).read_bytes()))
    return client.post("/listen/staff/new/", {
        "name": name, "clips": files, "comparisons": "three-stage vs random", "attributes": "",
        "quota_per_pair": 5, "rating_quota_per_clip": 0, "preference_trials": 2, "rating_trials": 0,
        "catch_rate": 0.0, "completion_code": "C0DE"})


def assert_no_listener_can_join(client, study) -> None:
    with pytest.raises(ParticipationRefused):
        services.join_study(study, None)
    page = client.get(f"/listen/s/{study.public_id}/")
    assert b"not taking new listeners" in page.content


def media_files(media_root: Path, study: Study) -> list[Path]:
    return sorted(p for p in (media_root / study.media_dir).rglob("*") if p.is_file())


def test_the_request_only_queues_the_rendering_and_the_task_opens_the_study(staff_client, clip_entries,
                                                                          embedded_broker, media_root):
    response = upload(staff_client, clip_entries)
    study = Study.objects.get(name="uploaded")
    assert response.status_code == 302 and str(study.public_id) in response["Location"]
    # Nothing rendered in the request: the task waits on the broker, the study has nothing to serve.
    assert queued_messages(embedded_broker) == 1
    assert study.status == Study.Status.RENDERING and study.render_total == N_STIMULI
    assert not Stimulus.objects.filter(study=study).exists() and not Item.objects.filter(study=study).exists()
    page = staff_client.get(response["Location"]).content.decode()
    assert f"0 / {N_STIMULI} stimuli rendered" in page and 'http-equiv="refresh"' in page
    assert_no_listener_can_join(staff_client, study)
    assert any((media_root / SOURCES_SUBDIR).iterdir())  # the uploads wait for the worker

    assert tasks.render_study(study.pk) == N_STIMULI  # what the worker runs
    study.refresh_from_db()
    assert study.status == Study.Status.OPEN and study.rendered_clips == N_STIMULI
    assert study.stimuli.count() == N_STIMULI and study.items.count() == 2
    page = staff_client.get(response["Location"]).content.decode()
    assert "0 / 10 judgments" in page and "stimuli rendered" not in page
    assert not any((media_root / SOURCES_SUBDIR).iterdir())  # sources gone once rendered
    assert services.join_study(study, None).study_id == study.pk


def test_a_redelivered_task_renders_nothing_twice_and_clears_a_killed_attempt(media_root, clip_entries):
    study = services.plan_study(name="redelivered", stimuli=clip_entries, comparisons=[("three-stage", "random")],
                                completion_code="C", quota_per_pair=2, catch_rate=0.25, sample_rate_hz=16_000)
    # A worker killed mid-rendering left a folder of clips and a count behind.
    killed = media_root / study.media_dir / "killed-attempt"
    killed.mkdir(parents=True)
    (killed / "half.wav").write_bytes(b"RIFF")
    Study.objects.filter(pk=study.pk).update(rendered_clips=3)

    made = tasks.render_study(study.pk)  # the broker hands the task out again
    assert made == study.render_total == 2 * (2 + 2)  # two systems and two catch clips per excerpt
    files = media_files(media_root, study)
    assert not killed.exists() and len(files) == made
    assert tasks.render_study(study.pk) == 0  # a second delivery after it finished
    assert Stimulus.objects.filter(study=study).count() == made
    assert media_files(media_root, study) == files
    study.refresh_from_db()
    assert sorted(str(media_root / s.file_name) for s in study.stimuli.all()) == [str(f) for f in files]
    with pytest.raises(StudySetupError, match="nothing to render again"):
        services.render_again(study)


def test_audio_that_cannot_be_rendered_fails_the_study_with_its_reason(staff_client, clip_entries, eager_tasks,
                                                                      media_root, tmp_path):
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(32_000, dtype=np.float32), 16_000)
    response = upload(staff_client, clip_entries, vocal_bytes=silent.read_bytes())
    study = Study.objects.get(name="uploaded")
    assert response.status_code == 302
    assert study.status == Study.Status.FAILED
    assert "track0__vocal.wav: all silent" in study.render_error, study.render_error
    assert not study.stimuli.exists() and not study.items.exists()
    assert media_files(media_root, study) == []  # nothing half-rendered is kept
    page = staff_client.get(response["Location"]).content.decode()
    assert "rendering failed" in page and "silent" in page and "Render again" in page
    assert_no_listener_can_join(staff_client, study)
    # Staff cannot open it by hand either.
    staff_client.post(f"/listen/staff/{study.public_id}/status", {"status": "open"})
    study.refresh_from_db()
    assert study.status == Study.Status.FAILED
    with pytest.raises(StudySetupError, match="no stimuli to open"):
        services.set_study_status(study, Study.Status.OPEN)


def test_a_broker_that_refuses_the_task_leaves_the_study_undispatched_until_render_again(
        staff_client, clip_entries, monkeypatch, tmp_path):
    from evalsite.celery import app

    with refusing_redis() as url:
        monkeypatch.setattr(app.conf, "broker_url", url)
        response = upload(staff_client, clip_entries)
    study = Study.objects.get(name="uploaded")
    assert response.status_code == 302
    assert study.status == Study.Status.UNDISPATCHED
    page = staff_client.get(response["Location"]).content.decode()
    assert "did not take the rendering task" in page and ":***@127.0.0.1" in page and "s3cret" not in page
    assert_no_listener_can_join(staff_client, study)

    broker = tmp_path / "broker.sqlite3"  # the broker is back
    monkeypatch.setattr(app.conf, "broker_url", f"sqla+sqlite:///{broker}")
    staff_client.post(f"/listen/staff/{study.public_id}/render")
    study.refresh_from_db()
    assert study.status == Study.Status.RENDERING and study.render_error == "" and queued_messages(broker) == 1
    assert tasks.render_study(study.pk) == N_STIMULI
    study.refresh_from_db()
    assert study.status == Study.Status.OPEN


@pytest.mark.django_db(transaction=True)
def test_a_worker_renders_an_uploaded_study(staff_client, clip_entries, celery_worker_factory, media_root,
                                            embedded_broker, settings):
    worker = celery_worker_factory(f"sqla+sqlite:///{embedded_broker}", env={"HAFM_MEDIA_DIR": str(media_root)})
    settings.CELERY_TASK_DEFAULT_QUEUE = worker.queue
    upload(staff_client, clip_entries)
    study = Study.objects.get(name="uploaded")

    def snapshot():
        study.refresh_from_db()
        return study.status, study.rendered_clips, busy_seconds(worker.process)

    wait_for_progress(lambda: snapshot()[0] != Study.Status.RENDERING, snapshot, what="the worker to render",
                      details=lambda: worker.log()[-3000:])
    assert study.status == Study.Status.OPEN, study.render_error
    assert study.stimuli.count() == N_STIMULI and len(media_files(media_root, study)) == N_STIMULI


def test_the_admin_cannot_open_a_study_still_rendering(admin_client, clip_entries):
    study = services.plan_study(name="planned", stimuli=clip_entries, comparisons=[("three-stage", "random")],
                                completion_code="C", quota_per_pair=2, sample_rate_hz=16_000)
    page = admin_client.post("/admin/listening/study/", {"action": "open_studies", "_selected_action": [study.pk]},
                             follow=True).content.decode()
    study.refresh_from_db()
    assert study.status == Study.Status.RENDERING
    assert "it has no stimuli to open yet" in page and "0 study(ies) set to open" in page
