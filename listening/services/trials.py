"""Trial allocation and answers: least-judged first, row-locked, with expiring leases.

Invariant, per item, under its row lock: n_judged + (unexpired leases) <= quota.
- A lease is granted only while the sum is below quota (checked after locking the item,
  so concurrent allocators see each other's committed leases).
- An answer inside its lease turns a lease into a judgment (the sum is unchanged); an
  answer after the lease expired is taken only if a slot is still free.
Hence n_judged never exceeds the quota (also a CHECK constraint). Locks are taken in one
order: participant row, then item row; allocation takes items with SKIP LOCKED and never
waits on an item, so allocation and answers cannot deadlock. Among items with a free slot, a
listener gets one whose excerpt they have not heard yet, when there is one.

Every answer carries the trial's one-time answer key; the trial row is locked and its
status checked, so a replayed or concurrent duplicate answer is refused (409), never
recorded twice (also UNIQUE constraints on ratings).

Listening is enforced by the server, not by what the browser reports: an answer is taken
only once the audio view has delivered every byte of each of the trial's clips (recorded per
side in `Trial.deliveries`) and a minimum time has passed since the trial was served (pairs:
`pair_listen_share` of the longer clip; ratings: `rating_listen_share` of the clip, the whole
clip by default). Play and "ended" events from the browser are kept as figures only. The
response time is measured on the server; the browser's figure is kept beside it.
"""

from __future__ import annotations

import math
import random
import secrets
import time
from datetime import timedelta

from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from listening.exceptions import AnswerRejected, ParticipationRefused
from listening.models import (
    SIDES,
    Item,
    Participant,
    Rating,
    ScreeningTrial,
    Stimulus,
    Study,
    Trial,
    fully_delivered,
)
from listening.services.participation import CATCH

CANDIDATES = 8
ALLOCATION_ROUNDS = 20


def _free_slots(item: Item, now, excluding: int | None = None) -> int:
    """Quota left on a locked item. Costs one COUNT query."""
    active = Trial.objects.filter(item=item, status=Trial.Status.LEASED, lease_expires_at__gt=now)
    if excluding is not None:
        active = active.exclude(pk=excluding)
    return item.quota - item.n_judged - active.count()


def _new_trial(participant: Participant, position: int, kind: str, now, left: Stimulus, right: Stimulus | None,
               item: Item | None = None, repeat_of: Trial | None = None, expected: str = "") -> Trial:
    return Trial.objects.create(
        participant=participant, study_id=participant.study_id, position=position, kind=kind, item=item,
        stimulus_left=left, stimulus_right=right, repeat_of=repeat_of, expected=expected,
        answer_key=secrets.token_urlsafe(24), lease_expires_at=now + timedelta(seconds=participant.study.lease_s))


def _open_rating_block(participant: Participant) -> str | None:
    """The excerpt this listener rated last. Its unrated clips go first, so ratings come in
    blocks (every compared system on one excerpt by one listener), the design the Friedman
    test and Kendall's W need."""
    return (Trial.objects.filter(participant=participant, kind=Trial.Kind.RATING).order_by("-position")
            .values_list("item__excerpt", flat=True).first())


def _lease_item(participant: Participant, kind: str, position: int, now, rng: random.Random) -> Trial | None:
    """Lease an item of `kind` this participant has not judged, or None if none is free.

    Preference, in order: the open rating block's excerpt (ratings only), then excerpts the
    participant has not heard in any trial, then any excerpt; within the first of these with a
    free slot, the least-loaded item. Two judgments of one excerpt by one listener are
    correlated, so a listener hears an excerpt again only when no unheard one has room.
    """
    seen = Trial.objects.filter(participant=participant, item__isnull=False).values("item_id")
    heard = Trial.objects.filter(participant=participant).values("stimulus_left__excerpt")
    active = Count("trials", filter=Q(trials__status=Trial.Status.LEASED, trials__lease_expires_at__gt=now))
    pool = Item.objects.filter(study_id=participant.study_id, kind=kind).exclude(id__in=seen)
    block = _open_rating_block(participant) if kind == Item.Kind.RATING else None
    scopes = ([pool.filter(excerpt=block)] if block else []) + [pool.exclude(excerpt__in=heard), pool]
    for _ in range(ALLOCATION_ROUNDS):
        candidates: list[int] = []
        for scope in scopes:
            candidates = list(scope.annotate(load=F("n_judged") + active).filter(load__lt=F("quota"))
                              .order_by("load", "?").values_list("id", flat=True)[:CANDIDATES])
            if candidates:
                break
        if not candidates:
            return None
        for item_id in candidates:
            item = Item.objects.select_for_update(skip_locked=True).filter(pk=item_id).first()
            if item is None:  # another listener is being allocated this item right now
                continue
            if _free_slots(item, now) > 0:
                left, right = item.stimulus_a, item.stimulus_b
                if right is not None and rng.random() < 0.5:
                    left, right = right, left
                return _new_trial(participant, position, kind, now, left, right, item=item)
        # Each candidate was locked by a concurrent allocation or filled since the query: let those
        # commit, then look again (a filled scope gives way to the next one).
        time.sleep(0.005 * rng.random())
    return None


def _catch_trial(participant: Participant, position: int, now, rng: random.Random) -> Trial | None:
    """A repeated earlier pair with sides swapped, or the true accompaniment against a manipulated one."""
    repeated = Trial.objects.filter(participant=participant, repeat_of__isnull=False).values("repeat_of_id")
    earlier = list(Trial.objects.filter(participant=participant, kind=Trial.Kind.PREFERENCE,
                                        status=Trial.Status.ANSWERED).exclude(id__in=repeated))
    manipulated = list(Stimulus.objects.filter(study_id=participant.study_id).exclude(variant=""))
    if earlier and (not manipulated or rng.random() < 0.5):
        original = rng.choice(earlier)
        expected = "left" if original.chosen == "right" else "right"  # where the chosen clip is now
        return _new_trial(participant, position, Trial.Kind.CATCH_REPEAT, now, original.stimulus_right,
                          original.stimulus_left, repeat_of=original, expected=expected)
    if not manipulated:
        return None
    # A manipulated clip beside a true clip the listener heard before would mark the catch
    # (the familiar clip is the answer): take an excerpt they have not heard when there is one.
    heard = set(Trial.objects.filter(participant=participant).values_list("stimulus_left__excerpt", flat=True))
    odd = rng.choice([m for m in manipulated if m.excerpt not in heard] or manipulated)
    true = Stimulus.objects.get(study_id=participant.study_id, excerpt=odd.excerpt, system=odd.system, variant="")
    if rng.random() < 0.5:
        return _new_trial(participant, position, Trial.Kind.CATCH_MANIPULATED, now, true, odd, expected="left")
    return _new_trial(participant, position, Trial.Kind.CATCH_MANIPULATED, now, odd, true, expected="right")


def _renew(trial: Trial, now) -> bool:
    """Extend an expired lease if its item still has a free slot (locks the item)."""
    if trial.item_id is not None:
        item = Item.objects.select_for_update().get(pk=trial.item_id)
        if _free_slots(item, now, excluding=trial.pk) <= 0:
            return False
    trial.lease_expires_at = now + timedelta(seconds=trial.participant.study.lease_s)
    trial.save(update_fields=["lease_expires_at"])
    return True


def _complete(participant: Participant, now, status: str = Participant.Status.COMPLETED) -> None:
    """End the participation: completed (every planned judgment given) or no_slot (the study
    could not give the rest; never the completion code)."""
    completed_at = now if status == Participant.Status.COMPLETED else None
    Trial.objects.filter(participant=participant, status=Trial.Status.LEASED).update(status=Trial.Status.ABANDONED)
    Participant.objects.filter(pk=participant.pk).update(status=status, completed_at=completed_at,
                                                         ended_at=now, last_seen_at=now)
    participant.status = status


def _refuse_unless_open(study: Study) -> None:
    if study.status == Study.Status.PAUSED:
        raise ParticipationRefused("paused", "The study is paused at the moment. Please come back a little later.")
    if study.status == Study.Status.CLOSED:
        raise ParticipationRefused("closed", "This study is closed. No more answers are being collected.")


def next_trial(participant: Participant) -> Trial | None:
    """The participant's current trial: the open one (resume), else a newly allocated one.

    Returns None when the participant has finished: completed when every judged trial of the
    plan was answered, no_slot when the study cannot give the rest (a catch trial that cannot be
    built is dropped; it judges nothing). Raises ParticipationRefused when trials are not the
    participant's current step, or the study is paused or closed.
    """
    rng = random.SystemRandom()
    with transaction.atomic():
        locked = Participant.objects.select_for_update(of=("self",)).select_related("study").get(pk=participant.pk)
        if locked.status != Participant.Status.IN_PROGRESS or not locked.practice_done:
            raise ParticipationRefused("not_in_trials", "Trials are not your current step.")
        _refuse_unless_open(locked.study)
        now = timezone.now()
        current = locked.trials.filter(status=Trial.Status.LEASED).select_related("item").first()
        if current is not None:
            if current.lease_expires_at > now or _renew(current, now):
                return current
            current.status = Trial.Status.ABANDONED
            current.save(update_fields=["status"])
        plan = list(locked.plan)
        position = locked.trials.filter(status=Trial.Status.ANSWERED, position__gt=0).count() + 1
        while position <= len(plan):
            kind = plan[position - 1]
            if kind == CATCH:
                trial = _catch_trial(locked, position, now, rng)
            else:
                trial = _lease_item(locked, kind, position, now, rng)
            if trial is not None:
                if plan != locked.plan:
                    Participant.objects.filter(pk=locked.pk).update(plan=plan)
                return trial
            if kind != CATCH:  # no judgment left for this listener: they cannot complete
                Participant.objects.filter(pk=locked.pk).update(plan=plan)
                _complete(participant, now, Participant.Status.NO_SLOT)
                return None
            plan = plan[:position - 1] + plan[position:]  # a catch trial that cannot be built
        Participant.objects.filter(pk=locked.pk).update(plan=plan)
        _complete(participant, now)
        return None


def practice_trial(participant: Participant) -> Trial:
    """The practice pair (position 0, never counted): created on first need, then reused."""
    with transaction.atomic():
        locked = Participant.objects.select_for_update().get(pk=participant.pk)
        existing = locked.trials.filter(position=0).exclude(status=Trial.Status.ABANDONED).first()
        if existing is not None:
            return existing
        rng = random.SystemRandom()
        item = rng.choice(list(Item.objects.filter(study_id=locked.study_id, kind=Item.Kind.PREFERENCE)
                               .select_related("stimulus_a", "stimulus_b")))
        left, right = (item.stimulus_a, item.stimulus_b) if rng.random() < 0.5 else (item.stimulus_b, item.stimulus_a)
        return _new_trial(locked, 0, Trial.Kind.PRACTICE, timezone.now(), left, right)


def record_play(participant: Participant, trial_public_id: str, side: str, event: str) -> bool:
    """Count a play start or a play to the end of one side of an open trial; False if not open."""
    if side not in SIDES or event not in ("play", "ended"):
        raise ValueError(f"bad play event {side!r}/{event!r}")
    field = f"{'plays' if event == 'play' else 'ended'}_{side}"
    updated = Trial.objects.filter(public_id=trial_public_id, participant=participant,
                                   status=Trial.Status.LEASED).update(**{field: F(field) + 1})
    return updated == 1


def record_delivery(participant: Participant, trial_public_id, side: str, start: int, stop: int,
                    size: int) -> bool:
    """The audio view served bytes [start, stop) of a `size`-byte rendition of one side of an
    open trial; merged into `Trial.deliveries`. A different size (a new rendition) starts the
    coverage afresh. False when the trial is not open."""
    if side not in SIDES or not 0 <= start < stop <= size:
        raise ValueError(f"bad delivery {side!r} [{start}, {stop}) of {size}")
    with transaction.atomic():
        trial = (Trial.objects.select_for_update().filter(public_id=trial_public_id, participant=participant,
                                                          status=Trial.Status.LEASED).first())
        if trial is None:
            return False
        seen = dict(trial.deliveries.get(side) or {})
        ranges = seen.get("ranges", []) if seen.get("size") == size else []
        trial.deliveries[side] = {"size": size, "ranges": _merge([*ranges, [start, stop]]),
                                  "bytes": int(seen.get("bytes", 0)) + stop - start}
        trial.save(update_fields=["deliveries"])
    return True


def record_screening_delivery(participant: Participant, screening_public_id, n_bytes: int) -> None:
    ScreeningTrial.objects.filter(public_id=screening_public_id, participant=participant).update(
        audio_bytes=F("audio_bytes") + max(0, n_bytes))


def _merge(ranges: list[list[int]]) -> list[list[int]]:
    merged: list[list[int]] = []
    for start, stop in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    return merged


def trial_sides(trial: Trial) -> tuple[str, ...]:
    return SIDES if trial.is_pair else ("left",)


def minimum_listen_s(trial: Trial, study: Study) -> float:
    """Seconds that must pass between serving the trial and taking its answer."""
    if trial.is_pair:
        longest = max(trial.stimulus_left.duration_s, trial.stimulus_right.duration_s)
        return study.pair_listen_share * longest
    return study.rating_listen_share * trial.stimulus_left.duration_s


def _check_listening(trial: Trial, study: Study, now) -> None:
    wait_ms = max(0, math.ceil(1000 * minimum_listen_s(trial, study) - (now - trial.created_at).total_seconds()
                               * 1000))
    missing = [side for side in trial_sides(trial) if not fully_delivered(trial.deliveries.get(side))]
    if missing:
        raise AnswerRejected("audio_not_fetched", f"listen to the whole of {' and '.join(missing)} first",
                             sides=missing, retry_after_ms=wait_ms)
    if wait_ms > 0:
        raise AnswerRejected("too_early", "please listen to the clips before answering",
                             retry_after_ms=wait_ms)


def _validate_answer(trial: Trial, chosen: str | None, ratings: dict | None) -> dict[str, int]:
    if trial.is_pair:
        if chosen not in SIDES:
            raise AnswerRejected("invalid", "choose 'left' or 'right'")
        return {}
    attributes = trial.participant.study.attributes
    if not isinstance(ratings, dict) or set(ratings) != set(attributes):
        raise AnswerRejected("invalid", f"rate exactly these attributes: {', '.join(attributes)}")
    scores = {}
    for attribute, score in ratings.items():
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise AnswerRejected("invalid", f"score for {attribute!r} must be an integer from 1 to 5")
        scores[attribute] = score
    return scores


def submit_answer(participant: Participant, trial_public_id: str, answer_key: str, chosen: str | None = None,
                  ratings: dict | None = None, response_time_ms: int | None = None) -> Trial:
    """Record one answer exactly once, or raise AnswerRejected with its HTTP status.

    `response_time_ms` is the browser's figure (kept as `response_time_client_ms`); the
    recorded `response_time_ms` is measured here, from serving the trial to this answer.
    """
    with transaction.atomic():
        locked = Participant.objects.select_for_update(of=("self",)).select_related("study").get(pk=participant.pk)
        trial = (Trial.objects.select_for_update(of=("self",)).select_related("stimulus_left", "stimulus_right")
                 .filter(public_id=trial_public_id, participant=locked).first())
        if trial is None:
            raise AnswerRejected("unknown_trial", "this trial is not part of your session")
        trial.participant = locked
        if not constant_time_compare(str(answer_key), trial.answer_key):
            raise AnswerRejected("bad_key", "the answer key does not match this trial")
        if trial.status == Trial.Status.ANSWERED:
            raise AnswerRejected("already_recorded", "this answer was already recorded")
        if trial.status == Trial.Status.ABANDONED:
            raise AnswerRejected("expired", "this trial expired; please continue with the next one")
        if locked.study.status == Study.Status.CLOSED:
            raise AnswerRejected("study_closed", "this study is closed; no more answers are being collected")
        if locked.status != Participant.Status.IN_PROGRESS:
            raise AnswerRejected("out_of_order", f"your participation is {locked.get_status_display()}")
        if locked.study.status == Study.Status.PAUSED:
            raise AnswerRejected("study_paused", "this study is paused; please come back a little later")
        scores = _validate_answer(trial, chosen, ratings)
        now = timezone.now()
        _check_listening(trial, locked.study, now)
        if trial.item_id is not None:
            item = Item.objects.select_for_update().get(pk=trial.item_id)
            if trial.lease_expires_at <= now and _free_slots(item, now, excluding=trial.pk) <= 0:
                trial.status = Trial.Status.ABANDONED
                trial.save(update_fields=["status"])
                raise AnswerRejected("expired", "this trial expired and its place was taken; please continue")
            Item.objects.filter(pk=item.pk).update(n_judged=F("n_judged") + 1)
        trial.status, trial.answered_at = Trial.Status.ANSWERED, now
        trial.chosen = chosen if trial.is_pair else ""
        if trial.expected:
            trial.catch_passed = trial.chosen == trial.expected
        trial.response_time_ms = min(2**31 - 1, round((now - trial.created_at).total_seconds() * 1000))
        client_ms = response_time_ms
        valid_client = isinstance(client_ms, int) and not isinstance(client_ms, bool) and 0 <= client_ms < 2**31
        trial.response_time_client_ms = client_ms if valid_client else None
        trial.save(update_fields=["status", "answered_at", "chosen", "catch_passed", "response_time_ms",
                                  "response_time_client_ms"])
        Rating.objects.bulk_create(Rating(trial=trial, attribute=a, score=s) for a, s in scores.items())
        if trial.kind == Trial.Kind.PRACTICE:
            Participant.objects.filter(pk=locked.pk).update(practice_done=True, last_seen_at=now)
        else:
            Participant.objects.filter(pk=locked.pk).update(last_seen_at=now)
    return trial
