"""A listener's way through a study: consent, headphone screening, return, time-out.

Status: started -> screened_out | in_progress -> completed | returned | timed_out | no_slot.
One participation per (study, normalised external id). A running participation belongs to
the browser session that opened it: the same session resumes it (the view finds its binding),
while another session typing the same id is refused, never handed the participation.
A new participation starts only when the study can still give it its full set of judgments
(`seats_left`), and within the join rate limits per client address and per browser session.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
import secrets
import unicodedata
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from listening import huggins
from listening.exceptions import ParticipationRefused
from listening.models import Item, Participant, ScreeningTrial, Study, Trial

CATCH = "catch"
JUDGED_KINDS = (Item.Kind.PREFERENCE.value, Item.Kind.RATING.value)
MAX_ID_CHARS = 200


def normalise_external_id(raw: str) -> str:
    """Lower-cased with every whitespace character removed: `" 5F0a... "` and `"5f0a..."` are one id."""
    return "".join(ch for ch in str(raw) if not ch.isspace()).lower()


def check_external_id(study: Study, raw: str) -> str:
    """The normalised id, or ParticipationRefused("bad_id") when it is not an id of this study's format."""
    external_id = normalise_external_id(raw)
    printable = all(unicodedata.category(ch)[0] not in "CZ" for ch in external_id)
    if not external_id or len(external_id) > MAX_ID_CHARS or not printable:
        raise ParticipationRefused("bad_id", "This link does not carry a valid participant id. Please start "
                                             "the study from the link on the recruiting platform.")
    if study.external_id_pattern and re.fullmatch(study.external_id_pattern, external_id) is None:
        raise ParticipationRefused("bad_id", "This link does not carry a valid participant id. Please start "
                                             "the study from the link on the recruiting platform.")
    return external_id


def clean_platform_field(raw: str) -> str:
    """A platform study or session id as stored: control and format characters (NUL) dropped, cut to 200."""
    return "".join(ch for ch in str(raw) if unicodedata.category(ch)[0] != "C")[:MAX_ID_CHARS]


def keyed_hash(value: str) -> str:
    """HMAC-SHA256 of `value` under SECRET_KEY: rate limits compare these, nothing stores the value."""
    return hmac.new(settings.SECRET_KEY.encode(), str(value).encode(), hashlib.sha256).hexdigest()


def build_plan(study: Study, rng: random.Random) -> list[str]:
    """Trial kinds by position: a preference block with catch trials spread in it, then ratings.

    Catch trials never come first two, so a consistency repeat has an earlier pair to repeat.
    A listener judges each item at most once, so the judged trials of a kind are capped at the
    number of items of that kind.
    """
    n_items = dict(Item.objects.filter(study=study).values_list("kind").annotate(n=Count("id")))
    n_pref = study.preference_trials
    n_catch = round(study.catch_rate * n_pref)
    if study.catch_rate > 0 and n_pref >= 3:
        n_catch = max(1, n_catch)
    n_catch = min(n_catch, max(0, n_pref - 2))
    n_regular = min(n_pref - n_catch, n_items.get(Item.Kind.PREFERENCE.value, 0))
    n_catch = min(n_catch, max(0, n_regular + n_catch - 2))
    n_pref = n_regular + n_catch
    plan = [Item.Kind.PREFERENCE.value] * n_pref
    for position in rng.sample(range(2, n_pref), n_catch):
        plan[position] = CATCH
    if study.attributes and study.rating_trials:
        plan += [Item.Kind.RATING.value] * min(study.rating_trials, n_items.get(Item.Kind.RATING.value, 0))
    return plan


def _needs(plans: dict[int, list], answered: dict, leased: dict) -> dict[str, int]:
    """Judged trials of each kind the participants with `plans` still need, beyond answered
    ones and slots they hold by a live lease ({(participant id, kind): count} for both)."""
    return {kind: sum(max(0, plan.count(kind) - answered.get((pid, kind), 0) - leased.get((pid, kind), 0))
                      for pid, plan in plans.items())
            for kind in JUDGED_KINDS}


def seats_left(study: Study, plan: list[str], now=None) -> bool:
    """Can a new listener with `plan` be given every judged trial of it, on top of what the
    active listeners still need? Counts free slots (quota - judged - live leases) per kind,
    minus the active listeners' remaining needs, and the distinct items with a free slot (a
    listener judges an item once). Four queries, whatever the number of listeners."""
    now = now or timezone.now()
    live = Count("trials", filter=Q(trials__status=Trial.Status.LEASED, trials__lease_expires_at__gt=now))
    free = {kind: [0, 0] for kind in JUDGED_KINDS}  # kind -> [free slots, items with a free slot]
    for kind, slots in (Item.objects.filter(study=study).annotate(free=F("quota") - F("n_judged") - live)
                        .filter(free__gt=0).values_list("kind", "free")):
        free[kind][0] += slots
        free[kind][1] += 1
    plans = dict(Participant.objects.filter(study=study, status__in=Participant.ACTIVE).values_list("id", "plan"))
    judged = Trial.objects.filter(participant__study=study, participant__status__in=Participant.ACTIVE,
                                  kind__in=JUDGED_KINDS, item__isnull=False)
    counts = judged.values_list("participant_id", "kind").annotate(n=Count("id"))
    answered = {(pid, kind): n for pid, kind, n in counts.filter(status=Trial.Status.ANSWERED)}
    leased = {(pid, kind): n for pid, kind, n in counts.filter(status=Trial.Status.LEASED, lease_expires_at__gt=now)}
    reserved = _needs(plans, answered, leased)
    for kind in JUDGED_KINDS:
        needed = plan.count(kind)
        if needed and (needed > free[kind][1] or free[kind][0] - reserved[kind] < needed):
            return False
    return any(plan.count(kind) for kind in JUDGED_KINDS)


def can_join(study: Study) -> bool:
    """Whether a newcomer would be seated now (for the landing page, before consent)."""
    return study.status == Study.Status.OPEN and seats_left(study, build_plan(study, random.Random(0)))


def _check_join_rate(study: Study, client_hash: str, session_hash: str) -> None:
    mine = Participant.objects.filter(study=study)
    if session_hash and mine.filter(session_hash=session_hash).exists():
        raise ParticipationRefused("already_joined", "This browser has already taken part in this study.")
    if client_hash and study.joins_per_address:
        since = timezone.now() - timedelta(seconds=study.join_window_s)
        if mine.filter(client_hash=client_hash, started_at__gte=since).count() >= study.joins_per_address:
            raise ParticipationRefused("rate_limited", "Too many participations were started from this network "
                                                       "recently. Please try again later.")


def join_study(study: Study, external_id: str | None = None, platform: str = "direct",
               platform_study_id: str = "", platform_session_id: str = "", client_address: str = "",
               session_key: str = "") -> Participant:
    """Consent given: create the participant with a fresh `session_nonce` for the caller's session.

    Raises ParticipationRefused when no participation starts: bad_id (not of the study's id
    format), in_use (this id's participation runs in another browser session), already_done
    (this id took part), closed / paused, no_slot (the study cannot give a full set of
    trials), already_joined / rate_limited (join limits per browser session and address).
    `client_address` and `session_key` are only hashed (see `keyed_hash`).
    """
    external_id = check_external_id(study, external_id) if external_id else f"anon-{uuid.uuid4()}"
    client_hash = keyed_hash(f"address:{client_address}") if client_address else ""
    session_hash = keyed_hash(f"session:{session_key}") if session_key else ""
    with transaction.atomic():
        # One join at a time per study: the seat count below sees every earlier join.
        study = Study.objects.select_for_update().get(pk=study.pk)
        existing = Participant.objects.filter(study=study, external_id=external_id).first()
        if existing is not None:
            if existing.status in Participant.ACTIVE:
                raise ParticipationRefused("in_use", "A participation with this id is already running in another "
                                                     "browser. Please continue there.")
            raise ParticipationRefused("already_done", "This id has already taken part in this study. Thank you!")
        if study.status != Study.Status.OPEN:
            raise ParticipationRefused(study.status, "This study is not taking new listeners at the moment.")
        _check_join_rate(study, client_hash, session_hash)
        plan = build_plan(study, random.SystemRandom())
        if not seats_left(study, plan):
            raise ParticipationRefused("no_slot", "This study cannot take another listener right now: every "
                                                  "place is taken.")
        status = Participant.Status.STARTED if study.screening_enabled else Participant.Status.IN_PROGRESS
        try:
            with transaction.atomic():
                return Participant.objects.create(
                    study=study, external_id=external_id, platform=platform,
                    platform_study_id=clean_platform_field(platform_study_id),
                    platform_session_id=clean_platform_field(platform_session_id), client_hash=client_hash,
                    session_hash=session_hash, status=status, session_nonce=secrets.token_hex(16), plan=plan)
        except IntegrityError:  # the same id joined concurrently (SQLite: no study lock)
            raise ParticipationRefused("in_use", "A participation with this id is already running in another "
                                                 "browser. Please continue there.") from None


def touch(participant: Participant) -> Participant:
    """Record activity; a participant idle past the study's timeout becomes timed_out first."""
    now = timezone.now()
    idle = timedelta(seconds=participant.study.idle_timeout_s)
    if participant.status in Participant.ACTIVE and participant.last_seen_at < now - idle:
        _end(participant, Participant.Status.TIMED_OUT)
        return participant
    Participant.objects.filter(pk=participant.pk).update(last_seen_at=now)
    return participant


def _end(participant: Participant, status: str) -> None:
    with transaction.atomic():
        locked = Participant.objects.select_for_update().get(pk=participant.pk)
        if locked.status not in Participant.ACTIVE:
            participant.status = locked.status
            return
        Trial.objects.filter(participant=locked, status=Trial.Status.LEASED).update(status=Trial.Status.ABANDONED)
        now = timezone.now()
        Participant.objects.filter(pk=locked.pk).update(status=status, ended_at=now)
        participant.status, participant.ended_at = status, now


def return_participation(participant: Participant) -> None:
    """The listener stops early: their open trial's slot goes back to the pool."""
    _end(participant, Participant.Status.RETURNED)


def expire_idle_participants(study: Study) -> int:
    """Time out every active participant idle past the study's timeout; returns how many."""
    cutoff = timezone.now() - timedelta(seconds=study.idle_timeout_s)
    idle = list(Participant.objects.filter(study=study, status__in=Participant.ACTIVE, last_seen_at__lt=cutoff))
    for participant in idle:
        _end(participant, Participant.Status.TIMED_OUT)
    return len(idle)


def screening_trials(participant: Participant) -> list[ScreeningTrial]:
    """The current attempt's six trials, created on first need (targets drawn server-side)."""
    if participant.status != Participant.Status.STARTED:
        raise ParticipationRefused("not_screening", "The headphone check is not the current step.")
    with transaction.atomic():
        locked = Participant.objects.select_for_update().get(pk=participant.pk)
        attempt = max(1, locked.screening_attempts)
        trials = list(ScreeningTrial.objects.filter(participant=locked, attempt=attempt))
        if not trials:
            rng = random.SystemRandom()
            trials = ScreeningTrial.objects.bulk_create(
                ScreeningTrial(participant=locked, attempt=attempt, index=i, target=rng.randint(1, 3),
                               seed=rng.getrandbits(62)) for i in range(1, huggins.N_TRIALS + 1))
            Participant.objects.filter(pk=locked.pk).update(screening_attempts=attempt)
            participant.screening_attempts = attempt
    return sorted(trials, key=lambda t: t.index)


def answer_screening(participant: Participant, screening_public_id: str, answer: int) -> str:
    """Record one screening answer (first answer wins); returns the next step.

    "next" (more trials in this attempt), "retry" (failed the first attempt), "passed",
    or "screened_out".
    """
    if answer not in (1, 2, 3):
        raise ValueError(f"answer must be 1, 2 or 3, not {answer!r}")
    screening_public_id = uuid.UUID(str(screening_public_id))  # ValueError for anything else
    with transaction.atomic():
        locked = Participant.objects.select_for_update().get(pk=participant.pk)
        if locked.status != Participant.Status.STARTED:
            raise ParticipationRefused("not_screening", "The headphone check is already finished.")
        trial = ScreeningTrial.objects.filter(participant=locked, public_id=screening_public_id,
                                              attempt=locked.screening_attempts).first()
        if trial is None:
            raise ParticipationRefused("unknown", "This headphone-check trial is not part of your session.")
        if trial.answer is None:
            trial.answer, trial.answered_at = answer, timezone.now()
            trial.save(update_fields=["answer", "answered_at"])
        attempt = list(ScreeningTrial.objects.filter(participant=locked, attempt=locked.screening_attempts))
        if any(t.answer is None for t in attempt):
            return "next"
        score = sum(t.correct for t in attempt)
        best = max(score, locked.screening_score or 0)
        if huggins.passed(score):
            Participant.objects.filter(pk=locked.pk).update(
                status=Participant.Status.IN_PROGRESS, screening_passed=True, screening_score=best)
            result = "passed"
        elif locked.screening_attempts < huggins.MAX_ATTEMPTS:
            Participant.objects.filter(pk=locked.pk).update(
                screening_attempts=locked.screening_attempts + 1, screening_score=best)
            result = "retry"
        else:
            Participant.objects.filter(pk=locked.pk).update(
                status=Participant.Status.SCREENED_OUT, screening_passed=False, screening_score=best,
                ended_at=timezone.now())
            result = "screened_out"
    participant.refresh_from_db()
    return result
