"""Plain error answers under /listen/: a listener never sees Django's debug or default error pages.

With DEBUG on (the `make demo` default) Django answers a failure with a page that shows
settings, the database host, media paths and the view's local variables; a staff-only study
name can be among them. Under the listening prefix this middleware answers every failure
itself, with a short page (or JSON for the trial API) that names only the status:

- before the view: a disallowed Host, a body over DATA_UPLOAD_MAX_MEMORY_SIZE, too many
  fields or an unparsable form body (the CSRF check would otherwise raise on reading it),
  and a path that resolves to no view;
- in the view: any exception (`process_exception`); unexpected ones are logged with their
  traceback first, so a bug is never hidden, only its details kept from the listener;
- after: any remaining non-empty HTML error page (e.g. the CSRF failure page).

Deliberate answers of the listening views (JSON with a `code`, plain-text audio refusals,
empty 416s) pass unchanged.
"""

from __future__ import annotations

import logging

from django.core.exceptions import (
    BadRequest,
    DisallowedHost,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve, reverse

logger = logging.getLogger("listening.errors")

MESSAGES = {
    400: "The request could not be understood.",
    403: "This page is not available to this browser session.",
    404: "There is nothing here.",
    405: "This page does not take that kind of request.",
    413: "The request is too large.",
    415: "The request's content type is not accepted here.",
    500: "Something went wrong on our side. Please try again in a moment.",
}
_MARK = "listening_plain"


def keep_response(response: HttpResponse) -> HttpResponse:
    """Mark an error response a view rendered on purpose (e.g. a staff form with its reason),
    so the middleware passes it through instead of its plain page."""
    setattr(response, _MARK, True)
    return response


def listening_prefix() -> str:
    return reverse("listening:audio", args=["x"]).rsplit("audio/", 1)[0]


def plain_error(request: HttpRequest, status: int) -> HttpResponse:
    """A short error answer naming only the status: JSON for the trial API, else a small page."""
    message = MESSAGES.get(status) or MESSAGES[400 if status < 500 else 500]
    if "/api/" in request.path_info:
        response = JsonResponse({"error": f"http_{status}", "code": f"http_{status}", "message": message},
                                status=status)
    else:
        html = render_to_string("listening/error.html", {"status": status, "message": message})
        response = HttpResponse(html, status=status, content_type="text/html; charset=utf-8")
    setattr(response, _MARK, True)
    return response


def _status_of(exception: BaseException) -> int:
    if isinstance(exception, Http404):
        return 404
    if isinstance(exception, PermissionDenied):
        return 403
    if isinstance(exception, RequestDataTooBig):
        return 413
    if isinstance(exception, SuspiciousOperation | BadRequest | MultiPartParserError | UnreadablePostError):
        return 400
    return 500


class ListenerErrorsMiddleware:
    """Place first in MIDDLEWARE, so it sees the request before Host checks and CSRF read it."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.prefix: str | None = None

    def _applies(self, request: HttpRequest) -> bool:
        if self.prefix is None:
            self.prefix = listening_prefix()
        return request.path_info.startswith(self.prefix)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not self._applies(request):
            return self.get_response(request)
        early = self._check_request(request)
        if early is not None:
            return early
        response = self.get_response(request)
        if (response.status_code >= 400 and not getattr(response, _MARK, False)
                and response.get("Content-Type", "").startswith("text/html") and response.content):
            return plain_error(request, response.status_code)
        return response

    def _check_request(self, request: HttpRequest) -> HttpResponse | None:
        try:
            request.get_host()
        except DisallowedHost:
            return plain_error(request, 400)
        # Uploads (multipart) are left unread: the upload view installs its streaming size
        # limits before anything parses the body (listening.uploads).
        if request.method == "POST" and not request.content_type.startswith("multipart/"):
            try:
                request.body  # noqa: B018 - reads the body under DATA_UPLOAD_MAX_MEMORY_SIZE
                request.POST  # noqa: B018 - parses a form body once, here, not inside the CSRF check
            except (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent, MultiPartParserError,
                    UnreadablePostError, SuspiciousOperation) as error:
                return plain_error(request, _status_of(error))
        try:
            resolve(request.path_info)
        except Resolver404:
            if not request.path_info.endswith("/") and _resolves(request.path_info + "/"):
                return None  # CommonMiddleware redirects to the path with the slash
            return plain_error(request, 404)
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not self._applies(request):
            return None
        status = _status_of(exception)
        if status == 500:
            logger.error("listening view failed on %s %s", request.method, request.path_info,
                         exc_info=(type(exception), exception, exception.__traceback__))
        return plain_error(request, status)


def _resolves(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True
