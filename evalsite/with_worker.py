"""Run a command with a Celery worker beside it, and stop the worker whenever the command ends.

`make demo` runs the demo job and then the site this way:

    python -m evalsite.with_worker --pidfile var/celery-demo.pid --logfile var/celery-demo.log \\
        -- sh -c 'python manage.py run_demo && exec python manage.py runserver ...'

The worker is stopped on every way out: the command finishing or failing (its exit code is
returned), Ctrl-C (SIGINT), SIGTERM or SIGHUP (forwarded to the command's process group first),
and the death
of whoever started us (Linux: the kernel sends us SIGTERM when our parent dies, and sends
the worker SIGTERM when we die, even by SIGKILL). A worker left by an earlier run that was
killed before it could clean up (its pid in `--pidfile`) is stopped first.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

STOP_GRACE_S = 10.0  # a warm shutdown finishes the task in hand; after this the worker is killed
_PR_SET_PDEATHSIG = 1


class _Stop(Exception):
    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _die_with_parent() -> None:
    """Linux: receive SIGTERM when the parent process exits (no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is gone for every purpose but the parent's wait.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def stop_process_group(pid: int, grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM the process group led by `pid`, then SIGKILL what is left after `grace_s`."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while _alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _stop_leftover(pidfile: Path) -> None:
    """A worker an earlier run left behind (that run was SIGKILLed before its cleanup)."""
    try:
        pid = int(pidfile.read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except (OSError, ValueError):
        pidfile.unlink(missing_ok=True)
        return
    if b"celery" in command and b"worker" in command:
        print(f"==> stopping the Celery worker an earlier demo left running (pid {pid})", flush=True)
        stop_process_group(pid)
    pidfile.unlink(missing_ok=True)


def start_worker(logfile: Path, extra: list[str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "evalsite", "worker", "--pool", "solo",
               "--concurrency", "1", "--loglevel", "INFO", "--logfile", str(logfile), *extra]
    # Its own session: a terminal's Ctrl-C reaches it only through us, in order.
    return subprocess.Popen(command, start_new_session=True, preexec_fn=_die_with_parent,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run(command: list[str], pidfile: Path, logfile: Path, worker_args: list[str]) -> int:
    _die_with_parent()
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    _stop_leftover(pidfile)

    def stop(signum, frame):
        raise _Stop(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, stop)
    worker = job = None
    try:
        print(f"==> starting a Celery worker (log: {logfile})", flush=True)
        worker = start_worker(logfile, worker_args)
        pidfile.write_text(f"{worker.pid}\n")
        # Its own process group, so a signal reaches the whole command (a shell and what it
        # runs, e.g. run_demo then runserver), not only the shell.
        job = subprocess.Popen(command, start_new_session=True, preexec_fn=_die_with_parent)
        return job.wait()
    except _Stop as stop_signal:
        if job is not None and job.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(job.pid, stop_signal.signum)
            try:
                job.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                pass
        return 128 + stop_signal.signum
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # nothing interrupts the cleanup
        if job is not None:
            stop_process_group(job.pid, grace_s=1.0)  # whatever the command left running
        if worker is not None:
            print(f"==> stopping the Celery worker (pid {worker.pid})", flush=True)
            stop_process_group(worker.pid)
        pidfile.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evalsite.with_worker", description=__doc__.splitlines()[0])
    parser.add_argument("--pidfile", type=Path, required=True, help="where the worker's pid is kept while it runs")
    parser.add_argument("--logfile", type=Path, required=True, help="the worker's log")
    parser.add_argument("--worker-arg", action="append", default=[], help="extra `celery worker` argument")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    return run(command, args.pidfile.resolve(), args.logfile.resolve(), args.worker_arg)


if __name__ == "__main__":
    sys.exit(main())
