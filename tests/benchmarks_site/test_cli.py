"""`hafm benchmark` as a user types it: launch, reuse, status, cancel, export, rerun, bad input."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from evalsite.models import BenchmarkRun, Dataset, GeneratedClip
from hafm_core.cli import main

pytestmark = pytest.mark.django_db


def _json(capsys, argv) -> tuple[int, dict]:
    code = main(argv)
    out = capsys.readouterr().out.strip()
    return code, json.loads(out) if out else {}


def test_launch_reuse_status_cancel_export_and_rerun(capsys, media_root, tiny_checkpoint_dir, broker_url, tmp_path):
    argv = ["benchmark", "run", "--checkpoint", str(tiny_checkpoint_dir), "--dataset", "synthetic:10",
            "--systems", "three-stage,two-stage,random,ground-truth", "--excerpts", "2", "--seed", "7",
            "--embedder", "logmel", "--json"]
    code, launched = _json(capsys, argv)
    assert code == 0 and launched["reused"] is False and launched["status"] == "pending"
    run = BenchmarkRun.objects.get(id=launched["id"])
    assert run.dataset.kind == Dataset.Kind.SYNTHETIC and run.dataset.excerpts.filter(split="test").count() == 2
    assert GeneratedClip.objects.filter(run=run).count() == 8
    code, again = _json(capsys, argv)
    assert code == 0 and again["reused"] is True and again["id"] == launched["id"]

    code, status = _json(capsys, ["benchmark", "status", launched["id"][:8], "--json"])
    assert code == 0 and status["totals"]["pending"] == 8

    out = tmp_path / "export"
    code, exported = _json(capsys, ["benchmark", "export", launched["id"], "--out", str(out), "--json"])
    assert code == 0 and set(exported["files"]) == {"run", "reproducibility", "systems", "clips"}
    record = json.loads((out / "reproducibility.json").read_text())
    assert record["inputs"]["checkpoint"]["content_hash"] == run.checkpoint.content_hash
    assert record["inputs"]["dataset"] == {"spec": "synthetic:10", "kind": "synthetic",
                                           "manifest_hash": run.dataset.manifest_hash}
    assert record["seed"] == 7 and record["systems"] == run.systems and record["versions"]["torch"]
    with open(out / "clips.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8 and {r["system"] for r in rows} == set(run.systems)
    assert {r["seed"] for r in rows} == {str(s) for s in GeneratedClip.objects.filter(run=run)
                                         .values_list("seed", flat=True)}

    # The record replays to the same parameters: the live run is reused, nothing duplicated.
    code, replayed = _json(capsys, ["benchmark", "rerun", str(out), "--json"])
    assert code == 0 and replayed["reused"] is True and replayed["id"] == launched["id"]

    code, cancelled = _json(capsys, ["benchmark", "cancel", launched["id"], "--json"])
    assert code == 0 and cancelled["status"] == "cancelled"
    # After a cancel the record launches a fresh run with the same excerpts and seeds.
    code, fresh = _json(capsys, ["benchmark", "rerun", str(out / "reproducibility.json"), "--json"])
    assert code == 0 and fresh["reused"] is False
    new_run = BenchmarkRun.objects.get(id=fresh["id"])
    assert new_run.parameters_hash == run.parameters_hash
    assert new_run.parameters["excerpts"] == run.parameters["excerpts"]


def test_rerun_refuses_a_changed_checkpoint(capsys, media_root, tiny_checkpoint_dir, broker_url, tmp_path):
    checkpoint = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint_dir, checkpoint)
    code, launched = _json(capsys, ["benchmark", "run", "--checkpoint", str(checkpoint), "--dataset", "synthetic:10",
                                    "--systems", "random,ground-truth", "--excerpts", "2", "--embedder", "logmel",
                                    "--json"])
    assert code == 0
    main(["benchmark", "export", launched["id"], "--out", str(tmp_path / "export")])
    capsys.readouterr()
    # random and ground-truth load no stage, but the recorded hash covers every stage file.
    shutil.copyfile(tiny_checkpoint_dir / "ar_coarse" / "ckpt_best.pt", checkpoint / "ar_semantic" / "ckpt_best.pt")
    code = main(["benchmark", "rerun", str(tmp_path / "export")])
    assert code == 2 and "has changed since the record was written" in capsys.readouterr().err
    assert BenchmarkRun.objects.count() == 1


def test_bad_input_is_one_line_and_exit_code_2(capsys, media_root, tmp_path, tiny_checkpoint_dir, broker_url):
    partial = tmp_path / "partial"
    shutil.copytree(tiny_checkpoint_dir, partial)
    (partial / "ar_fine" / "ckpt_best.pt").unlink()
    code = main(["benchmark", "run", "--checkpoint", str(partial), "--dataset", "synthetic:10", "--excerpts", "2",
                 "--embedder", "logmel"])
    err = capsys.readouterr().err
    assert code == 2 and "stage 'fine'" in err and "Traceback" not in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code = main(["benchmark", "run", "--checkpoint", str(tiny_checkpoint_dir), "--dataset", f"stems:{empty}",
                 "--embedder", "logmel"])
    err = capsys.readouterr().err
    assert code == 2 and "holds no stems" in err
    code = main(["benchmark", "status", "0000dead"])
    assert code == 2 and "no benchmark run" in capsys.readouterr().err
    assert not BenchmarkRun.objects.exists()
