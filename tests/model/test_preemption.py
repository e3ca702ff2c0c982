"""Preemption-safe training and checkpoints that cannot lie, tried as a cluster would break them.

A training subprocess is killed with SIGKILL (a crash, an OOM kill) or sent SIGTERM (a
scheduler's preemption notice) part-way; `--resume` must then continue bit for bit, as if the
run had never stopped. Checkpoint files are emptied, truncated and bit-flipped.
"""

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hafm_core.checkpoint import read_checkpoint, save_checkpoint
from hafm_core.cli import main
from hafm_core.errors import CheckpointError

ROOT = Path(__file__).resolve().parents[2]
STEPS = 150
ARGS = ["--stage", "semantic", "--preset", "tiny", "--steps", str(STEPS), "--batch-size", "4",
        "--warmup", "5", "--eval-every", "50", "--save-every", "5", "--lr", "1e-3", "--device", "cpu",
        "--json"]


def _start(token_cache, out: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    code = ("import torch, sys; torch.set_num_threads(1); from hafm_core.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    return subprocess.Popen([sys.executable, "-c", code, "train", "--tokens", str(token_cache),
                             "--out", str(out), *ARGS],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _log_steps(out: Path) -> list[int]:
    path = out / "ar_semantic" / "log.jsonl"
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    steps = []
    for line in lines:
        try:
            steps.append(json.loads(line)["step"])
        except (json.JSONDecodeError, KeyError):  # a line being written right now
            pass
    return steps


def _wait_until_past_a_save(process: subprocess.Popen, out: Path) -> None:
    """Until ckpt_last.pt exists and the log has moved past it (so rows will need dropping)."""
    last = out / "ar_semantic" / "ckpt_last.pt"
    deadline, seen = time.monotonic() + 120, -1
    while True:
        steps = _log_steps(out)
        if last.exists() and steps and steps[-1] % 5 not in (0,) and steps[-1] > 5:
            return
        assert process.poll() is None, f"training ended before it could be interrupted: {process.stderr.read()}"
        if steps and steps[-1] != seen:  # progress resets the patience
            seen, deadline = steps[-1], time.monotonic() + 120
        assert time.monotonic() < deadline, "training made no progress for 120 s"
        time.sleep(0.02)


def _straight_run(token_cache, out: Path) -> dict:
    assert main(["train", "--tokens", str(token_cache), "--out", str(out), *ARGS]) == 0
    return torch.load(out / "ar_semantic" / "ckpt_last.pt", weights_only=True)


def _assert_same_run(straight: dict, out: Path) -> None:
    resumed = torch.load(out / "ar_semantic" / "ckpt_last.pt", weights_only=True)
    assert resumed["global_step"] == STEPS
    assert resumed["model_state"].keys() == straight["model_state"].keys()
    for key, value in straight["model_state"].items():
        assert torch.equal(value, resumed["model_state"][key]), key
    assert torch.equal(straight["rng"]["data"], resumed["rng"]["data"])
    assert _log_steps(out) == list(range(1, STEPS + 1)), "the log repeats or skips a step"


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_is_bit_exact(token_cache, tmp_path, capsys):
    out = tmp_path / "killed"
    process = _start(token_cache, out)
    _wait_until_past_a_save(process, out)
    process.kill()
    process.communicate()
    saved = torch.load(out / "ar_semantic" / "ckpt_last.pt", weights_only=True)["global_step"]
    assert 0 < saved < STEPS and saved % 5 == 0
    assert max(_log_steps(out)) > saved  # rows written after the last save, to be dropped

    assert main(["train", "--tokens", str(token_cache), "--out", str(out), "--resume", *ARGS]) == 0
    capsys.readouterr()
    _assert_same_run(_straight_run(token_cache, tmp_path / "straight"), out)


@pytest.mark.slow
def test_sigterm_saves_the_current_step_and_exits_143(token_cache, tmp_path, capsys):
    out = tmp_path / "preempted"
    process = _start(token_cache, out)
    _wait_until_past_a_save(process, out)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("hafm train:")]
    assert len(lines) == 1 and "SIGTERM" in lines[0] and "--resume" in lines[0], stderr
    assert "Traceback" not in stderr
    saved = torch.load(out / "ar_semantic" / "ckpt_last.pt", weights_only=True)["global_step"]
    assert saved == max(_log_steps(out)), "the step in flight was not saved"
    assert saved < STEPS

    assert main(["train", "--tokens", str(token_cache), "--out", str(out), "--resume", *ARGS]) == 0
    capsys.readouterr()
    _assert_same_run(_straight_run(token_cache, tmp_path / "straight"), out)


def _payload() -> dict:
    return {"model_state": {"w": torch.arange(4096, dtype=torch.float32)}, "config": {}, "global_step": 3}


def test_empty_and_truncated_checkpoints_are_named_errors(tmp_path):
    path = tmp_path / "ckpt_last.pt"
    save_checkpoint(path, _payload())
    data = path.read_bytes()
    for content, words in ((b"", "empty"), (data[: len(data) // 2], "truncated")):
        path.write_bytes(content)
        with pytest.raises(CheckpointError, match=words) as caught:
            read_checkpoint(path, "semantic")
        assert str(path) in str(caught.value)


def test_a_flipped_byte_in_the_weights_fails_the_content_check(tmp_path):
    path = tmp_path / "ckpt_best.pt"
    payload = _payload()
    save_checkpoint(path, payload)
    assert read_checkpoint(path, "semantic")["content_sha256"]
    data = bytearray(path.read_bytes())
    at = bytes(data).find(payload["model_state"]["w"][2000:2004].numpy().tobytes())
    assert at > 0
    data[at] ^= 0x01  # torch.load itself accepts this file and returns a different tensor
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="content check"):
        read_checkpoint(path, "semantic")


def test_checkpoints_are_readable_by_other_users(tmp_path):
    path = tmp_path / "ckpt_last.pt"
    previous = os.umask(0o022)
    try:
        save_checkpoint(path, _payload())
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_an_empty_checkpoint_through_the_cli_is_one_line_exit_2(token_cache, tmp_path, capsys):
    out = tmp_path / "ckpt"
    (out / "ar_semantic").mkdir(parents=True)
    (out / "ar_semantic" / "ckpt_last.pt").write_bytes(b"")
    code = main(["train", "--tokens", str(token_cache), "--out", str(out), "--resume", *ARGS])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "empty" in err[0] and "Traceback" not in err[0]
