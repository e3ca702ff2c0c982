"""The delay codebook pattern: layout, causality, decoding (static = cached = recompute), seeds,
prompt forcing, checkpoints (old flat ones included) and `hafm train --pattern`."""

import json

import pytest
import torch

from hafm_core.checkpoint import checkpoint_path, load_stage, save_checkpoint
from hafm_core.cli import main
from hafm_core.errors import CheckpointError
from hafm_core.model import HafmLM, ModelConfig, stage_config
from hafm_core.patterns import NULL_ID, stage_layout
from hafm_core.sampling import SamplingParams, generate
from hafm_core.train.data import load_token_cache, stage_examples
from hafm_core.train.loop import TrainConfig, train_stage


def _model(stage: str = "coarse", pattern: str = "delay", preset: str = "tiny") -> HafmLM:
    torch.manual_seed(0)
    return HafmLM(stage_config(stage, preset, semantic_vocab=40, codebook_size=48, pattern=pattern)).eval()


def _cond(model: HafmLM, batch: int = 2, frames: int = 10, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 40, (batch, model.layout.n_cond, frames), generator=torch.Generator().manual_seed(seed))


def test_delay_layout_of_ten_seconds_staggers_the_codebooks():
    flat, delay = stage_layout("coarse"), stage_layout("coarse", pattern="delay")
    codes = torch.randint(0, 1024, (2, 4, 750))
    steps = delay.target_tokens(codes)
    assert steps.shape == (2, 753, 4) and delay.n_slots(750) == 753 and flat.n_slots(750) == 3000
    offsets, pads = delay.target_offsets, delay.delay_pad_ids
    assert steps[1, 10, 2] == codes[1, 2, 8] + offsets[2]  # step s holds codebook k of frame s - k
    assert steps[0, 0].tolist() == [codes[0, 0, 0] + offsets[0], *pads[1:]]
    assert steps[0, 752].tolist() == [*pads[:3], codes[0, 3, 749] + offsets[3]]
    assert torch.equal(delay.codes_from_steps(steps), codes)
    # The flat ids are untouched; the pads come after them.
    assert (flat.vocab_size, flat.target_offsets) == (delay.flat_vocab_size, delay.target_offsets)
    assert pads == tuple(range(flat.vocab_size, flat.vocab_size + 4)) and delay.vocab_size == flat.vocab_size + 4
    # Step s sits at frame s, aligned with the conditioning of that frame.
    positions = delay.positions(500, 753)
    assert positions[2 * 10] == 15 and positions[1000 + 15] == 15


def test_a_delay_step_sees_the_earlier_codebooks_of_its_frames_and_nothing_later():
    model = _model("fine")
    layout = model.layout
    cond = layout.cond_tokens(_cond(model, frames=12))
    codes = torch.randint(0, 48, (2, 4, 12))
    changed = codes.clone()
    changed[:, 1, 5] = (changed[:, 1, 5] + 1) % 48  # codebook 2 of frame 5: the input of step 7
    with torch.no_grad():
        a, b = model.target_logits(cond, codes), model.target_logits(cond, changed)
    assert a.shape == (2, 4, 12, 48)
    step = torch.arange(12)[None, :] + torch.arange(4)[:, None]  # (K, T): the step predicting [k, t]
    same = (a - b).abs().amax(dim=(0, 3)) < 1e-6  # (K, T)
    assert same[step <= 6].all()  # steps up to 6 cannot see it
    assert not same[step == 7].any()  # step 7 (codebook k of frame 7 - k, every k) does


def test_the_loss_counts_every_frame_of_every_codebook_once():
    model = _model("coarse")
    cond = model.layout.cond_tokens(_cond(model, frames=6))
    codes = torch.randint(0, 48, (3, 4, 9))
    loss, metrics = model.loss(cond.repeat(3, 1)[:3], codes)
    assert metrics["loss"].shape == (4,) and metrics["correct"].shape == (4,) and metrics["count"] == 3 * 9
    assert torch.isclose(loss, metrics["loss"].mean())


@pytest.mark.parametrize("stage", ["coarse", "fine", "semantic"])
@pytest.mark.parametrize("params", [SamplingParams(), SamplingParams(temperature=0.0),
                                    SamplingParams(top_k=0, top_p=0.9, guidance_scale=1.0)],
                         ids=["default", "greedy", "top-p-unguided"])
def test_delay_static_decoder_gives_the_tokens_of_the_cache_and_of_full_recompute(stage, params):
    model = _model(stage)
    cond = _cond(model)
    static = generate(model, cond, 15, [5, 6], params)
    assert static.shape == (2, model.layout.n_target, 15)
    assert torch.equal(static, generate(model, cond, 15, [5, 6], params, decoder="cached"))
    assert torch.equal(static, generate(model, cond, 15, [5, 6], params, decoder="recompute"))


def test_delay_graph_shaped_step_gives_the_same_tokens_on_every_key_slot(graph_shaped_generate):
    model = _model("fine", preset="small")
    cond = _cond(model, batch=3, frames=20)
    reference = generate(model, cond, 24, [7, 8, 9], decoder="cached")
    fixed, calls = graph_shaped_generate(model, cond, 24, [7, 8, 9])
    assert calls == [24 + 4 - 1 - 1]  # one step per frame (plus K - 1), after the prefill's first
    assert torch.equal(fixed, reference)


def test_greedy_guided_delay_tokens_are_the_teacher_forced_argmax():
    """Generation and training read the same layout: greedy tokens are the argmax of
    `target_logits` on themselves, guidance mixed as uncond + s * (cond - uncond)."""
    model, scale = _model("coarse"), 3.0
    cond_streams = _cond(model)
    tokens = generate(model, cond_streams, 15, [0, 1], SamplingParams(temperature=0.0, guidance_scale=scale))
    cond = model.layout.cond_tokens(cond_streams)
    with torch.no_grad():
        conditional = model.target_logits(cond, tokens)
        unconditional = model.target_logits(torch.full_like(cond, NULL_ID), tokens)
    assert torch.equal(tokens, (unconditional + scale * (conditional - unconditional)).argmax(-1))


def test_a_delay_seed_reproduces_its_tokens_whatever_the_batch():
    model = _model("coarse")
    cond = _cond(model, batch=3, frames=6)
    batch = generate(model, cond, 9, seeds=[11, 12, 13])
    alone = generate(model, cond[1:2], 9, seeds=[12])
    other = generate(model, torch.cat([cond[2:3], cond[1:2]]), 9, seeds=[99, 12])
    assert torch.equal(batch[1], alone[0]) and torch.equal(batch[1], other[1])
    assert not torch.equal(batch[0], batch[1])


def test_delay_prompt_frames_are_forced_and_continued():
    model = _model("coarse")
    cond = _cond(model, batch=2, frames=10)
    greedy = SamplingParams(temperature=0.0)
    full = generate(model, cond, 15, [0, 1], greedy)
    assert torch.equal(generate(model, cond, 15, [0, 1], greedy, prompt=full[:, :, :6]), full)
    forced = torch.randint(0, 48, (2, 4, 5))  # tokens the model would not pick
    for decoder in ("static", "cached", "recompute"):
        out = generate(model, cond, 15, [3, 4], prompt=forced, decoder=decoder)
        assert torch.equal(out[:, :, :5], forced), decoder  # later codebooks are sampled after frame 5 starts
    whole = torch.randint(0, 48, (2, 4, 15))
    assert torch.equal(generate(model, cond, 15, [3, 4], prompt=whole), whole)


def _write(root, model: HafmLM, drop_pattern: bool = False):
    config = model.config.to_dict()
    if drop_pattern:  # a checkpoint written before the field existed
        del config["pattern"]
    save_checkpoint(checkpoint_path(root, model.config.stage),
                    {"model_state": model.state_dict(), "config": config, "global_step": 1})


def test_checkpoints_store_the_pattern_and_old_ones_load_as_flat(tmp_path):
    delay = _model("fine")
    _write(tmp_path / "delay", delay)
    loaded, payload = load_stage(tmp_path / "delay", "fine")
    assert payload["config"]["pattern"] == "delay" and loaded.config.pattern == "delay"
    cond = _cond(delay)
    assert torch.equal(generate(loaded, cond, 8, [1, 2]), generate(delay, cond, 8, [1, 2]))
    _write(tmp_path / "old", _model("fine", pattern="flat"), drop_pattern=True)
    old, _ = load_stage(tmp_path / "old", "fine")
    assert old.config.pattern == "flat" and old.token_embedding.num_embeddings == old.layout.flat_vocab_size


def test_unknown_pattern_is_refused():
    with pytest.raises(ValueError, match="pattern='zigzag'"):
        ModelConfig.from_dict({**stage_config("coarse", "tiny").to_dict(), "pattern": "zigzag"})


def test_resume_with_another_pattern_is_refused(token_cache, tmp_path):
    train, val = load_token_cache(token_cache)
    examples = stage_examples("coarse", train), stage_examples("coarse", val)
    config = TrainConfig(steps=2, batch_size=2, warmup=1, eval_every=2)
    train_stage(stage_config("coarse", "tiny", pattern="delay"), config, *examples, tmp_path, stop_at_step=1)
    with pytest.raises(CheckpointError, match=r"config\.pattern.*'delay' there but 'flat' now"):
        train_stage(stage_config("coarse", "tiny"), config, *examples, tmp_path, resume=True)


def test_cli_trains_a_delay_stage(token_cache, tmp_path, capsys):
    out = tmp_path / "ckpt"
    code = main(["train", "--stage", "coarse", "--tokens", str(token_cache), "--out", str(out), "--json",
                 "--pattern", "delay", "--preset", "tiny", "--steps", "2", "--batch-size", "2", "--warmup", "1",
                 "--eval-every", "2", "--device", "cpu"])
    assert code == 0
    assert len(json.loads(capsys.readouterr().out)["val_accuracy_per_codebook"]) == 4
    assert load_stage(out, "coarse")[0].config.pattern == "delay"
    assert main(["train", "--stage", "coarse", "--tokens", str(token_cache), "--out", str(out),
                 "--pattern", "zigzag"]) == 2
    assert "--pattern: invalid choice: 'zigzag'" in capsys.readouterr().err
