"""Listener pages and the trial API: parse, call a service or selector, render.

A browser session holds, per study, [participant public id, session nonce]; every page and
API call resolves the participant from it. Pages never show a system, excerpt or study name
(the staff-only `Study.name` included): see tests/listening/test_blinding.py.
"""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from listening import huggins, selectors, services
from listening.audio_tokens import AudioClaim, make_token
from listening.exceptions import AnswerRejected, ParticipationRefused
from listening.models import Participant, Study, Trial

SESSION_KEY = "listening"
PROLIFIC_COMPLETE_URL = "https://app.prolific.com/submissions/complete?cc={code}"
SCALE_LABELS = ["Very poor", "Poor", "Fair", "Good", "Excellent"]


def _bind(request: HttpRequest, participant: Participant) -> None:
    bindings = request.session.get(SESSION_KEY, {})
    bindings[str(participant.study.public_id)] = [str(participant.public_id), participant.session_nonce]
    request.session[SESSION_KEY] = bindings


def current_participant(request: HttpRequest, study: Study) -> Participant | None:
    binding = request.session.get(SESSION_KEY, {}).get(str(study.public_id))
    participant = selectors.participant_for_session(study, binding)
    if participant is not None:
        services.touch(participant)
    return participant


def _step_url(study: Study, participant: Participant) -> str:
    return reverse(f"listening:{selectors.next_step(participant)}", args=[study.public_id])


def _participant_on_step(request: HttpRequest, study: Study, step: str):
    """(participant, None) when this is their page, else (None, redirect to where they belong)."""
    participant = current_participant(request, study)
    if participant is None:
        return None, redirect("listening:landing", study.public_id)
    if selectors.next_step(participant) != step:
        return None, redirect(_step_url(study, participant))
    return participant, None


@require_http_methods(["GET", "POST"])
def landing(request: HttpRequest, study_id) -> HttpResponse:
    """Information and consent; Prolific's PROLIFIC_PID, STUDY_ID and SESSION_ID ride along."""
    study = selectors.study_by_public_id(study_id)
    source = request.POST if request.method == "POST" else request.GET
    prolific = {key: source.get(key, "")[:200] for key in ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID")}
    participant = current_participant(request, study)
    if participant is not None and (not prolific["PROLIFIC_PID"] or prolific["PROLIFIC_PID"] == participant.external_id):
        return redirect(_step_url(study, participant))
    error = ""
    if request.method == "POST":
        if source.get("consent") != "yes":
            error = "Please tick the box to agree before starting."
        else:
            try:
                participant = services.join_study(
                    study, prolific["PROLIFIC_PID"] or None, platform="prolific" if prolific["PROLIFIC_PID"] else "direct",
                    platform_study_id=prolific["STUDY_ID"], platform_session_id=prolific["SESSION_ID"])
            except ParticipationRefused as refusal:
                return render(request, "listening/message.html",
                              {"study": study, "heading": "Thank you for your interest", "text": str(refusal)})
            request.session.cycle_key()
            _bind(request, participant)
            return redirect(_step_url(study, participant))
    n_trials = study.preference_trials + study.rating_trials
    return render(request, "listening/landing.html", {
        "study": study, "prolific": prolific, "error": error, "n_trials": n_trials,
        "minutes": max(5, round(n_trials * 0.75 + (3 if study.screening_enabled else 0) + 2)),
    })


@require_http_methods(["GET", "POST"])
def screening(request: HttpRequest, study_id) -> HttpResponse:
    study = selectors.study_by_public_id(study_id)
    participant, elsewhere = _participant_on_step(request, study, "screening")
    if elsewhere:
        return elsewhere
    retry = False
    if request.method == "POST":
        try:
            answer = int(request.POST.get("answer", ""))
            outcome = services.answer_screening(participant, request.POST.get("screening", ""), answer)
        except (ValueError, ParticipationRefused):
            return redirect("listening:screening", study.public_id)
        if outcome in ("passed", "screened_out"):
            return redirect(_step_url(study, participant))
        retry = outcome == "retry"
    trials = services.screening_trials(participant)
    current = next(t for t in trials if t.answer is None)
    claim = AudioClaim(str(participant.public_id), participant.session_nonce, "screening", str(current.public_id),
                       "single")
    return render(request, "listening/screening.html", {
        "study": study, "trial": current, "n_trials": huggins.N_TRIALS, "attempt": participant.screening_attempts,
        "retry": retry or (participant.screening_attempts > 1 and current.index == 1),
        "audio_url": reverse("listening:audio", args=[make_token(claim)]),
    })


def trial_descriptor(study: Study, participant: Participant, trial: Trial) -> dict:
    """What a page or the API shows of a trial: nothing that tells a catch trial or a system apart."""
    def audio(side: str) -> str:
        claim = AudioClaim(str(participant.public_id), participant.session_nonce, "trial", str(trial.public_id), side)
        return reverse("listening:audio", args=[make_token(claim)])

    descriptor = {
        "id": str(trial.public_id), "task": "pair" if trial.is_pair else "rating",
        "practice": trial.kind == Trial.Kind.PRACTICE, "position": trial.position, "total": len(participant.plan),
        "answer_key": trial.answer_key, "audio": {"left": audio("left")},
        "played": {"left": trial.plays_left > 0, "right": trial.plays_right > 0},
        "ended": {"left": trial.ended_left > 0, "right": trial.ended_right > 0},
        "play_url": reverse("listening:api-play", args=[study.public_id, trial.public_id]),
        "answer_url": reverse("listening:api-answer", args=[study.public_id, trial.public_id]),
    }
    if trial.is_pair:
        descriptor["audio"]["right"] = audio("right")
    else:
        descriptor["attributes"] = list(study.attributes)
    return descriptor


def _trial_page(request, study, participant, trial, template: str) -> HttpResponse:
    return render(request, template, {
        "study": study, "trial": trial_descriptor(study, participant, trial), "scale": list(enumerate(SCALE_LABELS, 1)),
    })


@require_GET
def instructions(request: HttpRequest, study_id) -> HttpResponse:
    study = selectors.study_by_public_id(study_id)
    participant, elsewhere = _participant_on_step(request, study, "instructions")
    if elsewhere:
        return elsewhere
    return _trial_page(request, study, participant, services.practice_trial(participant), "listening/instructions.html")


@require_GET
def trial(request: HttpRequest, study_id) -> HttpResponse:
    study = selectors.study_by_public_id(study_id)
    participant, elsewhere = _participant_on_step(request, study, "trial")
    if elsewhere:
        return elsewhere
    current = services.next_trial(participant)
    if current is None:
        return redirect("listening:done", study.public_id)
    return _trial_page(request, study, participant, current, "listening/trial.html")


def _api_participant(request: HttpRequest, study_id) -> tuple[Study, Participant]:
    study = selectors.study_by_public_id(study_id)
    participant = current_participant(request, study)
    if participant is None:
        raise PermissionError("no participant in this session")
    return study, participant


def _json_body(request: HttpRequest) -> dict:
    try:
        body = json.loads(request.body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


@require_GET
def api_next(request: HttpRequest, study_id) -> JsonResponse:
    """The current trial as JSON (allocating one if needed), or where to go when there is none."""
    try:
        study, participant = _api_participant(request, study_id)
    except PermissionError as error:
        return JsonResponse({"error": "no_session", "message": str(error)}, status=403)
    if selectors.next_step(participant) != "trial":
        return JsonResponse({"done": True, "next": _step_url(study, participant)})
    current = services.next_trial(participant)
    if current is None:
        return JsonResponse({"done": True, "next": reverse("listening:done", args=[study.public_id])})
    return JsonResponse({"done": False, "trial": trial_descriptor(study, participant, current)})


@require_POST
def api_play(request: HttpRequest, study_id, trial_id) -> HttpResponse:
    """A clip started playing or played to its end ({side, event}); counted on the open trial."""
    try:
        _, participant = _api_participant(request, study_id)
    except PermissionError as error:
        return JsonResponse({"error": "no_session", "message": str(error)}, status=403)
    body = _json_body(request)
    try:
        counted = services.record_play(participant, trial_id, body.get("side"), body.get("event"))
    except ValueError as error:
        return JsonResponse({"error": "invalid", "message": str(error)}, status=400)
    if not counted:
        return JsonResponse({"error": "not_open", "message": "this trial is not open"}, status=409)
    return HttpResponse(status=204)


@require_POST
def api_answer(request: HttpRequest, study_id, trial_id) -> JsonResponse:
    """Record an answer once: 200 recorded; 409 already recorded / expired; 400 invalid; 404 unknown."""
    try:
        study, participant = _api_participant(request, study_id)
    except PermissionError as error:
        return JsonResponse({"error": "no_session", "message": str(error)}, status=403)
    body = _json_body(request)
    try:
        services.submit_answer(participant, trial_id, body.get("answer_key", ""), chosen=body.get("chosen"),
                               ratings=body.get("ratings"), response_time_ms=body.get("response_time_ms"))
    except AnswerRejected as rejection:
        participant.refresh_from_db()
        return JsonResponse({"error": rejection.code, "message": str(rejection),
                             "next": _step_url(study, participant)}, status=rejection.http_status)
    participant.refresh_from_db()
    return JsonResponse({"status": "recorded", "next": _step_url(study, participant)})


@require_GET
def done(request: HttpRequest, study_id) -> HttpResponse:
    """The end page for every outcome: completed, screened out, returned, timed out, closed."""
    study = selectors.study_by_public_id(study_id)
    participant = current_participant(request, study)
    if participant is None:
        return redirect("listening:landing", study.public_id)
    step = selectors.next_step(participant)
    if step != "done":
        return redirect(_step_url(study, participant))
    code = {Participant.Status.COMPLETED: study.completion_code,
            Participant.Status.SCREENED_OUT: study.screened_out_code}.get(participant.status, "")
    redirect_url = PROLIFIC_COMPLETE_URL.format(code=code) if code and participant.platform == "prolific" else ""
    return render(request, "listening/done.html", {
        "study": study, "status": participant.status, "code": code, "redirect_url": redirect_url,
        "closed": study.status == Study.Status.CLOSED and participant.status in Participant.ACTIVE,
    })


@require_POST
def leave(request: HttpRequest, study_id) -> HttpResponse:
    """The listener stops early (status returned)."""
    study = selectors.study_by_public_id(study_id)
    participant = current_participant(request, study)
    if participant is not None:
        services.return_participation(participant)
    return redirect("listening:done", study.public_id)

