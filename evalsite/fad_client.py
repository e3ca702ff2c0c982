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

from evalsite.models import FadResult  # noqa: E402
from evalsite.services import fad as fad_services  # noqa: E402
from evalsite.services.connectivity import require_services  # noqa: E402
from hafm_core.errors import HafmError  # noqa: E402

POLL_S = 0.5


class DistributedFadError(HafmError):
    """The job failed on a worker, or no worker finished it in time."""


def run_and_wait(background: str, evaluation: str, embedder: str, protocol: str | None, *,
                 with_ci: bool, with_fad_inf: bool, seed: int, shard_files: int, timeout_s: float,
                 progress_bar) -> dict:
    """The job's report (as `hafm fad --json`), showing files embedded on `progress_bar(total, what)`."""
    require_services()  # database or broker down: one line naming it, exit 2 (before any job row)
    result = fad_services.start_fad(background, evaluation, embedder, protocol, with_ci=with_ci,
                                    with_fad_inf=with_fad_inf, seed=seed, shard_files=shard_files)
    deadline = time.monotonic() + timeout_s
    _, done, total = fad_services.progress(result.id)
    with progress_bar(total, f"FAD job {result.id} on queue {result.queue}") as bar:
        while True:
            result, done, _ = fad_services.progress(result.id)
            bar.update(done - bar.n)
            if result.status == FadResult.Status.DONE:
                return result.report
            if result.status == FadResult.Status.FAILED:
                raise DistributedFadError(f"FAD job {result.id} failed: {result.error}")
            if time.monotonic() > deadline:
                raise DistributedFadError(
                    f"FAD job {result.id} not finished after {timeout_s:g} s ({done}/{total} files embedded, "
                    f"status {result.status}); is a worker consuming queue {result.queue!r}? "
                    "start one with: celery -A evalsite worker --pool solo --concurrency 1"
                )
            time.sleep(POLL_S)
