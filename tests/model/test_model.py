"""The transformer and the sequence layout of the three stages."""

import pytest
import torch

from hafm_core.model import HafmLM, ModelConfig, stage_config
from hafm_core.patterns import NULL_ID, STAGES, deinterleave, interleave, stage_layout


@pytest.mark.parametrize("stage", STAGES)
def test_tiny_preset_is_under_one_million_parameters(stage):
    assert HafmLM(stage_config(stage, "tiny")).num_parameters() < 1_000_000


def test_presets_grow_and_config_round_trips():
    sizes = [HafmLM(stage_config("semantic", p)).num_parameters() for p in ("tiny", "small")]
    assert sizes[0] < sizes[1]
    config = stage_config("fine", "base")
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert config.n_layer >= 12 and config.d_model >= 768


def test_coarse_layout_of_ten_seconds_matches_the_paper():
    layout = stage_layout("coarse")
    vocal = torch.randint(0, 500, (1, 500))
    accompaniment = torch.randint(0, 500, (1, 500))
    cond = layout.cond_tokens(torch.stack([vocal, accompaniment], dim=1))
    codes = torch.randint(0, 1024, (1, 4, layout.target_frames(500)))
    target = layout.target_tokens(codes)
    assert cond.shape == (1, 1000) and target.shape == (1, 3000)
    # Frame-major interleaving, each stream in its own id range.
    assert cond[0, 0] == vocal[0, 0] + layout.cond_offsets[0]
    assert cond[0, 1] == accompaniment[0, 0] + layout.cond_offsets[1]
    assert target[0, 5] == codes[0, 1, 1] + layout.target_offsets[1]
    ranges = [(o, o + c) for o, c in zip(layout.cond_offsets + layout.target_offsets,
                                          [500, 500, 1024, 1024, 1024, 1024])]
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(ranges, ranges[1:]))
    assert ranges[-1][1] == layout.vocab_size and ranges[0][0] > NULL_ID
    # Aligned time positions: conditioning frame j (50 Hz) sits at floor(1.5 j) on the 75 Hz clock.
    positions = layout.positions(500, 3000)
    assert positions[2 * 10] == 15 and positions[1000 + 4 * 15] == 15


def test_interleave_round_trip():
    codes = torch.randint(0, 1024, (3, 4, 7))
    assert torch.equal(deinterleave(interleave(codes), 4), codes)


@pytest.mark.parametrize("stage", STAGES)
def test_model_is_causal_in_the_target(stage):
    torch.manual_seed(0)
    model = HafmLM(stage_config(stage, "tiny")).eval()
    layout = model.layout
    cond = layout.cond_tokens(torch.randint(0, 500, (2, layout.n_cond, 10)))
    codes = torch.randint(0, layout.target_cards[0], (2, layout.n_target, layout.target_frames(10)))
    changed = codes.clone()
    changed[:, -1, 5:] = (changed[:, -1, 5:] + 1) % layout.target_cards[0]
    with torch.no_grad():
        a, b = model.target_logits(cond, codes), model.target_logits(cond, changed)
    assert a.shape == (2, layout.n_target, codes.shape[2], layout.target_cards[0])
    # Changing the last stream of frame 5 leaves the predictions of frames 0-5 unchanged.
    assert torch.allclose(a[:, :, :6], b[:, :, :6], atol=1e-6)
    assert not torch.allclose(a[:, :, 6:], b[:, :, 6:], atol=1e-6)


def test_conditioning_changes_the_prediction_and_loss_is_per_codebook():
    torch.manual_seed(0)
    model = HafmLM(stage_config("coarse", "tiny")).eval()
    layout = model.layout
    cond = layout.cond_tokens(torch.randint(0, 500, (1, 2, 4)))
    codes = torch.randint(0, 1024, (1, 4, 6))
    with torch.no_grad():
        logits = model.target_logits(cond, codes)
        null_logits = model.target_logits(torch.full_like(cond, NULL_ID), codes)
        loss, metrics = model.loss(cond, codes)
    assert not torch.allclose(logits, null_logits)
    reference = torch.nn.functional.cross_entropy(logits.reshape(-1, 1024), codes.reshape(-1))
    assert torch.isclose(loss, reference, atol=1e-5)
    assert metrics["loss"].shape == (4,) and metrics["count"] == 6


@pytest.mark.parametrize("stage", ["coarse", "fine"])
def test_chunked_attention_gives_the_same_loss_and_gradients(stage):
    """Attention in blocks of query rows (recomputed in backward) and checkpointed blocks are a
    memory layout, not another model: same loss and gradients as whole-sequence attention."""
    torch.manual_seed(0)
    config = stage_config(stage, "tiny")
    model = HafmLM(config).train()
    layout = config.layout
    generator = torch.Generator().manual_seed(1)
    cond_streams = torch.stack([torch.randint(s.card, (3, 12), generator=generator) for s in layout.cond_streams], 1)
    target = torch.stack([torch.randint(s.card, (3, 18 if stage == "coarse" else 12), generator=generator)
                          for s in layout.target_streams], 1)
    cond = layout.cond_tokens(cond_streams)

    def loss_and_grads(chunk: int, recompute: bool):
        model.zero_grad()
        model.attn_chunk, model.activation_checkpointing = chunk, recompute
        loss, _ = model.loss(cond, target)
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}

    reference_loss, reference_grads = loss_and_grads(0, False)
    for chunk, recompute in ((7, False), (7, True), (32, True)):
        loss, grads = loss_and_grads(chunk, recompute)
        torch.testing.assert_close(loss, reference_loss, rtol=1e-5, atol=1e-6)
        for name, grad in reference_grads.items():
            torch.testing.assert_close(grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_chunked_attention_keeps_the_mask_small():
    """The additive mask of one chunk is [1, H, chunk, T]: never the whole [1, H, T, T]."""
    import hafm_core.model as model_module

    torch.manual_seed(0)
    config = stage_config("fine", "tiny")
    model = HafmLM(config).train()
    model.attn_chunk = 16
    shapes = []
    original = model_module._bias_mask

    def spy(buckets, future, table, dtype):
        shapes.append(tuple(buckets.shape))
        return original(buckets, future, table, dtype)

    model_module._bias_mask = spy
    try:
        layout = config.layout
        cond = layout.cond_tokens(torch.randint(100, (1, 4, 40)))
        model.loss(cond, torch.randint(100, (1, 4, 40)))[0].backward()
    finally:
        model_module._bias_mask = original
    total = 4 * 40 * 2  # conditioning + target tokens
    assert shapes and max(rows for rows, _ in shapes) == 16 and all(keys == total for _, keys in shapes)
