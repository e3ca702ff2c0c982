"""Completion means work: no completion code without the configured judgments; paused or
closed studies take no answers. Scripted listeners against SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import connection

from listening import services
from listening.exceptions import AnswerRejected, ParticipationRefused
from listening.models import Item, Participant, Study, Trial
from tests.listening.conftest import answer, deliver, prolific_id, start_trials
from tests.listening.listener_client import Listener

pytestmark = pytest.mark.django_db


def one_seat_study(make_study, **overrides):
    """Two excerpts x one pair, quota 1, and every listener must judge both: one seat."""
    return make_study(comparisons=[("three-stage", "random")], quota_per_pair=1, attributes=[], catch_rate=0.0,
                      preference_trials=2, screening=False, **overrides)


def test_no_empty_completion_while_another_listener_holds_the_slots(make_study):
    """The issue's attack: while the seated listener holds a lease, newcomers used to be
    "completed" with 0 judgments and given the completion code."""
    study = one_seat_study(make_study)
    seated = Listener(study, PROLIFIC_PID=prolific_id("seated"))
    seated.consent()
    seated.practice()
    first = seated.next()["trial"]  # holds the lease on one of the two slots
    for k in range(6):
        newcomer = Listener(study, PROLIFIC_PID=prolific_id(f"new{k}"))
        landing = newcomer.client.get(newcomer.base, newcomer.params)
        assert b'data-reason="no_slot"' in landing.content  # told before consent ...
        assert b'name="consent"' not in landing.content and b"NOSLOT7" in landing.content
        assert b"complete?cc=NOSLOT7" in landing.content
        response = newcomer.consent()  # ... and a forged consent POST is refused too
        assert b'data-reason="no_slot"' in response.content and b"CODE123" not in response.content
        assert b"CODE123" not in newcomer.client.get(newcomer.base + "done/", follow=True).content
    assert Participant.objects.filter(study=study).count() == 1
    seated.play(first)
    assert seated.answer(first).status_code == 200
    assert seated.finish() == 1
    done = seated.client.get(seated.base + "done/")
    assert b"CODE123" in done.content  # the seated listener judged both pairs and completes


def test_a_listener_who_runs_out_of_judgments_gets_the_no_slot_code(make_study):
    study = make_study(screening=False, attributes=[], catch_rate=0.0, preference_trials=3)
    listener = Listener(study)
    listener.consent()
    listener.practice()
    trial = listener.next()["trial"]
    listener.play(trial)
    assert listener.answer(trial).status_code == 200
    # Staff lower the quotas to what is judged (or items run out): the rest cannot be given.
    from django.db.models import F

    Item.objects.filter(study=study).update(quota=F("n_judged"))
    assert listener.next()["done"] is True
    participant = listener.participant
    assert participant.status == "no_slot" and participant.completed_at is None
    done = listener.client.get(listener.base + "done/")
    assert b"NOSLOT7" in done.content and b"CODE123" not in done.content
    assert not Trial.objects.filter(participant=participant, status="leased").exists()


def test_closed_study_refuses_answers_to_open_trials(make_study):
    study = make_study(attributes=[], catch_rate=0.0)
    participant = start_trials(study, "late-answer")
    trial = services.next_trial(participant)
    deliver(participant, trial)
    services.set_study_status(study, Study.Status.CLOSED)
    with pytest.raises(AnswerRejected) as rejected:
        services.submit_answer(participant, trial.public_id, trial.answer_key, chosen="left")
    assert (rejected.value.code, rejected.value.http_status) == ("study_closed", 410)
    assert Item.objects.get(pk=trial.item_id).n_judged == 0
    with pytest.raises(ParticipationRefused) as refused:
        services.next_trial(participant)
    assert refused.value.reason == "closed"
    services.set_study_status(study, Study.Status.PAUSED)
    with pytest.raises(AnswerRejected) as rejected:
        services.submit_answer(participant, trial.public_id, trial.answer_key, chosen="left")
    assert (rejected.value.code, rejected.value.http_status) == ("study_paused", 409)
    assert Item.objects.get(pk=trial.item_id).n_judged == 0


def test_seats_count_what_active_listeners_still_need(make_study):
    study = make_study(comparisons=[("three-stage", "random")], quota_per_pair=3, attributes=[],
                       catch_rate=0.0, preference_trials=2)  # 2 items x 3 = 6 slots, 2 per listener
    seated = [start_trials(study, f"p{k}") for k in range(3)]
    with pytest.raises(ParticipationRefused):
        start_trials(study, "fourth")
    for participant in seated:  # every seated listener gets their full set and completes
        while (trial := services.next_trial(participant)) is not None:
            answer(participant, trial)
        participant.refresh_from_db()
        assert participant.status == "completed"
        assert Trial.objects.filter(participant=participant, status="answered").exclude(kind="practice").count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_joins_never_seat_more_than_the_quota_allows(make_study, postgres_url):
    if connection.vendor != "postgresql":
        pytest.skip("row locks under concurrency: the PostgreSQL pass runs this")
    from tests.listening.test_concurrency import run_threads

    study = make_study(comparisons=[("three-stage", "random")], quota_per_pair=3, attributes=[],
                       catch_rate=0.0, preference_trials=2)

    def join(k: int) -> str:
        try:
            services.join_study(study, prolific_id(f"racer{k}"))
        except ParticipationRefused as refusal:
            return refusal.reason
        return "seated"

    outcomes = run_threads(12, join)
    assert outcomes.count("seated") == 3 and outcomes.count("no_slot") == 9
