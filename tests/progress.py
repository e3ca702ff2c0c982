"""Waiting on real workers and subprocesses by their PROGRESS, never by a fixed total.

A busy machine (two cores shared by many processes) makes every step slower, so a fixed
wall-clock budget fails tests that are merely slow. These helpers fail only when nothing
moves: `progress()` returns a snapshot (clips done, phase, bytes of log, CPU seconds...) and
the wait fails when the snapshot stays the same for `stall_s` seconds.

    wait_for_progress(lambda: run_done(), lambda: (phase, n_done), what="the run to finish")

`STALL_S` (120 s, `HAFM_TEST_STALL_S` overrides it) is the stated time without progress.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Hashable
from pathlib import Path

STALL_S = float(os.environ.get("HAFM_TEST_STALL_S", "120"))
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class Stalled(AssertionError):
    """Nothing moved for the stated time."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process and its waited-for children (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0
    # fields[0] is field 3 (state): utime, stime, cutime, cstime are fields 14-17.
    return sum(int(value) for value in fields[11:15]) / _CLOCK_TICKS


def wait_for_progress(done: Callable[[], bool], progress: Callable[[], Hashable], *, what: str,
                      stall_s: float = STALL_S, poll_s: float = 0.2,
                      details: Callable[[], str] = lambda: "") -> None:
    """Poll until `done()`; fail once `progress()` has returned the same value for `stall_s` s.

    `details()` is appended to the failure (e.g. the tail of a worker log).
    """
    last, last_change = progress(), time.monotonic()
    while not done():
        now = time.monotonic()
        current = progress()
        if current != last:
            last, last_change = current, now
        elif now - last_change > stall_s:
            raise Stalled(f"waiting for {what}: no progress for {stall_s:g} s (stuck at {current!r})"
                          f"\n{details()}")
        time.sleep(poll_s)


def busy_seconds(*processes: subprocess.Popen) -> tuple[int, ...]:
    """Whole CPU seconds each process has used: a worker inside one long step (a first fit
    compiling numba on a loaded machine) still moves; a hung or idle one does not."""
    return tuple(int(cpu_seconds(p.pid)) for p in processes)


def process_progress(process: subprocess.Popen, *files: Path) -> Callable[[], tuple]:
    """A subprocess's progress: the sizes of the files it writes and the CPU time it uses."""
    def snapshot() -> tuple:
        sizes = tuple(f.stat().st_size if f.exists() else 0 for f in files)
        return sizes, round(cpu_seconds(process.pid), 1)
    return snapshot


def run_until_exit(command: list[str], *, what: str, stall_s: float = STALL_S, **popen) -> subprocess.CompletedProcess:
    """`subprocess.run` with progress instead of a timeout: fails (and kills the command) when its
    output and CPU time stay still for `stall_s`. stdout and stderr are captured as text."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        out_path, err_path = Path(folder) / "stdout", Path(folder) / "stderr"
        with open(out_path, "w") as out, open(err_path, "w") as err:
            process = subprocess.Popen(command, stdout=out, stderr=err, **popen)
            try:
                wait_for_progress(lambda: process.poll() is not None,
                                  process_progress(process, out_path, err_path), what=what,
                                  stall_s=stall_s, details=lambda: err_path.read_text()[-3000:])
            except Stalled:
                process.kill()
                process.wait()
                raise
        return subprocess.CompletedProcess(command, process.returncode, out_path.read_text(),
                                           err_path.read_text())
