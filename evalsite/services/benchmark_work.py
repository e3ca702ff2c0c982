"""What a benchmark's Celery tasks do, step by step. Every step is idempotent.

    generate_clips(run, clip ids)  a clip already done is skipped; clips of one system are
                                   generated in one batched call and committed as soon as
                                   their files are written (atomically)
    advance(run)                   no clip pending -> phase MEASURE, one measure task per system
    measure_system(run, system)    FAD against the real accompaniments with a jackknife CI,
                                   fit metrics per clip (those not measured yet)
    compare_systems(run)           all systems measured -> paired bootstrap of three-stage
                                   against two-stage, run DONE

Phases advance with conditional UPDATEs (`filter(phase=old).update(phase=new)`): among
workers finishing at the same moment exactly one sends the next step. `resume_run` sends
the current step again when its tasks were lost with a worker.

A worker killed inside a step (SIGKILL, out of memory, a crash in native code) cannot record
anything; its unacknowledged task is delivered again. Each start of a step is counted
(`claim_step`): a step started `MAX_STEP_ATTEMPTS` times without finishing fails the run with
that reason instead of crashing workers forever.
"""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from evalsite.models import BenchmarkRun, GeneratedClip, SystemResult
from hafm_core.errors import HafmError
from hafm_core.provenance import code_version

log = logging.getLogger(__name__)

CANDIDATE, BASELINE = "three-stage", "two-stage"
N_BOOTSTRAP = 1000
MAX_STEP_ATTEMPTS = 3


def run_media_dir(run: BenchmarkRun) -> Path:
    return Path(settings.MEDIA_ROOT) / "runs" / str(run.id)


def _live(run_id) -> BenchmarkRun | None:
    run = BenchmarkRun.objects.select_related("checkpoint").get(id=run_id)
    return run if run.is_active else None


def claim_step(run_id, step: str, what: str) -> bool:
    """Count one more start of `step`; False (and the run failed, with the reason) once the step
    has been started `MAX_STEP_ATTEMPTS` times already: each earlier start died with its worker."""
    with transaction.atomic():
        run = BenchmarkRun.objects.select_for_update().get(id=run_id)
        attempts = int(run.step_attempts.get(step, 0))
        if attempts >= MAX_STEP_ATTEMPTS:
            fail_run(run_id, f"{what}: started {attempts} times and never finished; the worker running it died "
                             "each time (killed, out of memory, or a crash in native code: see the worker log). "
                             f"Fix the cause, then `hafm benchmark resume {run_id}`")
            return False
        run.step_attempts[step] = attempts + 1
        BenchmarkRun.objects.filter(id=run_id).update(step_attempts=run.step_attempts)
    return True


def mark_started(run_id) -> None:
    BenchmarkRun.objects.filter(id=run_id, status=BenchmarkRun.Status.PENDING).update(
        status=BenchmarkRun.Status.RUNNING, started=timezone.now())


def generate_clips(run_id, clip_ids: list[str]) -> int:
    """Generate the clips among `clip_ids` that are still pending; returns how many were made.

    Clips of one system and vocal length are made in one batched call of the system; each
    batch's clips are committed as soon as their files are written (atomically). A clip whose
    vocal cannot be read, or a batch the system refuses, is failed with the reason. The run's
    status is read again before each batch, so a cancel takes effect between batches.
    """
    from evalsite.services import generation

    run = _live(run_id)
    if run is None:
        return 0
    mark_started(run.id)
    clips = list(GeneratedClip.objects.select_related("excerpt")
                 .filter(run=run, id__in=clip_ids, status=GeneratedClip.Status.PENDING).order_by("excerpt__key"))
    if not clips or not claim_step(run.id, f"generate:{min(clip_ids)}",
                                   f"generating clips {', '.join(sorted(clip_ids))}"):
        return 0
    vocals = {}
    for clip in clips:
        try:
            vocals[clip.id] = generation.read_vocal(clip)
        except HafmError as error:
            _fail_clip(clip.id, error)
    made = 0
    for batch in generation.group_clips([c for c in clips if c.id in vocals], vocals):
        if not BenchmarkRun.objects.filter(id=run.id, status__in=BenchmarkRun.ACTIVE).exists():
            break
        started = time.perf_counter()
        try:
            outputs = generation.generate_batch(run, batch, run_media_dir(run) / batch.system)
        except HafmError as error:
            for clip in batch.clips:
                _fail_clip(clip.id, error)
            continue
        seconds = (time.perf_counter() - started) / len(batch.clips)  # each clip's share of the batch
        for clip, output in zip(batch.clips, outputs):
            made += GeneratedClip.objects.filter(id=clip.id, status=GeneratedClip.Status.PENDING).update(
                status=GeneratedClip.Status.DONE, accompaniment_path=str(output.accompaniment_path),
                mix_path=str(output.mix_path), sidecar=output.sidecar, seconds=seconds,
                finished=timezone.now(), error="")
    return made


def _fail_clip(clip_id, error: HafmError) -> None:
    GeneratedClip.objects.filter(id=clip_id).update(
        status=GeneratedClip.Status.FAILED, error=str(error)[:2000], finished=timezone.now())


def fail_clips(run_id, clip_ids: list[str], reason: str) -> None:
    """Clips a task could not finish because of an unexpected error: failed, with the reason."""
    GeneratedClip.objects.filter(run_id=run_id, id__in=clip_ids, status=GeneratedClip.Status.PENDING).update(
        status=GeneratedClip.Status.FAILED, error=reason[:2000], finished=timezone.now())


def fail_run(run_id, reason: str) -> None:
    BenchmarkRun.objects.filter(id=run_id, status__in=BenchmarkRun.ACTIVE).update(
        status=BenchmarkRun.Status.FAILED, error=reason[:4000], finished=timezone.now())


def advance(run_id, resend: bool = False, raise_error: bool = False) -> int:
    """Send the next step once nothing of the current one is missing; returns tasks sent.

    resend: also send the current step's tasks again (after a crash lost them). A broker that
    does not take them leaves the run `undispatched` (raised with `raise_error`).
    """
    from evalsite.services.benchmarks import send_for_run

    run = _live(run_id)
    if run is None or GeneratedClip.objects.filter(run=run, status=GeneratedClip.Status.PENDING).exists():
        return 0
    runs = BenchmarkRun.objects.filter(id=run.id, status__in=BenchmarkRun.ACTIVE)
    moved = runs.filter(phase=BenchmarkRun.Phase.GENERATE).update(phase=BenchmarkRun.Phase.MEASURE)
    if moved or (resend and run.phase == BenchmarkRun.Phase.MEASURE):
        measured = set(SystemResult.objects.filter(run=run).values_list("system", flat=True))
        missing = [s for s in run.systems if s not in measured]
        if missing:
            return send_for_run(run, "evalsite.benchmarks.measure_system", [(str(run.id), s) for s in missing],
                                raise_error=raise_error)
    return _after_measure(run, resend, raise_error)


def _after_measure(run: BenchmarkRun, resend: bool, raise_error: bool) -> int:
    from evalsite.services.benchmarks import send_for_run

    if SystemResult.objects.filter(run=run).count() < len(run.systems):
        return 0
    runs = BenchmarkRun.objects.filter(id=run.id, status__in=BenchmarkRun.ACTIVE)
    moved = runs.filter(phase=BenchmarkRun.Phase.MEASURE).update(phase=BenchmarkRun.Phase.COMPARE)
    if moved or (resend and runs.filter(phase=BenchmarkRun.Phase.COMPARE).exists()):
        return send_for_run(run, "evalsite.benchmarks.compare_systems", [(str(run.id),)], raise_error=raise_error)
    return 0


@functools.lru_cache(maxsize=2)
def _embedder(name: str):
    from hafm_core.fad.embedders import load_embedder

    return load_embedder(name)


def _embeddings(embedder, named_paths: list[tuple[str, str]]) -> dict[str, np.ndarray]:
    """{excerpt key: float32 [T, D]} through the FAD engine's content-keyed cache: the
    comparison step and later runs on the same audio do not embed again."""
    from hafm_core.fad.cache import EmbeddingCache
    from hafm_core.fad.compute import embed_files

    files = embed_files([path for _, path in named_paths], embedder, EmbeddingCache())
    return {name: f.embeddings for (name, _), f in zip(named_paths, files)}


def background_embeddings(run: BenchmarkRun, embedder) -> dict[str, np.ndarray]:
    """The real accompaniments of the run's excerpts: the reference every system is measured to."""
    rows = (GeneratedClip.objects.filter(run=run, system=run.systems[0]).order_by("excerpt__key")
            .values_list("excerpt__key", "excerpt__accompaniment_path"))
    return _embeddings(embedder, list(rows))


def system_embeddings(run: BenchmarkRun, system: str, embedder) -> dict[str, np.ndarray]:
    rows = (GeneratedClip.objects.filter(run=run, system=system, status=GeneratedClip.Status.DONE)
            .order_by("excerpt__key").values_list("excerpt__key", "accompaniment_path"))
    return _embeddings(embedder, list(rows))


def _stats(songs: list[np.ndarray], dim: int):
    from hafm_core.fad.stats import EmbeddingStats, merge_all

    return merge_all([EmbeddingStats.from_embeddings(e) for e in songs]) if songs else EmbeddingStats.empty(dim)


def measure_system(run_id, system: str) -> SystemResult | None:
    """FAD of one system's clips against the background with a jackknife CI, and fit metrics."""
    from hafm_core.fad.compute import report_from_stats

    run = _live(run_id)
    if run is None:
        return None
    existing = SystemResult.objects.filter(run=run, system=system).first()
    if existing is not None:
        advance(run.id)
        return existing
    if not claim_step(run.id, f"measure:{system}", f"measuring {system}"):
        return None
    started = time.perf_counter()
    embedder = _embedder(run.embedder)
    fields = {"embedder": run.embedder, "protocol": embedder.protocol,
              "provenance": {**embedder.describe(), "code_version": code_version()}}
    try:
        background = list(background_embeddings(run, embedder).values())
        evaluation = list(system_embeddings(run, system, embedder).values())
        report = report_from_stats(
            _stats(background, embedder.dim), _stats(evaluation, embedder.dim),
            embedder_info=embedder.describe(), n_background=len(background), n_eval=len(evaluation),
            background_path=f"run {run.id}: real accompaniments", eval_path=f"run {run.id}: {system}",
            background_songs=background, eval_songs=evaluation, seed=run.seed)
        fields.update(fad=report.fad, fad_low=report.ci.low, fad_high=report.ci.high,
                      fad_method=report.ci.method, n_eval=report.n_eval, n_background=report.n_background)
        fields["provenance"] = report.to_json()
    except HafmError as error:
        fields.update(error=str(error)[:2000])
    fields["fit"] = measure_fit(run, system)
    fields["provenance"]["seconds"] = time.perf_counter() - started
    with transaction.atomic():
        result, _ = SystemResult.objects.get_or_create(run=run, system=system, defaults=fields)
    advance(run.id)
    return result


def measure_fit(run: BenchmarkRun, system: str) -> dict:
    """Fit metrics of each done clip not measured yet (stored per clip), then their summary.

    Every system of a run is measured against the same vocals: the vocal pitch (most of the
    fit's CPU time) is computed by the first system's task and read from the on-disk
    `PitchCache` by the others, whichever worker runs them.
    """
    from hafm_core.fit import FitResult, fit_path_pairs, summarize
    from hafm_core.fit.pitch_cache import PitchCache

    clips = GeneratedClip.objects.filter(run=run, system=system, status=GeneratedClip.Status.DONE)
    todo = list(clips.filter(fit={}).select_related("excerpt").order_by("excerpt__key"))
    if todo:
        results = fit_path_pairs([(c.excerpt.vocal_path, c.accompaniment_path) for c in todo],
                                 names=[c.excerpt.key for c in todo], pitch_cache=PitchCache())
        for clip, result in zip(todo, results):
            GeneratedClip.objects.filter(id=clip.id).update(fit=result.to_dict())
    measured = [FitResult(**fit) for fit in clips.values_list("fit", flat=True) if fit]
    return summarize(measured, seed=run.seed) if measured else {}


def compare_systems(run_id) -> dict | None:
    """Paired bootstrap of three-stage against two-stage over the excerpts both generated."""
    from hafm_core.fad.songs import SongMoments
    from hafm_core.fad.uncertainty import paired_bootstrap, paired_moments

    run = _live(run_id)
    if run is None or not claim_step(run.id, "compare", "comparing systems"):
        return None
    results: dict = {}
    if CANDIDATE in run.systems and BASELINE in run.systems:
        embedder = _embedder(run.embedder)
        candidate = system_embeddings(run, CANDIDATE, embedder)
        baseline = system_embeddings(run, BASELINE, embedder)
        shared = sorted(candidate.keys() & baseline.keys())
        try:
            moments_c, moments_b, names = paired_moments({k: candidate[k] for k in shared},
                                                         {k: baseline[k] for k in shared},
                                                         (CANDIDATE, BASELINE))
            background = SongMoments.from_songs(list(background_embeddings(run, embedder).values()),
                                                 "background")
            comparison = paired_bootstrap(background, moments_c, moments_b, N_BOOTSTRAP, seed=run.seed)
            change = comparison.relative_change
            results["three_vs_two"] = {
                **comparison.to_json(),
                # Improvement = 1 - FAD3/FAD2 (the paper's 18.6%); its CI flips the change's.
                "relative_improvement": {"estimate": -change.estimate, "low": -change.high,
                                         "high": -change.low, "confidence": change.confidence,
                                         "method": change.method},
                "excerpts": names,
            }
        except HafmError as error:
            results["three_vs_two"] = {"error": str(error)}
    finish(run, results)
    return results


def finish(run: BenchmarkRun, results: dict) -> None:
    now = timezone.now()
    clip_seconds = dict(GeneratedClip.objects.filter(run=run).values("system").order_by("system")
                        .annotate(total=Sum("seconds")).values_list("system", "total"))
    timings = {"generate_s": clip_seconds,
               "wall_s": (now - run.started).total_seconds() if run.started else None}
    BenchmarkRun.objects.filter(id=run.id, status__in=BenchmarkRun.ACTIVE, phase=BenchmarkRun.Phase.COMPARE).update(
        status=BenchmarkRun.Status.DONE, phase=BenchmarkRun.Phase.FINISHED, results=results, finished=now,
        timings=timings)
