"""`make demo`'s worker lives exactly as long as the demo: `evalsite.with_worker` (what the Makefile
runs) stops it when the job ends with an error, on SIGTERM, on Ctrl-C, and when it is itself
SIGKILLed. A short stand-in job replaces the demo; the worker is a real Celery worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from evalsite.with_worker import _alive
from tests.conftest import ROOT, WORKER_TEST_HANG_NET_S
from tests.progress import process_progress, wait_for_progress

# Waits on progress; the fixed limit is only a net for a hang.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(WORKER_TEST_HANG_NET_S)]

# A shell running a child (as `sh -c 'run_demo && runserver'` does); records both pids, then waits
# for a GO file and exits 3 (the "error" case), or until stopped.
JOB = ('sleep 600 & echo $! > "$1/child.pid"; echo $$ > "$1/job.pid"; '
       'while [ ! -f "$1/GO" ]; do sleep 0.2; done; exit 3')


@pytest.mark.parametrize("ending", ["error", "SIGTERM", "SIGINT", "SIGKILL"])
def test_the_worker_is_stopped_however_the_demo_ends(ending, tmp_path):
    pidfile, logfile = tmp_path / "celery-demo.pid", tmp_path / "celery-demo.log"
    env = {**os.environ, "HAFM_VAR_DIR": str(tmp_path / "var"), "HAFM_CELERY_QUEUE": f"demo-{ending}",
           "CELERY_BROKER_URL": f"sqla+sqlite:///{tmp_path}/broker.sqlite3"}
    env.pop("DATABASE_URL", None)
    wrapper = subprocess.Popen([sys.executable, "-m", "evalsite.with_worker", "--pidfile", str(pidfile),
                                "--logfile", str(logfile), "--", "sh", "-c", JOB, "job", str(tmp_path)],
                               cwd=ROOT, env=env, start_new_session=True)
    worker_pid = job_pid = child_pid = None
    try:
        ready = lambda: "ready." in (logfile.read_text() if logfile.exists() else "")  # noqa: E731
        wait_for_progress(lambda: ready() or wrapper.poll() is not None, process_progress(wrapper, logfile),
                          what="the demo's worker to be ready", details=lambda: _tail(logfile))
        assert wrapper.poll() is None, _tail(logfile)
        worker_pid = int(pidfile.read_text())
        wait_for_progress(lambda: (tmp_path / "job.pid").exists(), lambda: None, what="the job", stall_s=60)
        job_pid, child_pid = (int((tmp_path / f"{name}.pid").read_text()) for name in ("job", "child"))
        assert _alive(worker_pid) and _alive(job_pid) and _alive(child_pid)

        if ending == "error":
            (tmp_path / "GO").touch()
        else:
            os.kill(wrapper.pid, getattr(signal, ending))
        wait_for_progress(lambda: wrapper.poll() is not None, process_progress(wrapper, logfile),
                          what="the wrapper to exit", details=lambda: _tail(logfile))
        if ending == "SIGKILL":
            # No cleanup ran: the kernel tells the worker its parent died (SIGTERM).
            wait_for_progress(lambda: not _alive(worker_pid), lambda: Path(logfile).stat().st_size,
                              what="the orphaned worker to stop", details=lambda: _tail(logfile))
        else:
            expected = {"error": 3, "SIGTERM": 128 + signal.SIGTERM, "SIGINT": 128 + signal.SIGINT}[ending]
            assert wrapper.returncode == expected
            assert not pidfile.exists()
        assert not _alive(worker_pid), f"worker {worker_pid} still running after {ending}"
        if ending != "SIGKILL":
            assert not _alive(job_pid) and not _alive(child_pid)  # the job's own children too
    finally:  # nothing outlives the test, even when it fails
        if wrapper.poll() is None:
            os.killpg(wrapper.pid, signal.SIGKILL)
            wrapper.wait()
        if worker_pid is not None and _alive(worker_pid):
            os.killpg(worker_pid, signal.SIGKILL)
        for pid in (job_pid, child_pid):  # after a SIGKILL of the wrapper, the job's child is ours to end
            if pid is not None and _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(no worker log)"
