"""The test suite's wait helper: slow but moving work passes, work that stops moving fails."""

import subprocess
import sys

import pytest

from tests.progress import Stalled, run_until_exit, wait_for_progress


def test_slow_work_that_keeps_moving_is_waited_for_past_the_stall_time():
    counter = {"n": 0}

    def step():
        counter["n"] += 1
        return counter["n"]

    # 40 polls of 10 ms each outlast the 50 ms stall time: progress, not a total, decides.
    wait_for_progress(lambda: counter["n"] >= 40, step, what="the counter", stall_s=0.05, poll_s=0.01)
    assert counter["n"] >= 40


def test_work_that_stops_moving_fails_with_where_it_stopped():
    with pytest.raises(Stalled, match=r"the run: no progress for 0.1 s \(stuck at \('measure', 3\)\)\nlog tail"):
        wait_for_progress(lambda: False, lambda: ("measure", 3), what="the run", stall_s=0.1, poll_s=0.01,
                          details=lambda: "log tail")


def test_a_silent_idle_subprocess_is_killed_and_reported():
    with pytest.raises(Stalled):
        run_until_exit([sys.executable, "-c", "import time; time.sleep(60)"], what="a sleeper", stall_s=1.0)
    done = run_until_exit([sys.executable, "-c", "print('hello')"], what="a printer", stall_s=30)
    assert done.returncode == 0 and done.stdout == "hello\n"
    assert isinstance(done, subprocess.CompletedProcess)
