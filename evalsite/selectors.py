"""Reads for the site's pages. Each returns what a template needs in few queries.

Runs hold up to tens of thousands of clips: progress is aggregated in SQL (GROUP BY on the
`(run, system, status)` index), never by iterating clips in Python or in a template.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Q, Sum
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from evalsite.models import BenchmarkRun, GeneratedClip, SystemResult
from hafm_core import constants
from hafm_core.provenance import code_version

N_FAILURES_SHOWN = 20
N_AUDIO_EXCERPTS = 3


def home_context(staff: bool = False) -> dict:
    """The latest finished run (its comparison page), recent runs, listening studies, dashboards.

    Study names are staff-only (they often name systems): other visitors get only open
    studies, for their listener titles and links.
    """
    from listening.models import Study

    latest = BenchmarkRun.objects.filter(status=BenchmarkRun.Status.DONE).select_related("checkpoint").first()
    recent = list(BenchmarkRun.objects.select_related("checkpoint", "dataset")[:10])
    studies = [{"study": study,
                "listener_url": first_url([("listening:landing", [study.public_id])]),
                "staff_url": first_url([("listening:staff-detail", [study.public_id]),
                                        ("admin:listening_study_change", [study.pk])]),
                "dashboard_url": first_url([("analysis:study", [study.public_id])])}
               for study in (Study.objects if staff else Study.objects.filter(status=Study.Status.OPEN))
               .order_by("-created_at")[:5]]
    return {"code_version": code_version(), "latest_done": latest, "recent_runs": recent, "studies": studies,
            "dashboards_url": first_url([("analysis:index", []), ("analysis:dashboard", [])]),
            "fad_dashboard_url": first_url([("analysis:fad", [])])}


def first_url(candidates: list[tuple[str, list]]) -> str | None:
    """The first of several URL names that the site defines (apps grow their pages separately)."""
    for name, args in candidates:
        try:
            return reverse(name, args=args)
        except NoReverseMatch:
            continue
    return None


@dataclass
class SystemProgress:
    system: str
    total: int = 0
    done: int = 0
    failed: int = 0
    pending: int = 0
    clip_seconds: float = 0.0

    @property
    def mean_clip_s(self) -> float | None:
        return self.clip_seconds / self.done if self.done else None

    @property
    def percent(self) -> float:
        return 100.0 * (self.done + self.failed) / self.total if self.total else 100.0

    def to_json(self) -> dict:
        return {"system": self.system, "total": self.total, "done": self.done, "failed": self.failed,
                "pending": self.pending, "percent": round(self.percent, 1),
                "mean_clip_s": self.mean_clip_s}


@dataclass
class RunProgress:
    run: BenchmarkRun
    systems: list[SystemProgress]
    failures: list[dict] = field(default_factory=list)
    eta_s: float | None = None
    measured: list[str] = field(default_factory=list)

    @property
    def totals(self) -> SystemProgress:
        total = SystemProgress("all")
        for item in self.systems:
            total.total += item.total
            total.done += item.done
            total.failed += item.failed
            total.pending += item.pending
            total.clip_seconds += item.clip_seconds
        return total

    def to_json(self) -> dict:
        run = self.run
        return {
            "id": str(run.id), "status": run.status, "phase": run.phase, "error": run.error,
            "active": run.is_active, "eta_s": self.eta_s,
            "started": run.started.isoformat() if run.started else None,
            "finished": run.finished.isoformat() if run.finished else None,
            "systems": [s.to_json() for s in self.systems], "totals": self.totals.to_json(),
            "measured": self.measured, "failures": self.failures,
        }


def run_progress(run: BenchmarkRun) -> RunProgress:
    """Counts per system and status, the latest failures with their reasons, and an ETA.

    Three queries whatever the number of clips. The ETA extrapolates the run's throughput
    since it started (clips finished per second of wall time, all workers together).
    """
    by_system = {system: SystemProgress(system) for system in run.systems}
    rows = (GeneratedClip.objects.filter(run=run).values("system", "status").order_by()
            .annotate(n=Count("id"), seconds=Sum("seconds")))
    for row in rows:
        item = by_system.setdefault(row["system"], SystemProgress(row["system"]))
        item.total += row["n"]
        setattr(item, row["status"], getattr(item, row["status"]) + row["n"])
        item.clip_seconds += row["seconds"] or 0.0
    failures = list(GeneratedClip.objects.filter(run=run, status=GeneratedClip.Status.FAILED)
                    .order_by("-finished").values("system", "excerpt__key", "error")[:N_FAILURES_SHOWN])
    progress = RunProgress(run, list(by_system.values()),
                           [{"system": f["system"], "excerpt": f["excerpt__key"], "error": f["error"]}
                            for f in failures])
    totals = progress.totals
    finished = totals.done + totals.failed
    if run.is_active and run.started and finished and totals.pending:
        elapsed = (timezone.now() - run.started).total_seconds()
        progress.eta_s = totals.pending * elapsed / finished
    progress.measured = list(SystemResult.objects.filter(run=run).values_list("system", flat=True))
    return progress


def run_list(limit: int = 50) -> list[BenchmarkRun]:
    return list(BenchmarkRun.objects.select_related("checkpoint", "dataset")[:limit])


def _ordered_results(run: BenchmarkRun) -> list[SystemResult]:
    results = {r.system: r for r in SystemResult.objects.filter(run=run)}
    return [results[s] for s in run.systems if s in results]


def fad_history(run: BenchmarkRun) -> list[dict]:
    """FAD per system of every finished run on the same dataset and embedder, oldest first:
    one point per (checkpoint run, system). One query."""
    rows = (SystemResult.objects.filter(run__dataset_id=run.dataset_id, run__embedder=run.embedder,
                                        run__status=BenchmarkRun.Status.DONE, fad__isnull=False)
            .select_related("run__checkpoint").order_by("run__created"))
    return [{"system": r.system, "fad": r.fad, "low": r.fad_low, "high": r.fad_high,
             "checkpoint": f"{r.run.checkpoint.name} ({r.run.checkpoint.content_hash[:8]})",
             "run": str(r.run_id), "created": r.run.created.isoformat()} for r in rows]


def audio_examples(run: BenchmarkRun, n_excerpts: int = N_AUDIO_EXCERPTS) -> list[dict]:
    """A few excerpts that every system generated: [{excerpt, vocal clip, {system: clip}}]. Two queries."""
    complete = (GeneratedClip.objects.filter(run=run).values("excerpt_id").order_by("excerpt__key")
                .annotate(n_done=Count("id", filter=Q(status=GeneratedClip.Status.DONE)))
                .filter(n_done=len(run.systems)).values_list("excerpt_id", flat=True)[:n_excerpts])
    clips = (GeneratedClip.objects.filter(run=run, excerpt_id__in=list(complete))
             .select_related("excerpt").order_by("excerpt__key"))
    examples: dict[str, dict] = {}
    for clip in clips:
        entry = examples.setdefault(clip.excerpt.key, {"excerpt": clip.excerpt, "clips": {}})
        entry["clips"][clip.system] = clip
    return [{"excerpt": e["excerpt"], "clips": [(s, e["clips"].get(s)) for s in run.systems]}
            for e in examples.values()]


def comparison(run: BenchmarkRun) -> dict:
    """Everything the comparison page shows: FAD per system with CIs, the paired relative
    improvement beside the paper's figures, fit metrics, history and audio examples."""
    three_vs_two = run.results.get("three_vs_two", {})
    results = _ordered_results(run)
    return {
        "run": run,
        "results": results,
        "three_vs_two": three_vs_two,
        "improvement": _percent(three_vs_two.get("relative_improvement")),
        "paper": {"three_stage": constants.PAPER_FAD_THREE_STAGE, "two_stage": constants.PAPER_FAD_TWO_STAGE,
                  "relative_improvement_pct": 100 * constants.PAPER_RELATIVE_IMPROVEMENT},
        "history": fad_history(run),
        "examples": audio_examples(run),
        "fit_metrics": FIT_METRICS_SHOWN,
        "fit_rows": fit_rows(results),
    }


def _percent(interval: dict | None) -> dict | None:
    if not interval:
        return None
    return {**interval, **{f"{k}_pct": 100 * interval[k] for k in ("estimate", "low", "high")}}


FIT_METRICS_SHOWN = ("fit_score", "rhythm_score", "harmony_score", "beat_f_measure", "chord_tone_ratio")


def fit_rows(results: list[SystemResult]) -> list[dict]:
    """Per system: (mean, CI low, CI high) of the fit metrics shown, with the excerpt counts and
    the failure rate (share of excerpts not measured; they count as the worst score in the mean)."""
    rows = []
    for result in results:
        metrics = result.fit.get("metrics", {}) if result.fit else {}
        n_ok = result.fit.get("n_ok", 0) if result.fit else 0
        n_excerpts = result.fit.get("n_excerpts", 0) if result.fit else 0
        rows.append({"system": result.system, "n_ok": n_ok, "n_excerpts": n_excerpts,
                     "failure_rate": (n_excerpts - n_ok) / n_excerpts if n_excerpts else None,
                     "statuses": result.fit.get("statuses", {}) if result.fit else {},
                     "values": [metrics.get(name, {}) for name in FIT_METRICS_SHOWN]})
    return rows
