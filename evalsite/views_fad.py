"""The FAD results page: every FAD job with its CI and provenance, newest first."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from evalsite.models import FadResult

PAGE_ROWS = 200


def fad_results(request: HttpRequest) -> HttpResponse:
    # One query; shards are not needed for the listing.
    results = FadResult.objects.order_by("-created")[:PAGE_ROWS]
    return render(request, "evalsite/fad_results.html", {"results": results})
