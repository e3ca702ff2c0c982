"""Site pages: parse the request, call a selector or service, render."""

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from evalsite import selectors


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "evalsite/home.html", selectors.home_context())


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for a proxy or orchestrator: the database answers a query."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
