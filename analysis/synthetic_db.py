"""Write synthetic judgments into the listening tables: tests, benchmarks and the demo.

`populate_study` turns `analysis.synthetic` tables into a Study with stimuli (no audio
files), quota items, completed participants, answered trials (some of them catch trials) and
ratings, in a few bulk inserts. It bypasses the listener services on purpose: it fabricates
finished answers; never point it at a real study.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

import numpy as np
from django.db import transaction
from django.utils import timezone

from analysis.synthetic import SyntheticStudy
from listening.models import Item, Participant, Rating, Stimulus, Study, Trial

_BATCH = 5000


def _stimuli(study: Study, excerpts, systems) -> dict[tuple[str, str], Stimulus]:
    rows = [Stimulus(study=study, excerpt=e, system=s, file_name=f"synthetic/{secrets.token_hex(8)}.wav",
                     sha256="0" * 64, n_bytes=0, duration_s=10.0, loudness_lufs=-23.0)
            for e in excerpts for s in systems]
    Stimulus.objects.bulk_create(rows, batch_size=_BATCH)
    return {(s.excerpt, s.system): s for s in Stimulus.objects.filter(study=study)}


@transaction.atomic
def populate_study(name: str, synthetic: SyntheticStudy, catch_share: float = 0.1, seed: int = 0) -> Study:
    """A study holding `synthetic`'s judgments; a `catch_share` of extra catch-repeat trials
    (sides swapped), passed with each listener's simulated catch accuracy."""
    rng = np.random.default_rng(seed)
    prefs, ratings, people = synthetic.preferences, synthetic.ratings, synthetic.participants
    pairs = sorted({tuple(sorted(p)) for p in zip(prefs.system_left, prefs.system_right)})
    study = Study.objects.create(name=name, comparisons=[list(p) for p in pairs], quota_per_pair=1,
                                 attributes=sorted(ratings.attribute.unique()), completion_code="SYNTHETIC",
                                 media_dir=f"synthetic/{secrets.token_hex(4)}")
    systems = sorted(set(prefs.system_left) | set(prefs.system_right) | set(ratings.system))
    excerpts = sorted(set(prefs.excerpt) | set(ratings.excerpt))
    stimuli = _stimuli(study, excerpts, systems)

    counts = prefs.assign(a=np.minimum(prefs.system_left, prefs.system_right),
                          b=np.maximum(prefs.system_left, prefs.system_right)).groupby(["excerpt", "a", "b"]).size()
    items = {key: Item(study=study, kind=Item.Kind.PREFERENCE, excerpt=key[0], stimulus_a=stimuli[key[0], key[1]],
                       stimulus_b=stimuli[key[0], key[2]], quota=int(n), n_judged=int(n))
             for key, n in counts.items()}
    Item.objects.bulk_create(items.values(), batch_size=_BATCH)

    now = timezone.now()
    participants = {label: Participant(study=study, external_id=label, status=Participant.Status.COMPLETED,
                                       session_nonce=secrets.token_hex(8), screening_passed=bool(passed),
                                       screening_score=6 if passed else 3, practice_done=True, completed_at=now)
                    for label, passed in zip(people.participant, people.screening_passed)}
    Participant.objects.bulk_create(participants.values(), batch_size=_BATCH)
    accuracy = dict(zip(people.participant, people.catch_accuracy))
    position = {label: 0 for label in participants}

    def trial(label, kind, left, right=None, chosen="", item=None, catch_passed=None):
        position[label] += 1
        return Trial(participant=participants[label], study=study, position=position[label], kind=kind, item=item,
                     stimulus_left=left, stimulus_right=right, status=Trial.Status.ANSWERED,
                     answer_key=secrets.token_urlsafe(32), lease_expires_at=now, created_at=now,
                     answered_at=now + timedelta(seconds=position[label]), chosen=chosen,
                     catch_passed=catch_passed, plays_left=1, plays_right=1 if right else 0,
                     response_time_ms=int(rng.integers(2000, 20000)))

    trials = []
    for p, e, left, right, chosen in prefs[["participant", "excerpt", "system_left", "system_right",
                                            "chosen"]].itertuples(index=False):
        key = (e, min(left, right), max(left, right))
        trials.append(trial(p, Trial.Kind.PREFERENCE, stimuli[e, left], stimuli[e, right], chosen, items[key]))
        if rng.random() < catch_share:
            passed = bool(rng.random() < accuracy[p])
            trials.append(trial(p, Trial.Kind.CATCH_REPEAT, stimuli[e, right], stimuli[e, left],
                                "left" if passed == (chosen == "right") else "right", catch_passed=passed))
    rating_trials = {}
    for p, e, system in ratings[["participant", "excerpt", "system"]].drop_duplicates().itertuples(index=False):
        rating_trials[p, e, system] = trial(p, Trial.Kind.RATING, stimuli[e, system])
    trials += rating_trials.values()
    Trial.objects.bulk_create(trials, batch_size=_BATCH)
    Rating.objects.bulk_create(
        (Rating(trial=rating_trials[p, e, s], attribute=a, score=int(score))
         for p, e, s, a, score in ratings[["participant", "excerpt", "system", "attribute", "score"]]
         .drop_duplicates(["participant", "excerpt", "system", "attribute"]).itertuples(index=False)),
        batch_size=_BATCH)
    return study
