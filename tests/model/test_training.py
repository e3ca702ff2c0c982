"""`hafm train`: checkpoints, logs, exact resume, determinism, data parallel on CPU."""

import json
import os
import subprocess
import sys

import torch

from hafm_core.cli import main
from hafm_core.model import stage_config
from hafm_core.train.data import load_token_cache, stage_examples
from hafm_core.train.loop import TrainConfig, lr_factor, train_stage

TRAIN_ARGS = ["--preset", "tiny", "--steps", "6", "--batch-size", "4", "--warmup", "2",
              "--eval-every", "3", "--lr", "1e-3", "--device", "cpu"]


def _examples(folder, stage):
    train, val = load_token_cache(folder)
    return stage_examples(stage, train), stage_examples(stage, val)


def _states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_cli_trains_a_stage_and_writes_checkpoints_and_log(token_cache, tmp_path, capsys):
    out = tmp_path / "ckpt"
    code = main(["train", "--stage", "coarse", "--tokens", str(token_cache), "--out", str(out),
                 "--json", *TRAIN_ARGS])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["global_step"] == 6 and len(summary["val_accuracy_per_codebook"]) == 4
    assert (summary["n_train"], summary["n_validation"]) == (10, 2)
    last = torch.load(out / "ar_coarse" / "ckpt_last.pt", weights_only=True)
    best = torch.load(out / "ar_coarse" / "ckpt_best.pt", weights_only=True)
    for field in ("model_state", "config", "optimizer", "scheduler", "step", "global_step", "rng"):
        assert field in last
    assert last["config"]["stage"] == "coarse" and last["global_step"] == 6
    assert best["global_step"] in (3, 6) and best["best_val_loss"] == summary["best_val_loss"]
    rows = [json.loads(line) for line in (out / "ar_coarse" / "log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2, 3, 4, 5, 6]
    assert len(rows[2]["val_accuracy_per_codebook"]) == 4 and "val_loss" not in rows[0]


def test_resume_continues_bit_for_bit(token_cache, tmp_path):
    train, val = _examples(token_cache, "semantic")
    model_config = stage_config("semantic", "tiny", dropout=0.1)  # dropout draws from the global RNG
    config = TrainConfig(steps=8, batch_size=4, accumulate=2, warmup=2, eval_every=3, lr=1e-3)
    train_stage(model_config, config, train, val, tmp_path / "straight")
    train_stage(model_config, config, train, val, tmp_path / "resumed", stop_at_step=4)
    half = torch.load(tmp_path / "resumed" / "ar_semantic" / "ckpt_last.pt", weights_only=True)
    assert half["global_step"] == 4
    train_stage(model_config, config, train, val, tmp_path / "resumed", resume=True)
    a = torch.load(tmp_path / "straight" / "ar_semantic" / "ckpt_last.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "ar_semantic" / "ckpt_last.pt", weights_only=True)
    assert b["global_step"] == 8
    assert _states_equal(a["model_state"], b["model_state"])
    assert torch.equal(a["rng"]["data"], b["rng"]["data"])
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == 8


def test_same_seed_same_weights_other_seed_other_weights(token_cache, tmp_path):
    train, val = _examples(token_cache, "fine")
    model_config = stage_config("fine", "tiny")
    results = []
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        config = TrainConfig(steps=3, batch_size=2, warmup=1, eval_every=3, seed=seed)
        train_stage(model_config, config, train, val, tmp_path / name)
        results.append(torch.load(tmp_path / name / "ar_fine" / "ckpt_last.pt", weights_only=True)["model_state"])
    assert _states_equal(results[0], results[1])
    assert not _states_equal(results[0], results[2])


def test_learning_rate_warms_up_then_decays():
    config = TrainConfig(steps=100, warmup=10, lr=1.0, min_lr_ratio=0.1)
    factors = [lr_factor(step, config) for step in range(100)]
    assert factors[0] == 0.1 and factors[9] == 1.0
    assert all(a >= b for a, b in zip(factors[9:], factors[10:]))
    assert abs(lr_factor(100, config) - 0.1) < 1e-9


def test_data_parallel_with_torchrun_matches_one_process(token_cache, tmp_path):
    """Two gloo processes on CPU: the ranks stay in sync and match a single-process run."""
    args = ["train", "--stage", "semantic", "--tokens", str(token_cache), "--json",
            "--preset", "tiny", "--steps", "4", "--batch-size", "4", "--warmup", "1",
            "--eval-every", "2", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "hafm_core", *args, "--out", str(tmp_path / "ddp")],
        capture_output=True, text=True, env=env, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert len([line for line in ddp.stdout.splitlines() if line.startswith("{")]) == 1  # rank 0 reports
    assert main([*args, "--out", str(tmp_path / "single")]) == 0
    a = torch.load(tmp_path / "ddp" / "ar_semantic" / "ckpt_last.pt", weights_only=True)["model_state"]
    b = torch.load(tmp_path / "single" / "ar_semantic" / "ckpt_last.pt", weights_only=True)["model_state"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5), key
    best = torch.load(tmp_path / "single" / "ar_semantic" / "ckpt_best.pt", weights_only=True)
    assert best["global_step"] in (2, 4)


def _cache_of_lengths(folder, semantic_frames: list[int]):
    """A token cache whose train excerpts have the given lengths (semantic frames, even)."""
    from hafm_core.tokens import cache
    from tests.model.conftest import write_synthetic_cache

    entries = []
    for i, frames in enumerate(semantic_frames):
        sub = folder / f"part{i}"
        write_synthetic_cache(sub, n_excerpts=2, semantic_frames=frames, seed=i, n_validation=1)
        for entry in cache.read_index(sub):
            path = (sub / entry.file).relative_to(folder).as_posix()
            entries.append(cache.TokenIndexEntry(f"{entry.excerpt_id}-{i}", f"{entry.track}-{i}", entry.split,
                                                 entry.duration_s, entry.key, path))
    cache.write_index(folder, entries)
    return folder


def test_excerpts_of_any_length_are_trained_whole(tmp_path, capsys):
    """A long excerpt is not cut to the shortest: random crops cover all of it; a short one
    trains at its own length; the CLI says how many of each."""
    from hafm_core.train.data import CropSampler

    folder = _cache_of_lengths(tmp_path / "tokens", [8, 8, 20, 4])  # 4, 4, 10 and 2 units
    train, val = load_token_cache(folder)
    assert train.unit_lengths().tolist() == [4, 4, 10, 2] and len(val) == 4
    examples = stage_examples("coarse", train)
    sampler = CropSampler(examples, crop_units=4)
    assert sampler.describe() == {"n_excerpts": 4, "crop_s": 0.16, "n_cropped": 1, "n_shorter": 1,
                                  "bucket_lengths_s": [0.08, 0.16]}
    generator = torch.Generator().manual_seed(0)
    seen_offsets, short_lengths = set(), set()
    for _ in range(300):
        index, offsets, length = sampler.draw(4, generator)
        cond, target = examples.window(index, offsets, length)
        assert cond.shape == (4, 2, 2 * length) and target.shape == (4, 4, 3 * length)
        for position, (row, offset) in enumerate(zip(index.tolist(), offsets.tolist())):
            expect = examples.target_codes[row, :, 3 * offset: 3 * (offset + length)]
            assert torch.equal(target[position], expect)
            if row == 2:
                seen_offsets.add(offset)
            if row == 3:
                short_lengths.add(length)
    assert seen_offsets == set(range(7)), "some frames of the long excerpt are never trained on"
    assert short_lengths == {2}

    out = tmp_path / "ckpt"
    assert main(["train", "--stage", "coarse", "--tokens", str(folder), "--out", str(out), "--json",
                 "--crop-s", "0.16", *TRAIN_ARGS]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["training_data"]["n_cropped"] == 1 and summary["training_data"]["n_shorter"] == 1
