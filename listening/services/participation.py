"""A listener's way through a study: consent, headphone screening, return, time-out.

Status: started -> screened_out | in_progress -> completed | returned | timed_out.
One participation per (study, external id): coming back with the same id resumes it (and
takes it over from any older browser session, whose nonce stops working).
"""

from __future__ import annotations

import random
import secrets
import uuid
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from listening import huggins
from listening.exceptions import ParticipationRefused
from listening.models import Item, Participant, ScreeningTrial, Study, Trial

CATCH = "catch"


def build_plan(study: Study, rng: random.Random) -> list[str]:
    """Trial kinds by position: a preference block with catch trials spread in it, then ratings.

    Catch trials never come first two, so a consistency repeat has an earlier pair to repeat.
    """
    n_pref = study.preference_trials
    n_catch = round(study.catch_rate * n_pref)
    if study.catch_rate > 0 and n_pref >= 3:
        n_catch = max(1, n_catch)
    n_catch = min(n_catch, max(0, n_pref - 2))
    plan = [Item.Kind.PREFERENCE.value] * n_pref
    for position in rng.sample(range(2, n_pref), n_catch):
        plan[position] = CATCH
    if study.attributes and study.rating_trials:
        plan += [Item.Kind.RATING.value] * study.rating_trials
    return plan


def _capacity_left(study: Study) -> bool:
    from django.db.models import F

    return Item.objects.filter(study=study, n_judged__lt=F("quota")).exists()


def join_study(study: Study, external_id: str | None = None, platform: str = "direct",
               platform_study_id: str = "", platform_session_id: str = "") -> Participant:
    """Consent given: create the participant, or resume the one with this external id.

    Returns the participant with a fresh `session_nonce` for the caller's session. Raises
    ParticipationRefused when a new participant cannot start (closed, paused, full).
    """
    external_id = (external_id or "").strip()[:200] or f"anon-{uuid.uuid4()}"
    nonce = secrets.token_hex(16)
    with transaction.atomic():
        existing = Participant.objects.select_for_update().filter(study=study, external_id=external_id).first()
        if existing is not None:
            existing.session_nonce = nonce
            existing.last_seen_at = timezone.now()
            existing.save(update_fields=["session_nonce", "last_seen_at"])
            return existing
        if study.status != Study.Status.OPEN:
            raise ParticipationRefused(study.status, "This study is not taking new listeners at the moment.")
        if not _capacity_left(study):
            raise ParticipationRefused("full", "This study has all the answers it needs. Thank you!")
        status = Participant.Status.STARTED if study.screening_enabled else Participant.Status.IN_PROGRESS
        try:
            with transaction.atomic():
                return Participant.objects.create(
                    study=study, external_id=external_id, platform=platform,
                    platform_study_id=platform_study_id[:200], platform_session_id=platform_session_id[:200],
                    status=status, session_nonce=nonce, plan=build_plan(study, random.SystemRandom()))
        except IntegrityError:  # the same id joined concurrently: resume that one
            pass
    return join_study(study, external_id, platform, platform_study_id, platform_session_id)


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
