"""Staff pages: studies, their rendering, progress, status, CSV exports. Staff only (admin login)."""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from hafm_core.errors import HafmError
from listening import exports, selectors, services, uploads
from listening.exceptions import StudySetupError
from listening.forms import CLIP_NAMING, StudyForm
from listening.middleware import keep_response
from listening.models import Study


@staff_member_required
def study_list(request: HttpRequest) -> HttpResponse:
    return render(request, "listening/staff/list.html", {"studies": selectors.studies_for_staff()})


def _stimuli_from_uploads(files, folder: Path) -> list[dict]:
    """Save uploads under `folder` and pair each accompaniment with its excerpt's vocal.

    Each clip's duration is read from its header before anything decodes it (UploadRefused).
    The saved names keep the uploaded ones, so a rendering failure names the clip staff know.
    """
    vocals: dict[str, str] = {}
    accompaniments: dict[str, dict[str, str]] = defaultdict(dict)
    for index, upload in enumerate(files):
        excerpt, system, suffix = uploads.clip_name_parts(upload.name)
        path = folder / f"{index}-{excerpt}__{system}{suffix}"  # a rendering error names the clip
        with open(path, "wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        uploads.check_duration(path, upload.name)
        if system == "vocal":
            vocals[excerpt] = str(path)
        else:
            accompaniments[excerpt][system] = str(path)
    missing = sorted(set(accompaniments) - set(vocals))
    if missing:
        raise StudySetupError(f"no vocal uploaded for excerpt(s) {missing}: add EXCERPT__vocal.wav")
    return [{"excerpt": e, "system": s, "vocal_path": vocals[e], "accompaniment_path": p}
            for e, systems in accompaniments.items() for s, p in systems.items()]


@csrf_exempt  # the CSRF check reads the body: done inside, once the upload limits are in place
@staff_member_required
def study_create(request: HttpRequest) -> HttpResponse:
    request.upload_handlers.insert(0, uploads.LimitedUploadHandler(request))
    if request.method == "POST" and request.POST is not None and getattr(request, "upload_refused", None):
        # Nothing is created: the form comes back with the reason (no state change, so no CSRF check).
        form = StudyForm(request.POST)
        form.is_valid()
        form.add_error(None, f"Upload stopped: {request.upload_refused}.")
        return keep_response(render(request, "listening/staff/create.html", {"form": form, "naming": CLIP_NAMING},
                                    status=413))
    return _study_create(request)


@csrf_protect
def _study_create(request: HttpRequest) -> HttpResponse:
    """Check and save the uploads, plan the study and send its rendering to a worker: the
    request decodes no audio. The study's page then shows the rendering's progress."""
    form = StudyForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        folder = uploads.new_sources_folder()
        study = None
        try:
            study = services.plan_study(
                name=data["name"], stimuli=_stimuli_from_uploads(data["clips"], folder),
                comparisons=data["comparisons"], attributes=data["attributes"],
                quota_per_pair=data["quota_per_pair"], rating_quota_per_clip=data["rating_quota_per_clip"],
                preference_trials=data["preference_trials"], rating_trials=data["rating_trials"],
                catch_rate=data["catch_rate"], screening=data["screening"], completion_code=data["completion_code"],
                screened_out_code=data["screened_out_code"], uploads_dir=folder, created_by=request.user)
        except HafmError as error:
            form.add_error(None, str(error))
        finally:
            if study is None:
                shutil.rmtree(folder, ignore_errors=True)
        if study is not None:
            services.dispatch_rendering(study.pk)  # a broker that is down leaves it `undispatched`
            messages.success(request, f"Study '{study.name}' saved: its {study.render_total} stimuli are "
                                      "rendered by a worker.")
            return redirect("listening:staff-detail", study.public_id)
    return render(request, "listening/staff/create.html", {"form": form, "naming": CLIP_NAMING})


@staff_member_required
def study_detail(request: HttpRequest, study_id) -> HttpResponse:
    study = selectors.study_by_public_id(study_id)
    if study.status in Study.RENDER_STATUSES:
        return render(request, "listening/staff/rendering.html", {"study": study})
    services.expire_idle_participants(study)
    listener_url = request.build_absolute_uri(reverse("listening:landing", args=[study.public_id]))
    return render(request, "listening/staff/detail.html", {
        "study": study, "progress": selectors.study_progress(study), "listener_url": listener_url,
        "prolific_url": f"{listener_url}?PROLIFIC_PID={{{{%PROLIFIC_PID%}}}}&STUDY_ID={{{{%STUDY_ID%}}}}"
                        f"&SESSION_ID={{{{%SESSION_ID%}}}}",
        "exports": exports.EXPORT_NAMES,
        "statuses": [(value, label) for value, label in Study.Status.choices if value in Study.STAFF_STATUSES],
    })


@staff_member_required
@require_POST
def study_render_again(request: HttpRequest, study_id) -> HttpResponse:
    """Send a study's rendering task again (the broker was down, the worker was lost, or it failed)."""
    study = selectors.study_by_public_id(study_id)
    try:
        sent = services.render_again(study)
    except HafmError as error:
        messages.error(request, str(error))
    else:
        if sent:
            messages.success(request, "Rendering sent to a worker again.")
    return redirect("listening:staff-detail", study.public_id)


@staff_member_required
@require_POST
def study_status(request: HttpRequest, study_id) -> HttpResponse:
    study = selectors.study_by_public_id(study_id)
    try:
        services.set_study_status(study, request.POST.get("status", ""))
    except HafmError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Study is now {study.get_status_display()}.")
    return redirect("listening:staff-detail", study.public_id)


@staff_member_required
def export_csv(request: HttpRequest, study_id, name: str) -> HttpResponse:
    study = selectors.study_by_public_id(study_id)
    if name not in exports.EXPORT_NAMES:
        raise Http404("No such export")
    response = HttpResponse(exports.csv_text(study, name), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
