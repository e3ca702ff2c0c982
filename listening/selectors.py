"""Reads of the listening app: who is this browser, where are they, how far is a study, exports.

Export column names are a contract (ARCHITECTURE.md, analysis dashboards, `hafm analyze`):
PREFERENCE_COLUMNS, RATING_COLUMNS and PARTICIPANT_COLUMNS only ever grow.
`response_time_ms` is measured on the server (trial served -> answer received);
`response_time_client_ms` is the browser's figure. participants.csv carries one boolean
column per implausible behaviour (FLAG_COLUMNS) and `flags`, their names joined by ';'.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import pandas as pd
from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.utils.crypto import constant_time_compare

from listening.models import (
    Item,
    Participant,
    Rating,
    ScreeningTrial,
    Study,
    Trial,
    fully_delivered,
)

PREFERENCE_COLUMNS = [
    "participant", "excerpt", "system_left", "system_right", "chosen", "chosen_system", "comparison",
    "trial_type", "is_catch", "catch_passed", "plays_left", "plays_right", "response_time_ms", "position",
    "answered_at", "trial", "study", "response_time_client_ms",
]
RATING_COLUMNS = [
    "participant", "excerpt", "system", "attribute", "score", "plays", "plays_to_end", "response_time_ms",
    "position", "answered_at", "trial", "study", "response_time_client_ms",
]
FLAG_COLUMNS = ["flag_too_fast", "flag_no_audio", "flag_duplicate_sequence"]
PARTICIPANT_COLUMNS = [
    "participant", "external_id", "platform", "platform_study_id", "platform_session_id", "status",
    "screening", "screening_score", "screening_attempts", "n_preferences", "n_ratings", "n_catch",
    "n_catch_passed", "catch_accuracy", "started_at", "completed_at", "ended_at", "duration_s",
    "median_response_time_ms", *FLAG_COLUMNS, "flags",
]
# flag_too_fast: the listener's median answer came before one hearing of the audio (server
# response time / clip duration, the longer clip of a pair, below this ratio).
TOO_FAST_RATIO = 1.0
# flag_duplicate_sequence: two listeners' answer sequences (side chosen per pair, scores per
# rating, in order) are equal and carry at least this many bits (1 per pair, log2(5) per
# score), so chance agreement between honest listeners is rare.
DUPLICATE_MIN_BITS = 12.0
PAIR_KINDS = (Trial.Kind.PREFERENCE, Trial.Kind.CATCH_MANIPULATED, Trial.Kind.CATCH_REPEAT)


def study_by_public_id(public_id) -> Study:
    """The study with this public id; Http404 for views when there is none."""
    study = Study.objects.filter(public_id=public_id).first()
    if study is None:
        raise Http404("No such study")
    return study


def participant_for_session(study: Study, binding: list | None) -> Participant | None:
    """The participant a session's [public_id, nonce] binding names, if the nonce is still current."""
    if not binding or len(binding) != 2:
        return None
    participant = Participant.objects.select_related("study").filter(study=study, public_id=binding[0]).first()
    if participant is None or not constant_time_compare(participant.session_nonce, str(binding[1])):
        return None
    return participant


def next_step(participant: Participant) -> str:
    """The page a participant belongs on: screening, instructions, trial or done."""
    if participant.study.status == Study.Status.CLOSED or participant.status not in Participant.ACTIVE:
        return "done"
    if participant.status == Participant.Status.STARTED:
        return "screening"
    if not participant.practice_done:
        return "instructions"
    return "trial"


def comparison_label(system_a: str, system_b: str) -> str:
    return f"{system_a} vs {system_b}"


def study_progress(study: Study) -> dict:
    """Judgments per comparison and per item, listeners by status, catch accuracy."""
    items = list(Item.objects.filter(study=study).select_related("stimulus_a", "stimulus_b")
                 .order_by("kind", "excerpt", "id"))
    comparisons: dict[str, dict] = defaultdict(lambda: {"judged": 0, "quota": 0})
    for item in items:
        key = (comparison_label(item.stimulus_a.system, item.stimulus_b.system)
               if item.kind == Item.Kind.PREFERENCE else f"rating: {item.stimulus_a.system}")
        comparisons[key]["judged"] += item.n_judged
        comparisons[key]["quota"] += item.quota
    statuses = Counter(Participant.objects.filter(study=study).values_list("status", flat=True))
    catch = Trial.objects.filter(study=study, status=Trial.Status.ANSWERED, catch_passed__isnull=False)
    n_catch = catch.count()
    judged, quota = sum(i.n_judged for i in items), sum(i.quota for i in items)
    return {
        "comparisons": [{"name": k, **v} for k, v in comparisons.items()],
        "items": items,
        "participants": {status.label: statuses.get(status.value, 0) for status in Participant.Status},
        "n_participants": sum(statuses.values()),
        "judged": judged, "quota": quota, "fraction": judged / quota if quota else 0.0,
        "n_catch": n_catch, "catch_accuracy": catch.filter(catch_passed=True).count() / n_catch if n_catch else None,
        "flagged": flagged_participants(study),
    }


def flagged_participants(study: Study) -> list[dict]:
    """Participants with any behaviour flag, for the staff page: [{participant, external_id, flags}]."""
    flags = participant_flags(study)
    people = Participant.objects.filter(pk__in=flags).order_by("started_at")
    return [{"participant": str(p.public_id), "external_id": p.external_id, "status": p.status,
             "flags": ", ".join(name.removeprefix("flag_").replace("_", " ") for name in flags[p.pk])}
            for p in people]


def _answered(study: Study, kinds) -> QuerySet[Trial]:
    return (Trial.objects.filter(study=study, status=Trial.Status.ANSWERED, kind__in=kinds)
            .select_related("participant", "stimulus_left", "stimulus_right", "item__stimulus_a",
                            "item__stimulus_b", "repeat_of__item__stimulus_a", "repeat_of__item__stimulus_b")
            .order_by("participant_id", "position"))


def _comparison_of(trial: Trial) -> str:
    item = trial.item or (trial.repeat_of.item if trial.repeat_of else None)
    return comparison_label(item.stimulus_a.system, item.stimulus_b.system) if item else ""


def preferences_frame(study: Study) -> pd.DataFrame:
    """One row per answered 2AFC judgment (catch trials flagged; practice left out)."""
    rows = []
    for trial in _answered(study, PAIR_KINDS):
        left, right = trial.stimulus_left.label, trial.stimulus_right.label
        rows.append({
            "participant": str(trial.participant.public_id), "excerpt": trial.stimulus_left.excerpt,
            "system_left": left, "system_right": right, "chosen": trial.chosen,
            "chosen_system": left if trial.chosen == "left" else right, "comparison": _comparison_of(trial),
            "trial_type": trial.kind, "is_catch": trial.is_catch, "catch_passed": trial.catch_passed,
            "plays_left": trial.plays_left, "plays_right": trial.plays_right,
            "response_time_ms": trial.response_time_ms, "position": trial.position,
            "answered_at": trial.answered_at.isoformat(), "trial": str(trial.public_id), "study": study.name,
            "response_time_client_ms": trial.response_time_client_ms,
        })
    frame = pd.DataFrame(rows, columns=PREFERENCE_COLUMNS)
    return frame.astype({"is_catch": bool, "response_time_ms": "Int64", "catch_passed": "boolean",
                         "response_time_client_ms": "Int64"})


def ratings_frame(study: Study) -> pd.DataFrame:
    """One row per (rated clip, attribute)."""
    ratings = (Rating.objects.filter(trial__study=study, trial__status=Trial.Status.ANSWERED)
               .select_related("trial__participant", "trial__stimulus_left")
               .order_by("trial__participant_id", "trial__position", "id"))
    rows = [{
        "participant": str(r.trial.participant.public_id), "excerpt": r.trial.stimulus_left.excerpt,
        "system": r.trial.stimulus_left.label, "attribute": r.attribute, "score": r.score,
        "plays": r.trial.plays_left, "plays_to_end": r.trial.ended_left, "response_time_ms": r.trial.response_time_ms,
        "position": r.trial.position, "answered_at": r.trial.answered_at.isoformat(),
        "trial": str(r.trial.public_id), "study": study.name, "response_time_client_ms": r.trial.response_time_client_ms,
    } for r in ratings]
    return pd.DataFrame(rows, columns=RATING_COLUMNS).astype({"response_time_ms": "Int64",
                                                              "response_time_client_ms": "Int64"})


def _screening(participant: Participant) -> str:
    if not participant.study.screening_enabled:
        return "not required"
    return {True: "passed", False: "failed", None: "pending"}[participant.screening_passed]


def participant_flags(study: Study) -> dict[int, list[str]]:
    """Implausible behaviour per participant row id: the FLAG_COLUMNS names that hold.

    - flag_too_fast: median over answered trials of (server response time / clip duration)
      below TOO_FAST_RATIO: answers typically came before the audio could have been heard;
    - flag_no_audio: an answered trial whose clips the server did not deliver whole, or a
      headphone-check answer given without its audio ever being fetched;
    - flag_duplicate_sequence: the same answer sequence as another participant (see
      DUPLICATE_MIN_BITS).
    """
    ratios: dict[int, list[float]] = defaultdict(list)
    no_audio: set[int] = set()
    sequences: dict[int, list] = defaultdict(list)
    bits: Counter = Counter()
    trials = (Trial.objects.filter(study=study, status=Trial.Status.ANSWERED)
              .exclude(kind=Trial.Kind.PRACTICE).select_related("stimulus_left", "stimulus_right")
              .prefetch_related("ratings").order_by("participant_id", "position"))
    for trial in trials:
        pid = trial.participant_id
        sides = ("left", "right") if trial.is_pair else ("left",)
        duration_s = max(getattr(trial, f"stimulus_{side}").duration_s for side in sides)
        if trial.response_time_ms is not None and duration_s > 0:
            ratios[pid].append(trial.response_time_ms / (1000 * duration_s))
        if not all(fully_delivered(trial.deliveries.get(side)) for side in sides):
            no_audio.add(pid)
        if trial.is_pair:
            sequences[pid].append(trial.chosen)
            bits[pid] += 1.0
        else:
            scores = sorted((r.attribute, r.score) for r in trial.ratings.all())
            sequences[pid].append(tuple(score for _, score in scores))
            bits[pid] += len(scores) * math.log2(5)
    no_audio |= set(ScreeningTrial.objects.filter(participant__study=study, answer__isnull=False, audio_bytes=0)
                    .values_list("participant_id", flat=True))
    by_sequence: dict[tuple, list[int]] = defaultdict(list)
    for pid, sequence in sequences.items():
        if bits[pid] >= DUPLICATE_MIN_BITS:
            by_sequence[tuple(sequence)].append(pid)
    duplicated = {pid for pids in by_sequence.values() if len(pids) > 1 for pid in pids}
    flags: dict[int, list[str]] = defaultdict(list)
    for pid, values in ratios.items():
        if float(pd.Series(values).median()) < TOO_FAST_RATIO:
            flags[pid].append("flag_too_fast")
    for pid in no_audio:
        flags[pid].append("flag_no_audio")
    for pid in duplicated:
        flags[pid].append("flag_duplicate_sequence")
    return {pid: sorted(names, key=FLAG_COLUMNS.index) for pid, names in flags.items()}


def participants_frame(study: Study) -> pd.DataFrame:
    """One row per participant: status, screening, catch accuracy, durations, behaviour flags."""
    counts: dict[int, Counter] = defaultdict(Counter)
    times: dict[int, list[int]] = defaultdict(list)
    answered = Trial.objects.filter(study=study, status=Trial.Status.ANSWERED).exclude(
        kind=Trial.Kind.PRACTICE).values_list("participant_id", "kind", "catch_passed", "response_time_ms")
    for participant_id, kind, passed, response_ms in answered:
        c = counts[participant_id]
        c["rating" if kind == Trial.Kind.RATING else "preference" if kind == Trial.Kind.PREFERENCE else "catch"] += 1
        c["catch_passed"] += bool(passed)
        if response_ms is not None:
            times[participant_id].append(response_ms)
    flags = participant_flags(study)
    rows = []
    for p in Participant.objects.filter(study=study).select_related("study").order_by("started_at"):
        c = counts[p.id]
        end = p.completed_at or p.ended_at
        rows.append({
            "participant": str(p.public_id), "external_id": p.external_id, "platform": p.platform,
            "platform_study_id": p.platform_study_id, "platform_session_id": p.platform_session_id,
            "status": p.status, "screening": _screening(p), "screening_score": p.screening_score,
            "screening_attempts": p.screening_attempts, "n_preferences": c["preference"], "n_ratings": c["rating"],
            "n_catch": c["catch"], "n_catch_passed": c["catch_passed"],
            "catch_accuracy": c["catch_passed"] / c["catch"] if c["catch"] else None,
            "started_at": p.started_at.isoformat(), "completed_at": p.completed_at.isoformat() if p.completed_at else None,
            "ended_at": end.isoformat() if end else None,
            "duration_s": (end - p.started_at).total_seconds() if end else None,
            "median_response_time_ms": float(pd.Series(times[p.id]).median()) if times[p.id] else None,
            **{name: name in flags.get(p.id, ()) for name in FLAG_COLUMNS}, "flags": ";".join(flags.get(p.id, ())),
        })
    return pd.DataFrame(rows, columns=PARTICIPANT_COLUMNS).astype(
        {"screening_score": "Int64", "catch_accuracy": "Float64", "duration_s": "Float64",
         "median_response_time_ms": "Float64", **dict.fromkeys(FLAG_COLUMNS, bool)})


def study_frames(study: Study) -> dict[str, pd.DataFrame]:
    """{'preferences': ..., 'ratings': ..., 'participants': ...}, the three exports as DataFrames."""
    return {"preferences": preferences_frame(study), "ratings": ratings_frame(study),
            "participants": participants_frame(study)}


def studies_for_staff() -> QuerySet[Study]:
    return Study.objects.annotate(
        n_participants=Count("participants", distinct=True),
        n_completed=Count("participants", distinct=True,
                          filter=Q(participants__status=Participant.Status.COMPLETED)),
    ).order_by("-created_at")
