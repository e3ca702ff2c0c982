"""KV-cached, guided, batched sampling."""

import pytest
import torch

from hafm_core import constants
from hafm_core.model import HafmLM, stage_config
from hafm_core.patterns import NULL_ID
from hafm_core.sampling import SamplingParams, filter_logits, generate


def _model(stage: str, dtype=torch.float64) -> HafmLM:
    torch.manual_seed(0)
    return HafmLM(stage_config(stage, "tiny")).to(dtype).eval()


def test_defaults_come_from_the_protocol():
    params = SamplingParams()
    assert (params.temperature, params.top_k, params.guidance_scale) == (
        constants.DEFAULT_TEMPERATURE, constants.DEFAULT_TOP_K, constants.DEFAULT_GUIDANCE_SCALE)


@pytest.mark.parametrize("stage", ["semantic", "coarse"])
def test_kv_cache_gives_the_same_tokens_as_full_recompute(stage):
    model = _model(stage)
    cond = torch.randint(0, 500, (2, model.layout.n_cond, 8))
    n_frames = model.layout.target_frames(8)
    params = SamplingParams(top_p=0.95)
    cached = generate(model, cond, n_frames, seeds=[3, 4], params=params)
    recomputed = generate(model, cond, n_frames, seeds=[3, 4], params=params, use_cache=False)
    assert cached.shape == (2, model.layout.n_target, n_frames)
    assert torch.equal(cached, recomputed)
    assert not torch.equal(cached[0], cached[1])  # different seeds, different tokens


def test_a_seed_reproduces_its_tokens_whatever_the_batch():
    model = _model("coarse", torch.float32)
    cond = torch.randint(0, 500, (3, 2, 6))
    batch = generate(model, cond, 9, seeds=[11, 12, 13])
    alone = generate(model, cond[1:2], 9, seeds=[12])
    other_batch = generate(model, torch.cat([cond[2:3], cond[1:2]]), 9, seeds=[99, 12])
    assert torch.equal(batch[1], alone[0]) and torch.equal(batch[1], other_batch[1])


def test_greedy_guided_tokens_follow_the_guidance_formula():
    """Greedy sampling with guidance picks argmax(uncond + s * (cond - uncond)) of teacher forcing."""
    model = _model("semantic")
    cond_streams = torch.randint(0, 500, (2, 1, 7))
    scale = 3.0
    tokens = generate(model, cond_streams, 7, seeds=[0, 1],
                      params=SamplingParams(temperature=0.0, guidance_scale=scale))
    cond = model.layout.cond_tokens(cond_streams)
    with torch.no_grad():
        conditional = model.target_logits(cond, tokens)
        unconditional = model.target_logits(torch.full_like(cond, NULL_ID), tokens)
    expected = (unconditional + scale * (conditional - unconditional)).argmax(-1)
    assert torch.equal(tokens, expected)
    plain = generate(model, cond_streams, 7, seeds=[0, 1],
                     params=SamplingParams(temperature=0.0, guidance_scale=1.0))
    with torch.no_grad():
        assert torch.equal(plain, model.target_logits(cond, plain).argmax(-1))


def test_prompt_frames_are_kept_and_continued():
    model = _model("coarse")
    cond = torch.randint(0, 500, (1, 2, 6))
    greedy = SamplingParams(temperature=0.0)
    full = generate(model, cond, 9, seeds=[0], params=greedy)
    continued = generate(model, cond, 9, seeds=[0], params=greedy, prompt=full[:, :, :4])
    assert torch.equal(continued, full)
    forced = torch.randint(0, 1024, (1, 4, 3))
    assert torch.equal(generate(model, cond, 9, seeds=[0], prompt=forced)[:, :, :3], forced)


def test_top_k_and_top_p_restrict_the_support():
    logits = torch.tensor([[4.0, 3.0, 2.0, 1.0, 0.0]])
    kept_k = torch.isfinite(filter_logits(logits, SamplingParams(temperature=1.0, top_k=2)))
    assert kept_k.tolist() == [[True, True, False, False, False]]
    probs = logits.softmax(-1)[0]
    top_p = float(probs[0] + probs[1]) - 1e-4  # the first two tokens are needed to reach it
    kept_p = torch.isfinite(filter_logits(logits, SamplingParams(temperature=1.0, top_k=0, top_p=top_p)))
    assert kept_p.tolist() == [[True, True, False, False, False]]
    # Sampling with top_k=1 is greedy decoding, whatever the seed.
    model, cond = _model("semantic"), torch.randint(0, 500, (1, 1, 20))
    top_1 = generate(model, cond, 20, seeds=[5], params=SamplingParams(top_k=1))
    greedy = generate(model, cond, 20, seeds=[6], params=SamplingParams(temperature=0.0))
    assert torch.equal(top_1, greedy)


def test_batched_inverse_cdf_sampling_draws_the_filtered_distribution():
    """Every row sampled at once must still draw from its own top-k/top-p distribution:
    frequencies against the probabilities (scipy's chi-square), never a filtered-out id."""
    from scipy.stats import chisquare

    from hafm_core.sampling import draw_uniforms, filter_logits, sample_next

    torch.manual_seed(0)
    logits = torch.randn(2, 12) * 2
    params = SamplingParams(temperature=0.8, top_k=8, top_p=0.9)
    n = 8_000
    uniforms = draw_uniforms([1, 2], n, "cpu")
    draws = torch.stack([sample_next(logits, params, uniforms[:, i]) for i in range(n)], 1)  # (2, n)
    probs = filter_logits(logits, params).softmax(-1).double()
    for row in range(2):
        allowed = probs[row] > 0
        counts = torch.bincount(draws[row], minlength=12)
        assert counts[~allowed].sum() == 0, "a filtered-out id was drawn"
        expected = (probs[row][allowed] / probs[row][allowed].sum() * n).numpy()
        assert chisquare(counts[allowed].numpy(), expected).pvalue > 1e-3
