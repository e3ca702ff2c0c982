"""Render a planned study's stimuli outside the request: a Celery task, with progress and recovery.

    plan_study (request: checks, no decoding)      -> Study `rendering`, sources in `render_spec`
    dispatch_rendering                             -> listening.render_study task on the queue
      broker down                                  -> `undispatched` with the reason ("Render again")
    render_study (worker)                          -> stimuli + items in one transaction, `open`
      a clip that cannot be rendered               -> `failed` with the reason (the task records it)

Nothing half-rendered reaches a listener: stimuli and items appear together, in the same
transaction that opens the study, and only a study that is `open` takes listeners. Each
attempt writes into its own folder; the first to commit wins, so a redelivered task (a killed
worker, acks_late), a "render again" or two workers at once never duplicate a stimulus, and
files of a lost attempt are removed.
"""

from __future__ import annotations

import logging
import secrets
import shutil
from pathlib import Path

from django.conf import settings
from django.db import transaction

from hafm_core.provenance import sha256_bytes, sha256_file
from hafm_core.reachability import redact
from listening import stimuli as render
from listening.exceptions import StudySetupError
from listening.models import Item, Stimulus, Study

log = logging.getLogger(__name__)

# Sending the task gives up within seconds when the broker does not answer (the study then
# waits `undispatched`), as `hafm benchmark run` does.
SEND_RETRIES = 2
SEND_TIMEOUT_S = 3.0
SEND_RETRY_POLICY = {"max_retries": SEND_RETRIES, "interval_start": 0, "interval_step": 1, "interval_max": 1}
TASK_NAME = "listening.render_study"


def render_study(study_id: int) -> int:
    """Render the stimuli of a `rendering` (or `undispatched`) study, create its quota items and
    open it; returns the number of stimuli made (0 when there was nothing to do).

    Safe to run twice or at once: a study no longer rendering is left as it is. Raises the
    rendering error (an AudioError, StimulusRefused, OSError) after removing this attempt's files;
    the caller records it (`fail_rendering`).
    """
    # A task that runs was dispatched after all: the study is rendering again.
    Study.objects.filter(pk=study_id, status=Study.Status.UNDISPATCHED).update(
        status=Study.Status.RENDERING, render_error="")
    study = Study.objects.filter(pk=study_id, status=Study.Status.RENDERING).first()
    if study is None:
        return 0  # rendered, failed or deleted: a redelivery does nothing
    attempt = Path(settings.MEDIA_ROOT) / study.media_dir / secrets.token_hex(8)
    try:
        made = _render(study, attempt)
        committed = made is not None and _commit(study, *made)
    except BaseException:
        shutil.rmtree(attempt, ignore_errors=True)
        raise
    if not committed:  # another attempt finished first, or the study went away
        shutil.rmtree(attempt, ignore_errors=True)
        return 0
    _remove_leftovers(study, attempt)
    return len(made[1])


def _render(study: Study, attempt: Path) -> tuple[render.RenderConfig, list[Stimulus]] | None:
    """Render every clip into `attempt` as unsaved Stimulus rows; None when the study stopped
    rendering meanwhile. Counts `rendered_clips` after each excerpt (the progress page)."""
    spec = study.render_spec
    by_excerpt: dict[str, dict[str, dict]] = spec["excerpts"]
    used = sorted({s for pair in study.comparisons for s in pair})
    catch_reference = spec["catch_reference"]
    config = _study_rendering(by_excerpt, used, render.RenderConfig(study.sample_rate_hz, study.target_lufs,
                                                                    spec["max_duration_s"]))
    rows: list[Stimulus] = []
    for excerpt, systems in sorted(by_excerpt.items()):
        vocal_path = systems[used[0]]["vocal_path"]
        vocal = render.read_stereo(vocal_path, study.sample_rate_hz)
        vocal_sha256 = sha256_file(vocal_path)
        accompaniments = {s: render.read_stereo(systems[s]["accompaniment_path"], study.sample_rate_hz) for s in used}
        clips = render.render_excerpt(vocal, accompaniments, config,
                                      catch_system=catch_reference if study.catch_rate > 0 else None,
                                      tempo_bpm=systems[catch_reference]["tempo_bpm"], excerpt=excerpt)
        for clip in clips:
            file_name, data = _write_clip(attempt, clip)
            rows.append(Stimulus(excerpt=excerpt, system=clip.system, variant=clip.variant,
                                 file_name=file_name, sha256=sha256_bytes(data), n_bytes=len(data),
                                 duration_s=clip.duration_s, loudness_lufs=clip.loudness_lufs,
                                 source_vocal=vocal_path, source_vocal_sha256=vocal_sha256,
                                 source_accompaniment=systems[clip.system]["accompaniment_path"]))
        if not Study.objects.filter(pk=study.pk, status=Study.Status.RENDERING).update(rendered_clips=len(rows)):
            return None
    return config, rows


def _study_rendering(by_excerpt: dict[str, dict[str, dict]], used: list[str],
                     config: render.RenderConfig) -> render.RenderConfig:
    """One rendering for every clip: a first pass reads each source once for its bandwidth and
    layout (and drops it: a study's audio need not fit in memory at once)."""
    paths = sorted({p for systems in by_excerpt.values() for s in used
                    for p in (systems[s]["vocal_path"], systems[s]["accompaniment_path"])})
    return render.study_rendering([render.read_source(p, config.sample_rate_hz) for p in paths], config)


def _write_clip(folder: Path, clip: render.RenderedClip) -> tuple[str, bytes]:
    data = render.wav_bytes_pcm16(clip.samples, clip.sample_rate_hz)
    path = folder / f"{secrets.token_hex(16)}.wav"
    render.write_atomic(path, data)
    return str(path.relative_to(Path(settings.MEDIA_ROOT))), data


def _commit(study: Study, config: render.RenderConfig, rows: list[Stimulus]) -> bool:
    """Stimuli, items and `open` in one transaction, only while the study is still rendering
    (the row lock makes a second attempt wait, then find it open and back off)."""
    with transaction.atomic():
        locked = Study.objects.select_for_update().filter(pk=study.pk, status=Study.Status.RENDERING).first()
        if locked is None:
            return False
        for row in rows:
            row.study = locked
        Stimulus.objects.bulk_create(rows)
        _create_items(locked, [(a, b) for a, b in locked.comparisons])
        Study.objects.filter(pk=study.pk).update(
            status=Study.Status.OPEN, bandwidth_hz=config.bandwidth_hz, rendered_clips=len(rows),
            channel_layout="dual-mono" if config.mono else "stereo", render_error="")
    return True


def _create_items(study: Study, pairs: list[tuple[str, str]]) -> None:
    clips = {(s.excerpt, s.system): s for s in study.stimuli.filter(variant="")}
    excerpts = sorted({excerpt for excerpt, _ in clips})
    items = [Item(study=study, kind=Item.Kind.PREFERENCE, excerpt=excerpt, stimulus_a=clips[excerpt, a],
                  stimulus_b=clips[excerpt, b], quota=study.quota_per_pair)
             for excerpt in excerpts for a, b in pairs]
    if study.attributes and study.rating_quota_per_clip > 0:
        used = sorted({s for pair in pairs for s in pair})
        items += [Item(study=study, kind=Item.Kind.RATING, excerpt=excerpt, stimulus_a=clips[excerpt, system],
                       quota=study.rating_quota_per_clip) for excerpt in excerpts for system in used]
    Item.objects.bulk_create(items)


def _remove_leftovers(study: Study, kept: Path) -> None:
    """After the winning commit: the uploaded sources and the folders of lost attempts go."""
    if study.render_spec.get("uploads_dir"):
        shutil.rmtree(study.render_spec["uploads_dir"], ignore_errors=True)
    for folder in kept.parent.iterdir():
        if folder.is_dir() and folder != kept:
            shutil.rmtree(folder, ignore_errors=True)


def fail_rendering(study_id: int, reason: str) -> None:
    """Record why a study's rendering failed; a study already rendered is left as it is."""
    Study.objects.filter(pk=study_id, status__in=(Study.Status.RENDERING, Study.Status.UNDISPATCHED)).update(
        status=Study.Status.FAILED, render_error=reason[:4000])


def dispatch_rendering(study_id: int) -> bool:
    """Send the study's rendering task; False (and the study `undispatched`, with the reason)
    when the broker does not take it. Call once `plan_study` has committed."""
    from listening.tasks import render_study as task

    try:
        _send(task, study_id)
    except Exception as error:  # noqa: BLE001 - kombu/redis/amqp raise transport-specific errors
        message = (f"the broker at {redact(task.app.conf.broker_url)} did not take the rendering task "
                   f"({type(error).__name__}: {' '.join(str(error).split())}); the study waits until "
                   "'Render again' sends it")
        log.warning(message)
        Study.objects.filter(pk=study_id, status=Study.Status.RENDERING).update(
            status=Study.Status.UNDISPATCHED, render_error=message[:4000])
        return False
    return True


def _send(task, study_id: int) -> None:
    app = task.app
    if app.conf.task_always_eager:  # tests and brokerless setups: the task runs here, now
        task.apply_async(args=[study_id])
        return
    with app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=SEND_RETRIES, interval_start=0, interval_step=1,
                                 interval_max=1, timeout=SEND_TIMEOUT_S)
        task.apply_async(args=[study_id], queue=settings.CELERY_TASK_DEFAULT_QUEUE, connection=broker,
                         retry_policy=SEND_RETRY_POLICY)


def render_again(study: Study) -> bool:
    """Send the rendering task again for a study still `rendering` (its worker lost), `undispatched`
    (the broker was down) or `failed` (after fixing what failed). A rendered study is refused."""
    updated = Study.objects.filter(pk=study.pk, status__in=Study.RENDER_STATUSES).update(
        status=Study.Status.RENDERING, render_error="", rendered_clips=0)
    if not updated:
        raise StudySetupError(f"study {study.name!r} is rendered; there is nothing to render again")
    sent = dispatch_rendering(study.pk)
    study.refresh_from_db()
    return sent
