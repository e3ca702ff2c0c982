"""Failures of the listening services, each with what the caller (a view, a CLI) should say."""

from __future__ import annotations

from hafm_core.errors import HafmError


class StudySetupError(HafmError):
    """A study cannot be created as asked: the message names the value and the fix."""


class ParticipationRefused(Exception):
    """The study does not take this listener now (closed, paused, full, already finished)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class AnswerRejected(Exception):
    """A trial answer that is not recorded, with the HTTP status a view should answer.

    `code` is stable for clients: already_recorded (409), expired (409), out_of_order (409),
    audio_not_fetched (409: the server has not delivered every byte of each clip yet; `sides`
    lists which), too_early (409: less than the minimum listening time has passed since the
    trial was served; `retry_after_ms` says how long to wait), study_paused (409),
    study_closed (410), invalid (400), bad_key (400), unknown_trial (404).
    `details` holds the extra machine-readable fields (`sides`, `retry_after_ms`).
    """

    STATUS = {"already_recorded": 409, "expired": 409, "out_of_order": 409, "audio_not_fetched": 409,
              "too_early": 409, "study_paused": 409, "study_closed": 410, "invalid": 400, "bad_key": 400,
              "unknown_trial": 404}

    def __init__(self, code: str, message: str, **details):
        super().__init__(message)
        self.code = code
        self.http_status = self.STATUS[code]
        self.details = details
