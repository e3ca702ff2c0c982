"""Staff create a study from uploads, watch judgments arrive and export them (page, admin, command)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from listening import selectors
from listening.models import Participant, Study
from tests.listening.conftest import prolific_id
from tests.listening.listener_client import Listener

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_user("staff", password="pw-123456", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


def run_listeners(study, n=2):
    for k in range(n):
        listener = Listener(study, PROLIFIC_PID=prolific_id(f"pid{k}"))
        listener.consent()
        listener.pass_screening()
        listener.practice()
        listener.finish(chosen="left" if k % 2 else "right")
    screened = Listener(study, PROLIFIC_PID=prolific_id("screened"))
    screened.consent()
    screened.pass_screening(n_correct=0)
    screened.pass_screening(n_correct=0)


def test_staff_create_study_from_uploaded_clips(staff_client, clip_entries, eager_tasks):
    """The rendering task runs here (eager); tests/listening/test_study_render_task.py sends it to a worker."""
    files = []
    for entry in clip_entries:
        if entry["system"] in ("three-stage", "random"):
            files.append(SimpleUploadedFile(f"{entry['excerpt']}__{entry['system']}.wav",
                                            Path(entry["accompaniment_path"]).read_bytes()))
    for excerpt in ("track0", "track1"):
        vocal = next(e["vocal_path"] for e in clip_entries if e["excerpt"] == excerpt)
        files.append(SimpleUploadedFile(f"{excerpt}__vocal.wav", Path(vocal).read_bytes()))
    response = staff_client.post("/listen/staff/new/", {
        "name": "uploaded", "clips": files, "comparisons": "three-stage vs random",
        "attributes": "overall coherence", "quota_per_pair": 5, "rating_quota_per_clip": 2,
        "preference_trials": 3, "rating_trials": 1, "catch_rate": 0.0, "screening": "on",
        "completion_code": "C0DE", "screened_out_code": ""})
    study = Study.objects.get(name="uploaded")
    assert response.status_code == 302 and str(study.public_id) in response["Location"]
    assert study.stimuli.count() == 4 and study.items.count() == 2 + 4
    assert study.attributes == ["overall coherence"] and study.created_by.username == "staff"
    page = staff_client.get(response["Location"])
    assert b"three-stage vs random" in page.content and b"0 / 18 judgments" in page.content


def test_upload_form_explains_bad_names_and_missing_systems(staff_client, clip_entries):
    wav = Path(clip_entries[0]["accompaniment_path"]).read_bytes()
    response = staff_client.post("/listen/staff/new/", {
        "name": "bad", "clips": [SimpleUploadedFile("noseparator.wav", wav)], "comparisons": "a vs b",
        "quota_per_pair": 5, "rating_quota_per_clip": 0, "preference_trials": 3, "rating_trials": 0,
        "catch_rate": 0.0, "completion_code": "X"})
    assert response.status_code == 200 and b"EXCERPT__vocal.wav" in response.content
    response = staff_client.post("/listen/staff/new/", {
        "name": "bad", "clips": [SimpleUploadedFile("t__vocal.wav", wav), SimpleUploadedFile("t__x.wav", wav)],
        "comparisons": "x vs y", "quota_per_pair": 5, "rating_quota_per_clip": 0, "preference_trials": 3,
        "rating_trials": 0, "catch_rate": 0.0, "completion_code": "X"})
    assert response.status_code == 200 and b"no clip for system" in response.content
    assert not Study.objects.exists()


def test_staff_see_progress_pause_and_export(staff_client, make_study):
    study = make_study()
    run_listeners(study)
    page = staff_client.get(f"/listen/staff/{study.public_id}/")
    assert page.status_code == 200
    progress = selectors.study_progress(study)
    assert progress["judged"] == 2 * 3 + 2 * 2  # 3 regular pairs + 2 ratings per listener
    assert f"{progress['judged']} / {progress['quota']} judgments".encode() in page.content
    staff_client.post(f"/listen/staff/{study.public_id}/status", {"status": "paused"})
    study.refresh_from_db()
    assert study.status == "paused"

    exported = staff_client.get(f"/listen/staff/{study.public_id}/export/preferences.csv")
    assert exported["Content-Type"].startswith("text/csv")
    prefs = pd.read_csv(io.BytesIO(exported.content))
    assert list(prefs.columns[:5]) == ["participant", "excerpt", "system_left", "system_right", "chosen"]
    assert set(prefs["chosen"]) <= {"left", "right"} and len(prefs) == 2 * 4
    regular = prefs[~prefs["is_catch"]]
    assert len(regular) == 6
    # The exported systems are those the listener heard on each side.
    for row in regular.itertuples():
        a, b = row.comparison.split(" vs ")
        assert {row.system_left, row.system_right} == {a, b}
        assert row.chosen_system == (row.system_left if row.chosen == "left" else row.system_right)
    ratings = pd.read_csv(io.BytesIO(staff_client.get(
        f"/listen/staff/{study.public_id}/export/ratings.csv").content))
    assert list(ratings.columns[:5]) == ["participant", "excerpt", "system", "attribute", "score"]
    assert len(ratings) == 2 * 2 * 3 and set(ratings["score"]) == {4}
    participants = pd.read_csv(io.BytesIO(staff_client.get(
        f"/listen/staff/{study.public_id}/export/participants.csv").content))
    by_id = participants.set_index("external_id")
    pid0, screened = prolific_id("pid0"), prolific_id("screened")
    assert by_id.loc[pid0, "status"] == "completed" and by_id.loc[pid0, "screening"] == "passed"
    assert by_id.loc[screened, "status"] == "screened_out" and by_id.loc[screened, "screening"] == "failed"
    assert by_id.loc[pid0, "n_preferences"] == 3 and by_id.loc[pid0, "n_catch"] == 1
    assert by_id.loc[pid0, "duration_s"] >= 0
    assert staff_client.get(f"/listen/staff/{study.public_id}/export/secrets.csv").status_code == 404


def test_frames_and_exports_agree(make_study, tmp_path):
    study = make_study()
    run_listeners(study, n=1)
    frames = selectors.study_frames(study)
    assert list(frames["preferences"].columns) == selectors.PREFERENCE_COLUMNS
    assert list(frames["ratings"].columns) == selectors.RATING_COLUMNS
    assert list(frames["participants"].columns) == selectors.PARTICIPANT_COLUMNS
    call_command("export_study", study.name, "--out", str(tmp_path / "out"), stdout=io.StringIO())
    for name in ("preferences", "ratings", "participants"):
        written = pd.read_csv(tmp_path / "out" / f"{name}.csv")
        assert len(written) == len(frames[name])
        assert list(written.columns) == list(frames[name].columns)
    participant = Participant.objects.get(external_id=prolific_id("pid0"))
    prefs = frames["preferences"]
    assert set(prefs["participant"]) == {str(participant.public_id)}
    catch = prefs[prefs["is_catch"]]
    assert len(catch) == 1 and catch["catch_passed"].notna().all()


def test_export_command_by_public_id_and_unknown_study(make_study, tmp_path):
    from django.core.management.base import CommandError

    study = make_study()
    out = io.StringIO()
    call_command("export_study", str(study.public_id), "--out", str(tmp_path), stdout=out)
    assert "preferences.csv" in out.getvalue()
    assert pd.read_csv(tmp_path / "preferences.csv").empty
    with pytest.raises(CommandError, match="no study 'nope'"):
        call_command("export_study", "nope", "--out", str(tmp_path))


def test_admin_export_action_and_read_only_judgments(staff_client, make_study):
    study = make_study()
    run_listeners(study, n=1)
    response = staff_client.post("/admin/listening/study/", {
        "action": "export_csvs", "_selected_action": [study.pk]})
    assert response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = archive.namelist()
        prefs = pd.read_csv(archive.open(f"study-{study.public_id}/preferences.csv"))
    assert len(names) == 3 and len(prefs) == 4
    assert staff_client.get("/admin/listening/trial/").status_code == 200
    assert staff_client.get("/admin/listening/participant/").status_code == 200
    assert staff_client.get("/admin/listening/trial/add/").status_code == 403
