"""A listener's judgments are spread over excerpts: no excerpt twice while an unheard one has room.

Two pairs on one excerpt from one listener are two correlated judgments, not two excerpts'
worth of evidence, and the second is made with the first clip's accompaniment in mind. The
attack: scripted listeners work through a study with more excerpts than judgments each; any
listener who hears an excerpt twice fails the test.
"""

from __future__ import annotations

from collections import Counter

import pytest

from listening import services
from listening.models import Participant, Trial
from tests.listening.conftest import answer, start_trials, write_clips

pytestmark = pytest.mark.django_db

N_EXCERPTS = 5
COMPARISONS = [("three-stage", "ground-truth"), ("three-stage", "random"), ("three-stage", "two-stage")]


@pytest.fixture(scope="module")
def five_excerpts(tmp_path_factory):
    return write_clips(tmp_path_factory.mktemp("five"), n_excerpts=N_EXCERPTS, duration_s=1.0)


def heard_excerpts(participant: Participant) -> list[str]:
    """The excerpt of every trial the listener was served, in order (both sides share it)."""
    return list(Trial.objects.filter(participant=participant).order_by("position")
                .values_list("stimulus_left__excerpt", flat=True))


def test_no_excerpt_is_heard_twice_while_an_unheard_one_has_room(make_study, five_excerpts):
    study = make_study(stimuli=five_excerpts, comparisons=COMPARISONS, quota_per_pair=20, attributes=[],
                       preference_trials=N_EXCERPTS, catch_rate=0.0)
    listeners = [start_trials(study, f"spread{k}") for k in range(6)]
    for _ in range(N_EXCERPTS):  # round-robin: the loads the allocator balances interleave
        for listener in listeners:
            answer(listener, services.next_trial(listener))
    for listener in listeners:
        assert services.next_trial(listener) is None
        listener.refresh_from_db()
        assert listener.status == Participant.Status.COMPLETED
        heard = heard_excerpts(listener)
        assert len(heard) == N_EXCERPTS and len(set(heard)) == N_EXCERPTS, Counter(heard)


def test_a_rating_block_goes_to_an_excerpt_not_heard_in_pairs(make_study, five_excerpts):
    study = make_study(stimuli=five_excerpts, comparisons=COMPARISONS, quota_per_pair=20, rating_quota_per_clip=20,
                       preference_trials=N_EXCERPTS - 1, rating_trials=None, catch_rate=0.0)
    for k in range(4):
        listener = start_trials(study, f"rater{k}")
        while (trial := services.next_trial(listener)) is not None:
            answer(listener, trial)
        trials = Trial.objects.filter(participant=listener)
        pairs = list(trials.filter(kind=Trial.Kind.PREFERENCE).values_list("stimulus_left__excerpt", flat=True))
        rated = set(trials.filter(kind=Trial.Kind.RATING).values_list("stimulus_left__excerpt", flat=True))
        assert len(set(pairs)) == len(pairs) == N_EXCERPTS - 1
        assert len(rated) == 1 and not rated & set(pairs)  # one block, on the one excerpt left fresh


def test_a_heard_excerpt_is_given_when_no_unheard_one_is_left(make_study):
    study = make_study(quota_per_pair=5, preference_trials=4, catch_rate=0.0, attributes=[])  # 2 excerpts
    listener = start_trials(study, "more-pairs-than-excerpts")
    while (trial := services.next_trial(listener)) is not None:
        answer(listener, trial)
    listener.refresh_from_db()
    assert listener.status == Participant.Status.COMPLETED
    heard = heard_excerpts(listener)
    assert len(heard) == 4 and heard[0] != heard[1]  # both excerpts first, then heard ones again
