"""Concurrent listeners, each on its own database connection, never overfill a quota.

Needs PostgreSQL (row locks with SKIP LOCKED): run with
DATABASE_URL=postgres://postgres@127.0.0.1:5432/test. Skipped on a laptop without it, a
failure under CI=true.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection, connections

from listening import services
from listening.models import Item, Participant, Trial
from tests.conftest import IN_CI
from tests.listening.conftest import answer, deliver, start_trials

pytestmark = [pytest.mark.services, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def on_postgres(postgres_url):
    if connection.vendor != "postgresql":
        message = f"needs the tests to run on PostgreSQL (DATABASE_URL={postgres_url}); they run on {connection.vendor}"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def run_threads(n: int, work) -> list:
    """Run work(k) in n threads released together; each thread has its own connection."""
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list = []

    def target(k: int) -> None:
        try:
            connection.ensure_connection()  # connect first, so the threads really start together
            barrier.wait(timeout=30)
            results[k] = work(k)
        except BaseException as error:  # reported below, with the thread's index
            errors.append((k, error))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=target, args=(k,)) for k in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


def test_simultaneous_leases_never_exceed_the_quota(on_postgres, make_study):
    study = make_study(comparisons=[("three-stage", "random")], quota_per_pair=16, attributes=[], catch_rate=0.0,
                       preference_trials=2)
    participants = [start_trials(study, f"p{k}") for k in range(16)]
    Item.objects.filter(study=study).update(quota=1)  # 16 seated listeners race for 2 slots
    trials = run_threads(16, lambda k: services.next_trial(participants[k]))
    leased = [t for t in trials if t is not None]
    assert len(leased) == 2  # two excerpts x one pair x quota 1
    assert len({t.item_id for t in leased}) == 2


def test_concurrent_sessions_fill_every_quota_exactly(on_postgres, make_study):
    study = make_study(quota_per_pair=8, attributes=[], catch_rate=0.0, preference_trials=4)
    participants = [start_trials(study, f"p{k}") for k in range(8)]

    def session(k: int) -> int:
        participant, n = participants[k], 0
        while (trial := services.next_trial(participant)) is not None:
            answer(participant, trial, chosen="left" if k % 2 else "right")
            n += 1
        return n

    answered = run_threads(8, session)
    items = list(Item.objects.filter(study=study))
    assert answered == [4] * 8  # every seated listener judged every pair: no empty completion
    assert sum(answered) == sum(i.quota for i in items) == 32  # 4 pairs x quota 8
    assert all(i.n_judged == i.quota for i in items)
    per_item = Counter(Trial.objects.filter(item__study=study, status="answered").values_list("item_id", flat=True))
    assert per_item == {i.id: 8 for i in items}  # the counter agrees with the recorded rows
    per_listener = Counter(Trial.objects.filter(item__study=study, status="answered")
                           .values_list("participant_id", "item_id"))
    assert max(per_listener.values()) == 1  # nobody judged the same pair twice
    assert not Trial.objects.filter(item__study=study, status="leased").exists()
    assert Participant.objects.filter(study=study, status="completed").count() == 8


def test_concurrent_duplicate_answers_record_once(on_postgres, make_study):
    study = make_study(attributes=[], catch_rate=0.0)
    participant = start_trials(study, "double-click")
    trial = services.next_trial(participant)
    deliver(participant, trial)

    def submit(k: int) -> str:
        try:
            services.submit_answer(participant, trial.public_id, trial.answer_key, chosen="left")
        except services.trials.AnswerRejected as error:
            return error.code
        return "recorded"

    outcomes = Counter(run_threads(8, submit))
    assert outcomes == {"recorded": 1, "already_recorded": 7}
    assert Item.objects.get(pk=trial.item_id).n_judged == 1
