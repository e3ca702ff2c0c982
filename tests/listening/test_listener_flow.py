"""The listener's way through a study, page by page, as a browser without the JavaScript sees it."""

from __future__ import annotations

import pytest
from django.test import Client

from listening.models import Participant, Rating, Study, Trial
from tests.listening.conftest import prolific_id
from tests.listening.listener_client import Listener

pytestmark = pytest.mark.django_db


def test_whole_study_with_prolific_redirect(make_study):
    study = make_study()
    listener = Listener(study, PROLIFIC_PID=prolific_id("pid-1"), STUDY_ID="st-9", SESSION_ID="se-3")
    response = listener.consent()
    assert response.status_code == 302 and response["Location"].endswith("/screening/")
    response = listener.pass_screening()
    assert response["Location"].endswith("/instructions/")
    reply = listener.practice()
    assert reply.status_code == 200 and reply.json()["next"].endswith("/trial/")
    page = listener.client.get(listener.base + "trial/")
    assert page.status_code == 200 and b"Question 1 /" in page.content
    assert listener.finish() == 6  # 4 pairs (one of them a catch trial) + 2 ratings
    done = listener.client.get(listener.base + "done/")
    assert b"CODE123" in done.content
    assert b"https://app.prolific.com/submissions/complete?cc=CODE123" in done.content
    participant = listener.participant
    assert (participant.status, participant.external_id, participant.platform_study_id,
            participant.platform_session_id, participant.screening_passed) == (
        "completed", prolific_id("pid-1"), "st-9", "se-3", True)
    assert Rating.objects.filter(trial__participant=participant).count() == 2 * 3
    assert not Trial.objects.filter(participant=participant, status="leased").exists()
    # Pages of a finished participant all lead to the end page.
    for step in ("screening/", "instructions/", "trial/"):
        assert listener.client.get(listener.base + step)["Location"].endswith("/done/")


def test_reload_resumes_and_nothing_is_counted_twice(make_study):
    study = make_study()
    listener = Listener(study)
    listener.consent()
    listener.pass_screening()
    listener.practice()
    first = listener.next()["trial"]
    assert listener.next()["trial"]["id"] == first["id"]  # reload: same trial
    page = listener.client.get(listener.base + "trial/")
    assert listener.trial_data(page)["id"] == first["id"]
    listener.play(first)
    assert listener.answer(first).status_code == 200
    replay = listener.answer(first, chosen="right")  # a resubmitted form or a double click
    assert replay.status_code == 409 and replay.json()["error"] == "already_recorded"
    assert Trial.objects.get(public_id=first["id"]).chosen == "left"
    assert listener.next()["trial"]["position"] == 2


def test_one_participation_per_prolific_id(make_study):
    study = make_study()
    first = Listener(study, PROLIFIC_PID=prolific_id("same"))
    first.consent()
    first.pass_screening()
    second = Listener(study, PROLIFIC_PID=prolific_id("same"))  # another browser typing the same id
    response = second.consent()
    assert response.status_code == 200 and b"already running in another browser" in response.content
    assert Participant.objects.filter(study=study).count() == 1
    # The running participation stays with the browser that opened it (issue #13: no takeover).
    assert first.client.get(first.base + "instructions/").status_code == 200
    assert second.client.get(second.base + "instructions/")["Location"].endswith(f"/s/{study.public_id}/")


def test_failing_screening_twice_ends_politely_with_the_screened_out_code(make_study):
    study = make_study()
    listener = Listener(study, PROLIFIC_PID=prolific_id("deaf"))
    listener.consent()
    response = listener.pass_screening(n_correct=4)  # 4/6 is below the 5/6 pass mark
    assert response.status_code == 200 and b"try once more" in response.content
    assert listener.participant.screening_attempts == 2
    response = listener.pass_screening(n_correct=3)
    assert response["Location"].endswith("/done/")
    done = listener.client.get(listener.base + "done/")
    assert b"not your fault" in done.content and b"SCREENED9" in done.content
    assert b"complete?cc=SCREENED9" in done.content
    participant = listener.participant
    assert (participant.status, participant.screening_passed, participant.screening_score) == (
        "screened_out", False, 4)


def test_second_attempt_can_pass(make_study):
    listener = Listener(make_study())
    listener.consent()
    listener.pass_screening(n_correct=2)
    assert listener.pass_screening(n_correct=5)["Location"].endswith("/instructions/")
    assert listener.participant.status == "in_progress"


def test_screening_off_goes_straight_to_instructions(make_study):
    listener = Listener(make_study(screening=False))
    assert listener.consent()["Location"].endswith("/instructions/")


def test_consent_is_required(make_study):
    study = make_study()
    client = Client()
    response = client.post(f"/listen/s/{study.public_id}/", {})
    assert response.status_code == 200 and b"tick the box" in response.content
    assert not Participant.objects.exists()


def test_paused_study_takes_no_new_listeners_and_no_answers(make_study):
    study = make_study(screening=False)
    current = Listener(study)
    current.consent()
    trial = current.trial_data(current.client.get(current.base + "instructions/"))
    current.play(trial)
    Study.objects.filter(pk=study.pk).update(status="paused")
    response = Listener(study).consent()
    assert response.status_code == 200 and b"not taking new listeners" in response.content
    refused = current.answer(trial)
    assert refused.status_code == 409 and refused.json()["code"] == "study_paused"
    assert Trial.objects.get(public_id=trial["id"]).status == "leased"  # kept for when the study reopens
    Study.objects.filter(pk=study.pk).update(status="open")
    assert current.answer(trial).status_code == 200
    Study.objects.filter(pk=study.pk).update(status="paused")
    reply = current.client.get(current.base + "api/next")
    assert reply.status_code == 409 and reply.json()["code"] == "study_paused" and reply.json()["retry_after_ms"] > 0
    assert b"paused" in current.client.get(current.base + "trial/").content
    Study.objects.filter(pk=study.pk).update(status="open")
    assert current.finish() > 0


def test_leaving_marks_returned_and_frees_the_slot(make_study):
    study = make_study(screening=False)
    listener = Listener(study)
    listener.consent()
    listener.practice()
    trial = listener.next()["trial"]
    response = listener.client.post(listener.base + "leave/")
    assert response["Location"].endswith("/done/")
    assert listener.participant.status == "returned"
    assert Trial.objects.get(public_id=trial["id"]).status == "abandoned"
    assert listener.post_json(trial["play_url"], {"side": "left", "event": "play"}).status_code == 409
    reply = listener.answer(trial)
    assert reply.status_code == 409


def test_idle_listener_times_out(make_study):
    from datetime import timedelta

    from django.utils import timezone

    study = make_study(screening=False)
    listener = Listener(study)
    listener.consent()
    Participant.objects.filter(pk=listener.participant.pk).update(
        last_seen_at=timezone.now() - timedelta(seconds=study.idle_timeout_s + 1))
    response = listener.client.get(listener.base + "instructions/")
    assert response["Location"].endswith("/done/")
    assert b"Time ran out" in listener.client.get(listener.base + "done/").content
