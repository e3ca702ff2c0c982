"""Each answer is recorded exactly once: replays, forgeries and early answers are refused."""

from __future__ import annotations

import pytest

from listening import services
from listening.exceptions import AnswerRejected
from listening.models import Item, Rating, Trial
from tests.listening.conftest import answer, deliver, start_trials

pytestmark = pytest.mark.django_db


def rejected(call) -> AnswerRejected:
    with pytest.raises(AnswerRejected) as info:
        call()
    return info.value


def first_pair(study, name="p"):
    participant = start_trials(study, name)
    return participant, services.next_trial(participant)


def test_replayed_answer_is_refused_and_counted_once(make_study):
    participant, trial = first_pair(make_study())
    answer(participant, trial, chosen="right")
    error = rejected(lambda: services.submit_answer(participant, trial.public_id, trial.answer_key, chosen="left"))
    assert (error.code, error.http_status) == ("already_recorded", 409)
    trial.refresh_from_db()
    assert trial.chosen == "right"
    assert Item.objects.get(pk=trial.item_id).n_judged == 1
    assert Trial.objects.filter(participant=participant, status="answered").count() == 1


def test_forged_key_and_foreign_trial_are_refused(make_study):
    study = make_study()
    participant, trial = first_pair(study, "owner")
    other = start_trials(study, "other")
    for side in ("left", "right"):
        services.record_play(participant, trial.public_id, side, "play")
    error = rejected(lambda: services.submit_answer(participant, trial.public_id, "guess", chosen="left"))
    assert (error.code, error.http_status) == ("bad_key", 400)
    error = rejected(lambda: services.submit_answer(other, trial.public_id, trial.answer_key, chosen="left"))
    assert (error.code, error.http_status) == ("unknown_trial", 404)
    assert not services.record_play(other, trial.public_id, "left", "play")  # not theirs: not counted
    trial.refresh_from_db()
    assert trial.status == "leased" and trial.plays_left == 1


def test_invalid_choices_and_scores_are_refused(make_study):
    study = make_study(preference_trials=0, rating_trials=2, catch_rate=0.0)
    participant, trial = first_pair(study)
    assert trial.kind == "rating"
    deliver(participant, trial)
    attributes = study.attributes
    for bad in ({a: 6 for a in attributes}, {a: "3" for a in attributes}, {attributes[0]: 3}, None,
                {**{a: 3 for a in attributes}, "extra": 2}):
        error = rejected(lambda bad=bad: services.submit_answer(participant, trial.public_id, trial.answer_key,
                                                                ratings=bad))
        assert (error.code, error.http_status) == ("invalid", 400)
    services.submit_answer(participant, trial.public_id, trial.answer_key, ratings=dict(zip(attributes, [1, 4, 5])))
    assert sorted(Rating.objects.filter(trial=trial).values_list("score", flat=True)) == [1, 4, 5]
    error = rejected(lambda: services.submit_answer(participant, trial.public_id, trial.answer_key,
                                                    ratings=dict(zip(attributes, [2, 2, 2]))))
    assert error.code == "already_recorded"
    assert Rating.objects.filter(trial=trial).count() == 3


def test_out_of_order_answers_are_refused(make_study):
    study = make_study()
    participant, trial = first_pair(study)
    services.return_participation(participant)  # the listener stopped: the open trial is released
    trial.refresh_from_db()
    assert trial.status == "abandoned"
    error = rejected(lambda: services.submit_answer(participant, trial.public_id, trial.answer_key, chosen="left"))
    assert (error.code, error.http_status) == ("expired", 409)
    second, trial2 = first_pair(study, "second")
    answer(second, trial2)
    services.return_participation(second)
    trial3 = Trial.objects.create(participant=second, study=study, position=5, kind="preference", item=trial2.item,
                                  stimulus_left=trial2.stimulus_left, stimulus_right=trial2.stimulus_right,
                                  answer_key="k" * 20, lease_expires_at=trial2.lease_expires_at)
    error = rejected(lambda: services.submit_answer(second, trial3.public_id, "k" * 20, chosen="left"))
    assert (error.code, error.http_status) == ("out_of_order", 409)
