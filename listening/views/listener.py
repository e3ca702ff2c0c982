"""Listener pages and the trial API: parse, call a service or selector, render.

A browser session holds, per study, [participant public id, session nonce]; every page and
API call resolves the participant from it. Pages never show a system, excerpt or study name
(the staff-only `Study.name` included): see tests/listening/test_blinding.py.

The trial API answers JSON. Errors carry `error` and `code` (the same stable string, see
`AnswerRejected`), a `message`, and where useful `retry_after_ms` and `sides`. Bodies must be
JSON objects (Content-Type application/json, at most API_MAX_BODY_BYTES); anything else is a
400/413/415 with a code, never a server error (`listening.middleware` answers the rest).
"""

from __future__ import annotations

import json
import math
import secrets

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from listening import huggins, selectors, services
from listening.audio_tokens import AudioClaim, make_token
from listening.client_address import client_address
from listening.exceptions import AnswerRejected, ParticipationRefused
from listening.models import Participant, Study, Trial

SESSION_KEY = "listening"
BROWSER_KEY = "listening_browser"
PROLIFIC_COMPLETE_URL = "https://app.prolific.com/submissions/complete?cc={code}"
SCALE_LABELS = ["Very poor", "Poor", "Fair", "Good", "Excellent"]
API_MAX_BODY_BYTES = 16_384
PAUSED_RETRY_MS = 60_000
PLATFORM_FIELDS = ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID")


def _api_error(code: str, message: str, status: int, **extra) -> JsonResponse:
    response = JsonResponse({"error": code, "code": code, "message": message, **extra}, status=status)
    if "retry_after_ms" in extra:
        response["Retry-After"] = str(max(1, math.ceil(extra["retry_after_ms"] / 1000)))
    return response


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
    prolific = {key: services.participation.clean_platform_field(source.get(key, "")) for key in PLATFORM_FIELDS}
    participant = current_participant(request, study)
    if participant is not None:  # this browser's own participation: resume it, whatever id is typed
        return redirect(_step_url(study, participant))
    error = ""
    if request.method == "POST" and source.get("consent") != "yes":
        error = "Please tick the box to agree before starting."
    elif request.method == "POST" or not services.participation.can_join(study):
        try:
            participant = _join(request, study, prolific)
        except ParticipationRefused as refusal:
            return _refusal_page(request, study, refusal, prolific["PROLIFIC_PID"])
        return redirect(_step_url(study, participant))
    n_trials = study.preference_trials + study.rating_trials
    return render(request, "listening/landing.html", {
        "study": study, "prolific": prolific, "error": error, "n_trials": n_trials,
        "minutes": max(5, round(n_trials * 0.75 + (3 if study.screening_enabled else 0) + 2)),
    })


def _join(request: HttpRequest, study: Study, prolific: dict) -> Participant:
    """Consent given (or a GET that will be refused anyway: the refusal is shown before consent)."""
    if request.method != "POST":
        if study.status != Study.Status.OPEN:
            raise ParticipationRefused(study.status, "This study is not taking new listeners at the moment.")
        raise ParticipationRefused("no_slot", "This study cannot take another listener right now: every "
                                              "place is taken.")
    # The browser session's own id: kept in the session data, so it survives the key rotation below.
    browser = request.session.setdefault(BROWSER_KEY, secrets.token_hex(16))
    participant = services.join_study(
        study, request.POST.get("PROLIFIC_PID") or None, platform="prolific" if prolific["PROLIFIC_PID"] else "direct",
        platform_study_id=prolific["STUDY_ID"], platform_session_id=prolific["SESSION_ID"],
        client_address=client_address(request), session_key=browser)
    request.session.cycle_key()
    _bind(request, participant)
    return participant


def _refusal_page(request: HttpRequest, study: Study, refusal: ParticipationRefused, pid: str) -> HttpResponse:
    """Why this listener cannot start; a listener without a place gets the study's no-slot code."""
    code = study.no_slot_code if refusal.reason == "no_slot" else ""
    return render(request, "listening/message.html", {
        "study": study, "heading": "Thank you for your interest", "text": str(refusal), "reason": refusal.reason,
        "code": code, "code_url": PROLIFIC_COMPLETE_URL.format(code=code) if code and pid else "",
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
            answer = int(request.POST.get("answer", "")[:8])
            outcome = services.answer_screening(participant, request.POST.get("screening", "")[:64], answer)
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
    try:
        current = services.next_trial(participant)
    except ParticipationRefused as refusal:
        return render(request, "listening/message.html", {
            "study": study, "heading": "Please wait" if refusal.reason == "paused" else "Thank you",
            "text": str(refusal), "reason": refusal.reason}, status=200)
    if current is None:
        return redirect("listening:done", study.public_id)
    return _trial_page(request, study, participant, current, "listening/trial.html")


def _api_participant(request: HttpRequest, study_id) -> tuple[Study, Participant]:
    study = selectors.study_by_public_id(study_id)
    participant = current_participant(request, study)
    if participant is None:
        raise PermissionError("no participant in this session")
    return study, participant


class BadBody(Exception):
    def __init__(self, response: JsonResponse):
        self.response = response


def _json_body(request: HttpRequest) -> dict:
    """The request's JSON object, or BadBody holding the error answer (415, 413 or 400)."""
    if request.content_type != "application/json":
        raise BadBody(_api_error("unsupported_media_type", "send a JSON object (Content-Type: application/json)",
                                 415))
    if len(request.body) > API_MAX_BODY_BYTES:
        raise BadBody(_api_error("too_large", f"the body is over {API_MAX_BODY_BYTES} bytes", 413))
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, RecursionError):  # bad JSON or UTF-8, a 5000-digit number, deep nesting
        raise BadBody(_api_error("bad_json", "the body is not valid JSON", 400)) from None
    if not isinstance(body, dict):
        raise BadBody(_api_error("bad_json", "the body must be a JSON object", 400))
    return body


@require_GET
def api_next(request: HttpRequest, study_id) -> JsonResponse:
    """The current trial as JSON (allocating one if needed), or where to go when there is none."""
    try:
        study, participant = _api_participant(request, study_id)
    except PermissionError as error:
        return _api_error("no_session", str(error), 403)
    if selectors.next_step(participant) != "trial":
        return JsonResponse({"done": True, "next": _step_url(study, participant)})
    try:
        current = services.next_trial(participant)
    except ParticipationRefused as refusal:
        if refusal.reason == "paused":
            return _api_error("study_paused", str(refusal), 409, retry_after_ms=PAUSED_RETRY_MS)
        return JsonResponse({"done": True, "next": _step_url(study, participant)})
    if current is None:
        return JsonResponse({"done": True, "next": reverse("listening:done", args=[study.public_id])})
    return JsonResponse({"done": False, "trial": trial_descriptor(study, participant, current)})


@require_POST
def api_play(request: HttpRequest, study_id, trial_id) -> HttpResponse:
    """A clip started playing or played to its end ({side, event}); counted on the open trial."""
    try:
        _, participant = _api_participant(request, study_id)
        body = _json_body(request)
    except PermissionError as error:
        return _api_error("no_session", str(error), 403)
    except BadBody as bad:
        return bad.response
    try:
        counted = services.record_play(participant, trial_id, body.get("side"), body.get("event"))
    except ValueError:
        return _api_error("invalid", "send {side: left|right, event: play|ended}", 400)
    if not counted:
        return _api_error("not_open", "this trial is not open", 409)
    return HttpResponse(status=204)


@require_POST
def api_answer(request: HttpRequest, study_id, trial_id) -> JsonResponse:
    """Record an answer once: 200 recorded; else the `AnswerRejected` code and status.

    A too-early answer gets 409 {code: "too_early", retry_after_ms} (and a Retry-After
    header); one before the server delivered all audio gets 409 {code: "audio_not_fetched",
    sides, retry_after_ms}.
    """
    try:
        study, participant = _api_participant(request, study_id)
        body = _json_body(request)
    except PermissionError as error:
        return _api_error("no_session", str(error), 403)
    except BadBody as bad:
        return bad.response
    answer_key = body.get("answer_key", "")
    if not isinstance(answer_key, str):
        return _api_error("bad_key", "the answer key does not match this trial", 400)
    try:
        services.submit_answer(participant, trial_id, answer_key, chosen=body.get("chosen"),
                               ratings=body.get("ratings"), response_time_ms=body.get("response_time_ms"))
    except AnswerRejected as rejection:
        participant.refresh_from_db()
        return _api_error(rejection.code, str(rejection), rejection.http_status,
                          next=_step_url(study, participant), **rejection.details)
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
            Participant.Status.SCREENED_OUT: study.screened_out_code,
            Participant.Status.NO_SLOT: study.no_slot_code}.get(participant.status, "")
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


def served_range(request: HttpRequest, response: HttpResponse) -> tuple[int, int, int] | None:
    """(start, stop, size) of the audio bytes a GET response delivers; None when it delivers none."""
    if request.method != "GET" or response.status_code not in (200, 206):
        return None
    if response.status_code == 206:
        unit, _, spec = response.get("Content-Range", "").partition(" ")
        first_last, _, size = spec.partition("/")
        first, _, last = first_last.partition("-")
        if unit != "bytes" or not (first.isdigit() and last.isdigit() and size.isdigit()):
            return None
        return int(first), int(last) + 1, int(size)
    length = response.get("Content-Length")
    size = int(length) if length and length.isdigit() else None
    if size is None and not response.streaming:
        size = len(response.content)
    return (0, size, size) if size else None


def note_delivery(request: HttpRequest, participant: Participant, kind: str, target: str, side: str,
                  response: HttpResponse) -> HttpResponse:
    """Record what the audio view delivered (the server's proof of listening); returns `response`."""
    served = served_range(request, response)
    if served is not None:
        start, stop, size = served
        if kind == "screening":
            services.record_screening_delivery(participant, target, stop - start)
        elif side in ("left", "right"):
            services.record_delivery(participant, target, side, start, stop, size)
    return response

