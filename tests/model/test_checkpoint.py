"""Unusable checkpoints are CheckpointErrors naming the stage and the field."""

import pytest
import torch

from hafm_core.checkpoint import checkpoint_path, load_cascade, load_stage, save_checkpoint
from hafm_core.errors import CheckpointError
from hafm_core.model import HafmLM, stage_config
from hafm_core.patterns import STAGES


def _write(root, stage, **config_overrides):
    config = stage_config(stage, "tiny", **config_overrides)
    torch.manual_seed(0)
    model = HafmLM(config)
    payload = {"model_state": model.state_dict(), "config": config.to_dict(), "global_step": 7}
    save_checkpoint(checkpoint_path(root, stage), payload)
    return model, payload


def test_round_trip_rebuilds_the_model_from_its_config(tmp_path):
    for stage in STAGES:
        _write(tmp_path, stage)
    models = load_cascade(tmp_path)
    original, _ = _write(tmp_path / "again", "coarse")
    loaded, payload = load_stage(tmp_path, "coarse")
    assert payload["global_step"] == 7 and set(models) == set(STAGES)
    assert all(torch.equal(a, b) for a, b in zip(original.state_dict().values(), loaded.state_dict().values()))


def test_missing_stage_is_named(tmp_path):
    _write(tmp_path, "semantic")
    with pytest.raises(CheckpointError, match=r"stage 'coarse'.*no checkpoint at .*ar_coarse"):
        load_cascade(tmp_path, ("semantic", "coarse"))


def test_corrupt_file_is_named(tmp_path):
    path = checkpoint_path(tmp_path, "fine")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    with pytest.raises(CheckpointError, match=r"stage 'fine'.*corrupt"):
        load_stage(tmp_path, "fine")
    _, payload = _write(tmp_path, "fine")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated by a crash
    with pytest.raises(CheckpointError, match=r"stage 'fine'.*corrupt"):
        load_stage(tmp_path, "fine")


def test_missing_field_is_named(tmp_path):
    _, payload = _write(tmp_path, "semantic")
    del payload["model_state"]
    save_checkpoint(checkpoint_path(tmp_path, "semantic"), payload)
    with pytest.raises(CheckpointError, match=r"stage 'semantic'.*field 'model_state'"):
        load_stage(tmp_path, "semantic")


def test_config_that_does_not_match_the_weights_is_named(tmp_path):
    _, payload = _write(tmp_path, "coarse")
    payload["config"]["d_ff"] = 96
    save_checkpoint(checkpoint_path(tmp_path, "coarse"), payload)
    with pytest.raises(CheckpointError, match=r"stage 'coarse'.*field 'model_state'.*d_ff=96"):
        load_stage(tmp_path, "coarse")
    payload["config"]["n_layer"] = 3
    payload["config"]["d_ff"] = 128
    save_checkpoint(checkpoint_path(tmp_path, "coarse"), payload)
    with pytest.raises(CheckpointError, match=r"stage 'coarse'.*lacks parameter 'blocks.2"):
        load_stage(tmp_path, "coarse")


def test_unknown_config_field_and_wrong_stage_are_named(tmp_path):
    _, payload = _write(tmp_path, "fine")
    payload["config"]["n_experts"] = 4
    save_checkpoint(checkpoint_path(tmp_path, "fine"), payload)
    with pytest.raises(CheckpointError, match=r"stage 'fine'.*field 'config.n_experts'"):
        load_stage(tmp_path, "fine")
    _, payload = _write(tmp_path, "coarse")
    save_checkpoint(checkpoint_path(tmp_path, "fine"), payload)
    with pytest.raises(CheckpointError, match=r"stage 'fine'.*field 'config.stage'.*'coarse'"):
        load_stage(tmp_path, "fine")


def test_stages_that_do_not_fit_together_are_named(tmp_path):
    _write(tmp_path, "semantic", semantic_vocab=100)
    _write(tmp_path, "coarse")
    with pytest.raises(CheckpointError, match=r"'semantic' and 'coarse'.*config.semantic_vocab"):
        load_cascade(tmp_path, ("semantic", "coarse"))


def test_resume_without_checkpoint_or_with_another_config_is_named(tmp_path, token_cache, capsys):
    from hafm_core.cli import main

    args = ["train", "--stage", "semantic", "--tokens", str(token_cache), "--out", str(tmp_path / "c"),
            "--steps", "2", "--batch-size", "2", "--warmup", "1", "--eval-every", "2", "--json"]
    assert main([*args, "--resume"]) == 2  # CheckpointError: exit code 2, one line
    assert "stage 'semantic': no checkpoint at" in capsys.readouterr().err
    assert main([*args, "--preset", "tiny"]) == 0
    capsys.readouterr()
    assert main([*args, "--preset", "small", "--resume"]) == 2
    assert "stage 'semantic'" in (err := capsys.readouterr().err) and "field 'config.n_layer'" in err
