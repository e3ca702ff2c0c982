"""Site pages: parse the request, call a selector or service, render."""

from __future__ import annotations

import functools
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_POST

from evalsite import selectors
from evalsite.forms import LaunchForm
from evalsite.models import BenchmarkRun, Excerpt, GeneratedClip
from evalsite.services import benchmarks, run_audio
from hafm_core.errors import HafmError
from listening.ranged_response import ranged_file_response


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "evalsite/home.html",
                  selectors.home_context(staff=request.user.is_active and request.user.is_staff))


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for a proxy or orchestrator: the database answers a query."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


def run_list(request: HttpRequest) -> HttpResponse:
    return render(request, "evalsite/run_list.html", {"runs": selectors.run_list()})


@staff_member_required
def run_launch(request: HttpRequest) -> HttpResponse:
    form = LaunchForm(request.POST) if request.method == "POST" else LaunchForm.with_recent_defaults()
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            launch = benchmarks.launch_benchmark(
                checkpoint_path=data["checkpoint"], dataset_spec=data["dataset"], systems=data["systems"],
                n_excerpts=data["excerpts"], seed=data["seed"], embedder=data["embedder"],
                dtype=data["dtype"], created_by=request.user)
        except HafmError as error:
            form.add_error(None, str(error))
        else:
            if launch.run.status == BenchmarkRun.Status.UNDISPATCHED:
                # Never shown as launched: the broker did not take the tasks; Resume sends them.
                messages.error(request, launch.run.error)
            elif launch.reused:
                messages.info(request, "A run with exactly these parameters already exists: here it is.")
            else:
                messages.success(request, "Benchmark launched.")
            return redirect("evalsite:run_detail", run_id=launch.run.id)
    return render(request, "evalsite/run_launch.html", {"form": form})


def _run(run_id) -> BenchmarkRun:
    return get_object_or_404(BenchmarkRun.objects.select_related("checkpoint", "dataset"), id=run_id)


def run_detail(request: HttpRequest, run_id) -> HttpResponse:
    run = _run(run_id)
    return render(request, "evalsite/run_detail.html", {"run": run, "progress": selectors.run_progress(run)})


def run_progress(request: HttpRequest, run_id) -> JsonResponse:
    """The small JSON the run page polls."""
    return JsonResponse(selectors.run_progress(_run(run_id)).to_json())


@staff_member_required
@require_POST
def run_cancel(request: HttpRequest, run_id) -> HttpResponse:
    try:
        benchmarks.cancel_run(_run(run_id))
    except HafmError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Run cancelled: clips already generated are kept; resume redoes only the rest.")
    return redirect("evalsite:run_detail", run_id=run_id)


@staff_member_required
@require_POST
def run_resume(request: HttpRequest, run_id) -> HttpResponse:
    try:
        sent = benchmarks.resume_run(_run(run_id))
    except HafmError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Run resumed: {sent} task(s) sent for the missing work.")
    return redirect("evalsite:run_detail", run_id=run_id)


def _may_hear(request: HttpRequest, run: BenchmarkRun) -> bool:
    """System-labelled audio of a run: staff, or anyone once staff published it (run_audio)."""
    return run.audio_public or (request.user.is_active and request.user.is_staff)


def run_compare(request: HttpRequest, run_id) -> HttpResponse:
    run = _run(run_id)
    if not _may_hear(request, run):
        raise Http404("no such comparison")  # the same answer as for a run that does not exist
    return render(request, "evalsite/run_compare.html", selectors.comparison(run))


@staff_member_required
@require_POST
def run_publish(request: HttpRequest, run_id) -> HttpResponse:
    """Staff make a run's comparison and audio public, or private again (`action=unpublish`)."""
    run = _run(run_id)
    try:
        if request.POST.get("action") == "unpublish":
            run_audio.unpublish(run)
            messages.success(request, "The comparison and its audio are staff-only again.")
        else:
            run_audio.publish(run)
            messages.success(request, "The comparison and its audio are now public.")
    except HafmError as error:
        messages.error(request, str(error))
    return redirect("evalsite:run_detail", run_id=run_id)


def _media_file(path: str) -> Path:
    """Serve only files under the media folder (where datasets and runs are written)."""
    resolved = Path(path).resolve()
    if not path or not resolved.is_file() or not resolved.is_relative_to(Path(settings.MEDIA_ROOT).resolve()):
        raise Http404("no such audio file")
    return resolved


def clip_audio(request: HttpRequest, clip_id, kind: str) -> HttpResponse:
    clip = get_object_or_404(GeneratedClip.objects.select_related("run"), id=clip_id,
                             status=GeneratedClip.Status.DONE)
    if not _may_hear(request, clip.run):
        raise Http404("no such audio file")
    return ranged_file_response(request, _media_file(clip.mix_path if kind == "mix" else clip.accompaniment_path))


def excerpt_audio(request: HttpRequest, excerpt_id, kind: str) -> HttpResponse:
    excerpt = get_object_or_404(Excerpt, id=excerpt_id)
    staff = request.user.is_active and request.user.is_staff
    if not staff and not excerpt.clips.filter(run__audio_public=True).exists():
        raise Http404("no such audio file")
    return ranged_file_response(request, _media_file(
        excerpt.vocal_path if kind == "vocal" else excerpt.accompaniment_path))


@functools.cache
def _plotly_js() -> bytes:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().encode()


@cache_control(public=True, max_age=86_400)
def plotly_js(request: HttpRequest) -> HttpResponse:
    """plotly.js from the installed plotly package: charts work offline, no CDN."""
    return HttpResponse(_plotly_js(), content_type="application/javascript")
