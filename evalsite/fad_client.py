"""`hafm fad --distributed`: start a FAD job on the Celery workers and wait for it.

Imported by `hafm_core.cli.fad` only when `--distributed` is given, so `hafm_core` itself
never imports Django. The broker is `CELERY_BROKER_URL`, the database `DATABASE_URL`.
"""

from __future__ import annotations

import os
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
django.setup()

from django.core.exceptions import ValidationError  # noqa: E402

from evalsite.models import FadResult  # noqa: E402
from evalsite.services import fad as fad_services  # noqa: E402
from evalsite.services.connectivity import require_services  # noqa: E402
from hafm_core.errors import HafmError  # noqa: E402

POLL_S = 0.5


class DistributedFadError(HafmError):
    """The job failed on a worker, or no worker finished it in time."""


def run_and_wait(background: str, evaluation: str, embedder: str, protocol: str | None, *,
                 with_ci: bool, with_fad_inf: bool, seed: int, shard_files: int, timeout_s: float,
                 progress_bar, stall_s: float | None = None) -> dict:
    """The job's report (as `hafm fad --json`), showing files embedded on `progress_bar(total, what)`."""
    require_services()  # database or broker down: one line naming it, exit 2 (before any job row)
    result = fad_services.start_fad(background, evaluation, embedder, protocol, with_ci=with_ci,
                                    with_fad_inf=with_fad_inf, seed=seed, shard_files=shard_files,
                                    send=False)
    _dispatch(result.id)
    return wait(result.id, timeout_s, progress_bar, stall_s)


def resume_and_wait(job_id: str, timeout_s: float, progress_bar, stall_s: float | None = None) -> dict:
    """Re-send the shards of job `job_id` that are not done (lost or never taken), then wait."""
    try:
        result = FadResult.objects.get(id=job_id)
    except (FadResult.DoesNotExist, ValueError, ValidationError):
        raise DistributedFadError(f"no FAD job {job_id!r} (see the FAD results page for job ids)") from None
    if result.status == FadResult.Status.DONE:
        return result.report
    if result.status == FadResult.Status.FAILED:
        raise DistributedFadError(f"FAD job {result.id} failed: {result.error}; start a new job")
    _dispatch(result.id)
    return wait(result.id, timeout_s, progress_bar, stall_s)


def _dispatch(job_id) -> None:
    """Send the job's pending shards; a broker that does not take them leaves the job resumable."""
    try:
        fad_services.send_pending_shards(job_id)
    except Exception as error:  # kombu/amqp/redis connection errors: the broker refused the tasks
        fad_services.mark_undispatched(job_id, f"{type(error).__name__}: {error}")
        raise DistributedFadError(
            f"the broker did not take the tasks of FAD job {job_id} ({type(error).__name__}: {error}); "
            f"the job is saved: once the broker is up, run `hafm fad --resume {job_id}`") from None


def workers_on(queue: str, broker_url: str | None = None, timeout_s: float = 5.0, tries: int = 2) -> list[str]:
    """Names of the live workers consuming `queue` (a broadcast `active_queues` over the broker).

    A solo-pool worker answers between tasks only, so a worker busy with a long shard can be
    missed: the caller says so.
    """
    from celery import Celery

    from evalsite.celery import app

    # The broadcast goes through the app's producer pool, i.e. its default broker: for another
    # broker, a throwaway app bound to it (same control exchange) asks the question.
    if broker_url is not None and broker_url != app.conf.broker_url:
        app = Celery("hafm-fad-client", broker=broker_url, set_as_current=False,
                     control_exchange=app.conf.control_exchange)
    for _ in range(tries):
        replies = app.control.inspect(timeout=timeout_s).active_queues() or {}
        names = sorted(name for name, queues in replies.items() if any(q.get("name") == queue for q in queues))
        if names:
            return names
    return []


def diagnose(result: FadResult, done: int, total: int, stalled_s: float, broker_url: str | None = None) -> str:
    """Why a job is not finishing: no worker on its queue, or workers there but no progress."""
    workers = workers_on(result.queue, broker_url)
    where = f"FAD job {result.id}: {done}/{total} files embedded, status {result.status}"
    if not workers:
        return (f"{where}; no worker is consuming queue {result.queue!r} (none answered; a worker busy "
                f"with a long shard answers only between tasks). Start one with: celery -A evalsite "
                f"worker --pool solo --concurrency 1 -Q {result.queue}, then `hafm fad --resume {result.id}`")
    return (f"{where}; worker(s) {', '.join(workers)} consume queue {result.queue!r} but the job made no "
            f"progress for {stalled_s:.0f} s: a shard was lost or is waiting for redelivery after the "
            f"broker's visibility timeout. Re-send it with `hafm fad --resume {result.id}`")


def wait(job_id, timeout_s: float, progress_bar, stall_s: float | None = None,
         broker_url: str | None = None) -> dict:
    """Poll the job until done; on timeout (or no progress for `stall_s`), say why."""
    stall_s = timeout_s if stall_s is None else stall_s
    started = last_change = time.monotonic()
    result, done, total = fad_services.progress(job_id)
    last_done = done
    with progress_bar(total, f"FAD job {result.id} on queue {result.queue}") as bar:
        while True:
            result, done, _ = fad_services.progress(job_id)
            bar.update(done - bar.n)
            now = time.monotonic()
            if done != last_done:
                last_done, last_change = done, now
            if result.status == FadResult.Status.DONE:
                return result.report
            if result.status == FadResult.Status.FAILED:
                raise DistributedFadError(f"FAD job {result.id} failed: {result.error}")
            if now - started > timeout_s or now - last_change > stall_s:
                raise DistributedFadError(diagnose(result, done, total, now - last_change, broker_url))
            time.sleep(POLL_S)
