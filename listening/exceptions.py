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
    not_played (400), invalid (400), bad_key (400), unknown_trial (404).
    """

    STATUS = {"already_recorded": 409, "expired": 409, "out_of_order": 409, "not_played": 400,
              "invalid": 400, "bad_key": 400, "unknown_trial": 404}

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.http_status = self.STATUS[code]
