"""Least-judged-first allocation with expiring leases; quotas are never overfilled."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from listening import services
from listening.exceptions import AnswerRejected
from listening.models import Item, Participant, Trial
from tests.listening.conftest import answer, deliver, start_trials

pytestmark = pytest.mark.django_db


def single_pair_study(make_study, quota=3, **overrides):
    overrides.setdefault("preference_trials", 2)
    return make_study(comparisons=[("three-stage", "random")], quota_per_pair=quota, attributes=[],
                      catch_rate=0.0, **overrides)


def test_least_judged_pair_first(make_study):
    study = make_study(quota_per_pair=50, catch_rate=0.0, preference_trials=1, attributes=[])
    items = Item.objects.filter(study=study, kind=Item.Kind.PREFERENCE)
    for k in range(8):
        participant = start_trials(study, f"p{k}")
        answer(participant, services.next_trial(participant))
        loads = [item.n_judged for item in items.all()]
        assert max(loads) - min(loads) <= 1  # 4 pairs filled evenly, one judgment at a time
    assert sum(item.n_judged for item in items.all()) == 8


def test_quota_is_never_overfilled_and_full_study_finishes_listeners(make_study):
    study = single_pair_study(make_study, quota=2)
    items = Item.objects.filter(study=study)
    assert items.count() == 2  # one pair per excerpt
    first = [start_trials(study, f"p{k}") for k in range(2)]
    for participant in first:  # each judges both excerpts' pair
        for _ in range(2):
            answer(participant, services.next_trial(participant))
        assert services.next_trial(participant) is None
        participant.refresh_from_db()
        assert participant.status == Participant.Status.COMPLETED
    assert [i.n_judged for i in items.all()] == [2, 2]
    with pytest.raises(services.join_study.__globals__["ParticipationRefused"]) as refused:
        start_trials(study, "late")  # nothing left to judge
    assert refused.value.reason == "no_slot"


def test_leases_hold_slots_and_expire(make_study):
    from listening.exceptions import ParticipationRefused

    study = single_pair_study(make_study, quota=1, preference_trials=1)
    a, b = start_trials(study, "a"), start_trials(study, "b")
    with pytest.raises(ParticipationRefused) as refused:  # both places are taken: told before starting,
        start_trials(study, "c")  # not left to "complete" with nothing judged (issue #13)
    assert refused.value.reason == "no_slot"
    trial_a1 = services.next_trial(a)
    trial_b1 = services.next_trial(b)
    assert trial_a1.item_id != trial_b1.item_id  # the leased slot is not handed out twice
    # a walks away: the lease expires, a times out, and the place goes to a newcomer.
    Trial.objects.filter(pk=trial_a1.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    Participant.objects.filter(pk=a.pk).update(last_seen_at=timezone.now() - timedelta(days=1))
    assert services.expire_idle_participants(study) == 1
    d = start_trials(study, "d")
    trial_d = services.next_trial(d)
    assert trial_d.item_id == trial_a1.item_id
    # a comes back: its answer cannot take the slot d holds now.
    deliver(a, trial_a1)
    with pytest.raises(AnswerRejected) as rejected:
        services.submit_answer(a, trial_a1.public_id, trial_a1.answer_key, chosen="left")
    assert rejected.value.code == "expired" and rejected.value.http_status == 409
    answer(d, trial_d)
    assert Item.objects.get(pk=trial_d.item_id).n_judged == 1


def test_expired_lease_is_renewed_when_the_slot_is_still_free(make_study):
    study = single_pair_study(make_study, quota=1)
    participant = start_trials(study, "slow")
    trial = services.next_trial(participant)
    Trial.objects.filter(pk=trial.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert services.next_trial(participant).pk == trial.pk  # reload after a long pause: same trial
    trial.refresh_from_db()
    assert trial.lease_expires_at > timezone.now()
    answer(participant, trial)
    assert trial.item.__class__.objects.get(pk=trial.item_id).n_judged == 1


def test_reload_resumes_the_same_trial(make_study):
    study = make_study()
    participant = start_trials(study)
    first = services.next_trial(participant)
    assert services.next_trial(participant).public_id == first.public_id
    answer(participant, first)
    second = services.next_trial(participant)
    assert second.public_id != first.public_id and second.position == 2


def test_sides_are_randomized_and_recorded(make_study):
    study = make_study(quota_per_pair=100, catch_rate=0.0, preference_trials=4, attributes=[])
    lefts = Counter()
    for k in range(12):
        participant = start_trials(study, f"p{k}")
        trial = services.next_trial(participant)
        lefts[trial.stimulus_left_id == trial.item.stimulus_a_id] += 1
    assert lefts[True] > 0 and lefts[False] > 0  # 12 fair coin flips: all one side has p = 2**-11


def test_whole_session_plan_with_catch_trials_and_ratings(make_study):
    study = make_study(quota_per_pair=10, preference_trials=6, rating_trials=2, catch_rate=0.34)
    participant = start_trials(study, "whole")
    assert participant.plan.count("catch") == 2 and participant.plan[-2:] == ["rating", "rating"]
    kinds = []
    while (trial := services.next_trial(participant)) is not None:
        kinds.append(trial.kind)
        if trial.kind == Trial.Kind.CATCH_MANIPULATED or trial.kind == Trial.Kind.CATCH_REPEAT:
            answer(participant, trial, chosen=trial.expected)
        else:
            answer(participant, trial, chosen="left")
    assert len(kinds) == 8 and kinds[-2:] == ["rating", "rating"]
    assert sum(k.startswith("catch") for k in kinds) == 2
    participant.refresh_from_db()
    assert participant.status == Participant.Status.COMPLETED and participant.completed_at is not None
    catches = Trial.objects.filter(participant=participant, kind__startswith="catch")
    assert all(t.catch_passed for t in catches)
    # Catch trials never count towards a quota.
    assert sum(Item.objects.filter(study=study).values_list("n_judged", flat=True)) == 6


def test_catch_trials_score_the_expected_side(make_study):
    study = make_study(quota_per_pair=10, preference_trials=3, rating_trials=0, catch_rate=0.34)
    participant = start_trials(study, "catch")
    position = participant.plan.index("catch") + 1
    while (trial := services.next_trial(participant)).position < position:
        answer(participant, trial, chosen="right")
    assert trial.is_catch and trial.expected in ("left", "right")
    wrong = "left" if trial.expected == "right" else "right"
    answer(participant, trial, chosen=wrong)
    trial.refresh_from_db()
    assert trial.catch_passed is False
    if trial.kind == Trial.Kind.CATCH_REPEAT:
        assert (trial.stimulus_left_id, trial.stimulus_right_id) == (
            trial.repeat_of.stimulus_right_id, trial.repeat_of.stimulus_left_id)
    else:
        true_side = trial.stimulus_left if trial.expected == "left" else trial.stimulus_right
        assert true_side.variant == ""


def test_ratings_come_in_complete_blocks_of_one_excerpt(make_study):
    study = make_study(preference_trials=0, rating_trials=None, catch_rate=0.0, rating_quota_per_clip=5)
    assert study.rating_trials == 3  # one per compared system
    for k in range(4):
        participant = start_trials(study, f"rater{k}")
        rated = []
        while (trial := services.next_trial(participant)) is not None:
            rated.append((trial.stimulus_left.excerpt, trial.stimulus_left.system))
            answer(participant, trial)
        assert len({excerpt for excerpt, _ in rated}) == 1
        assert {system for _, system in rated} == {"three-stage", "ground-truth", "random"}
