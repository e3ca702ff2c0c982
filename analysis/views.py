"""Staff dashboards of listening studies and FAD history. Views parse, call, render."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from analysis import dashboards
from analysis.report import render_report
from analysis.stats.study import AnalysisOptions
from analysis.stats.validation import AnalysisInputError
from listening import selectors


@staff_member_required
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "analysis/index.html", {"studies": selectors.studies_for_staff()})


@staff_member_required
def study_dashboard(request: HttpRequest, study_id) -> HttpResponse:
    study = selectors.study_by_public_id(study_id)
    context = {"study": study, "query": request.GET, "progress": dashboards.quota_progress(study)}
    try:
        rules = dashboards.rules_from_query(request.GET)
        page = dashboards.dashboard(study, rules)
    except AnalysisInputError as error:
        context["error"] = str(error)
        return render(request, "analysis/study.html", context, status=400)
    context.update(page)
    if page["analysis"] is not None:
        context["exclusions"] = page["analysis"].exclusions
    return render(request, "analysis/study.html", context)


@staff_member_required
def study_report(request: HttpRequest, study_id) -> HttpResponse:
    """The offline HTML report (plotly inlined) with the dashboard's exclusion filters."""
    study = selectors.study_by_public_id(study_id)
    try:
        rules = dashboards.rules_from_query(request.GET)
        analysis = dashboards.study_analysis(study, rules, AnalysisOptions())
    except AnalysisInputError as error:
        return HttpResponse(f"cannot analyse: {error}", status=400, content_type="text/plain")
    if analysis is None:
        return HttpResponse("no judgments yet", status=404, content_type="text/plain")
    response = HttpResponse(render_report(analysis, title=f"Listening study report: {study.name}"),
                            content_type="text/html; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="study-{study.public_id}-report.html"'
    return response


@staff_member_required
def fad_dashboard(request: HttpRequest) -> HttpResponse:
    history = dashboards.fad_history()
    context = {"history": history.astype(object).where(history.notna(), None).to_dict(orient="records")}
    if len(history):
        context["chart"] = dashboards.fad_chart(history)
    return render(request, "analysis/fad.html", context)
