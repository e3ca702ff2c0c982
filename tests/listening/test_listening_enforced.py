"""The server enforces listening: no answer before it delivered every byte of each clip and
before the minimum time since the trial was served. Client "ended" events, seeking and the
client's response time count for nothing. Real (default) minimum times, scripted clients."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from listening import selectors
from listening.models import Study, Trial
from tests.listening.listener_client import Listener

pytestmark = pytest.mark.django_db


def served_earlier(trial_id: str, seconds: float) -> None:
    """Stand in for `seconds` passing since the trial was served (no sleeping in tests)."""
    trial = Trial.objects.get(public_id=trial_id)
    Trial.objects.filter(pk=trial.pk).update(created_at=trial.created_at - timedelta(seconds=seconds))


def served_now(trial_id: str) -> None:
    """The trial was served just now (a slow test machine may have spent the minimum time already)."""
    from django.utils import timezone

    Trial.objects.filter(public_id=trial_id).update(created_at=timezone.now())


def started(study) -> tuple[Listener, dict]:
    listener = Listener(study)
    listener.consent()
    listener.practice()
    return listener, listener.next()["trial"]


def answer_once(listener: Listener, trial: dict, **kwargs):
    return listener.answer(trial, wait=False, **kwargs)


def test_pair_answer_needs_both_clips_delivered_whole_and_time(make_study):
    study = make_study(screening=False, attributes=[], catch_rate=0.0, pair_listen_share=1.0)
    listener, trial = started(study)
    duration_s = Trial.objects.get(public_id=trial["id"]).stimulus_left.duration_s
    # Client-side events claim everything was played to the end: worth nothing.
    for side in ("left", "right"):
        for event in ("play", "ended"):
            listener.post_json(trial["play_url"], {"side": side, "event": event})
    refused = answer_once(listener, trial)
    assert refused.status_code == 409 and refused.json()["code"] == "audio_not_fetched"
    assert refused.json()["sides"] == ["left", "right"]
    listener.fetch_audio(trial, ["left"])
    head = listener.client.head(trial["audio"]["right"])  # a HEAD delivers nothing
    assert head.status_code == 200
    assert answer_once(listener, trial).json()["sides"] == ["right"]
    whole = int(head["Content-Length"]) if head.has_header("Content-Length") else None
    tail = listener.client.get(trial["audio"]["right"], headers={"Range": "bytes=-1000"})  # seek to the end
    assert tail.status_code == 206
    total = int(tail["Content-Range"].rsplit("/", 1)[1])
    assert whole in (None, total)
    assert answer_once(listener, trial).json()["sides"] == ["right"]
    middle = listener.client.get(trial["audio"]["right"], headers={"Range": f"bytes=1-{total - 1001}"})
    assert middle.status_code == 206
    assert answer_once(listener, trial).json()["sides"] == ["right"]  # byte 0 still missing
    # Now every byte of both clips went out, but only moments after serving the trial.
    listener.client.get(trial["audio"]["right"], headers={"Range": "bytes=0-10"})
    served_now(trial["id"])
    early = answer_once(listener, trial)
    assert early.status_code == 409 and early.json()["code"] == "too_early"
    wait_ms = early.json()["retry_after_ms"]
    assert 0 < wait_ms <= 1000 * duration_s + 1 and int(early["Retry-After"]) >= 1
    served_earlier(trial["id"], 0.5 * duration_s)
    still = answer_once(listener, trial)
    assert still.json()["code"] == "too_early" and still.json()["retry_after_ms"] <= 500 * duration_s
    served_earlier(trial["id"], 0.5 * duration_s)
    recorded = answer_once(listener, trial)
    assert recorded.status_code == 200
    stored = Trial.objects.get(public_id=trial["id"])
    assert stored.response_time_ms >= 1000 * duration_s  # measured on the server
    assert stored.response_time_client_ms == 1234  # the browser's figure, kept beside it


def test_rating_needs_the_whole_clip_duration(make_study):
    study = make_study(screening=False, preference_trials=0, rating_trials=2, catch_rate=0.0,
                       rating_listen_share=1.0, pair_listen_share=0.01)
    listener, trial = started(study)
    assert trial["task"] == "rating"
    duration_s = Trial.objects.get(public_id=trial["id"]).stimulus_left.duration_s
    listener.post_json(trial["play_url"], {"side": "left", "event": "ended"})  # "played to its end": no
    assert answer_once(listener, trial).json()["code"] == "audio_not_fetched"
    listener.fetch_audio(trial)
    served_now(trial["id"])
    served_earlier(trial["id"], 0.9 * duration_s)  # seeking ahead: 90 % of the clip's time
    early = answer_once(listener, trial)
    assert early.status_code == 409 and early.json()["code"] == "too_early"
    assert 0 < early.json()["retry_after_ms"] <= 100 * duration_s + 1
    served_earlier(trial["id"], 0.1 * duration_s + 0.01)
    assert answer_once(listener, trial).status_code == 200


def test_server_response_time_replaces_the_client_claim_in_exports(make_study, admin_client):
    study = make_study(screening=False, catch_rate=0.0, preference_trials=2, rating_trials=1,
                       pair_listen_share=0.5, rating_listen_share=1.0)
    listener, trial = started(study)
    served = []
    while True:
        listener.fetch_audio(trial)
        duration_s = Trial.objects.get(public_id=trial["id"]).stimulus_left.duration_s
        served_now(trial["id"])
        served_earlier(trial["id"], 1.25 * duration_s)  # answered about 1.25 clip lengths after serving
        body = {"answer_key": trial["answer_key"], "response_time_ms": 45_000}  # the client claims 45 s
        body.update({"chosen": "left"} if trial["task"] == "pair" else
                    {"ratings": {a: 3 for a in trial["attributes"]}})
        assert listener.post_json(trial["answer_url"], body).status_code == 200
        served.append(1250 * duration_s)
        reply = listener.next()
        if reply["done"]:
            break
        trial = reply["trial"]
    prefs = pd.read_csv(pd.io.common.StringIO(admin_client.get(
        f"/listen/staff/{study.public_id}/export/preferences.csv").content.decode()))
    ratings = selectors.ratings_frame(study)
    assert set(prefs["response_time_client_ms"]) == {45_000} and set(ratings["response_time_client_ms"]) == {45_000}
    for times in (prefs["response_time_ms"], ratings["response_time_ms"]):
        assert all(1000 < t < 20_000 for t in times)  # about 1.25 x a 2 s clip, not the claimed 45 s
    participants = selectors.participants_frame(study)
    assert participants.loc[0, "median_response_time_ms"] < 20_000
    assert not participants.loc[0, "flag_too_fast"] and not participants.loc[0, "flag_no_audio"]


def test_minimum_time_is_a_study_setting(make_study):
    study = make_study(screening=False)
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Study.objects.filter(pk=study.pk).update(pair_listen_share=1.5)
    defaults = Study._meta.get_field
    assert defaults("pair_listen_share").default == 0.5 and defaults("rating_listen_share").default == 1.0
