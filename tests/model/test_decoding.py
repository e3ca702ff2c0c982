"""The fixed-shape decoder (`hafm_core.decoding`): the same tokens as the growing KV cache and as
full recompute, with the step's arithmetic as a CUDA graph replays it (every key slot, masked)."""

from unittest import mock

import pytest
import torch

from hafm_core.decoding import StaticStep, bucket_table
from hafm_core.model import HafmLM, stage_config
from hafm_core.sampling import SamplingParams, generate

PARAMS = [SamplingParams(), SamplingParams(top_k=0, top_p=0.9), SamplingParams(temperature=0.0),
          SamplingParams(guidance_scale=1.0)]


def _model(stage: str) -> HafmLM:
    torch.manual_seed(0)
    return HafmLM(stage_config(stage, "tiny", semantic_vocab=40, codebook_size=48)).eval()


def _cond(model: HafmLM, batch: int = 2, frames: int = 10) -> torch.Tensor:
    return torch.randint(0, 40, (batch, model.layout.n_cond, frames), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("stage", ["semantic", "coarse", "fine"])
@pytest.mark.parametrize("params", PARAMS, ids=["default", "top-p", "greedy", "unguided"])
def test_static_decoder_gives_the_tokens_of_the_cache_and_of_full_recompute(stage, params):
    model, n_frames = _model(stage), 15
    cond = _cond(model)
    static = generate(model, cond, n_frames, [5, 6], params)  # the default decoder
    assert torch.equal(static, generate(model, cond, n_frames, [5, 6], params, decoder="cached"))
    assert torch.equal(static, generate(model, cond, n_frames, [5, 6], params, decoder="recompute"))


def test_static_decoder_continues_a_forced_prompt():
    model = _model("coarse")
    cond = _cond(model)
    full = generate(model, cond, 15, [1, 2], decoder="cached")
    continued = generate(model, cond, 15, [1, 2], prompt=full[:, :, :6])
    assert torch.equal(continued[:, :, :6], full[:, :, :6])
    assert torch.equal(continued, generate(model, cond, 15, [1, 2], prompt=full[:, :, :6], decoder="cached"))


def test_the_graph_shaped_step_gives_the_same_tokens_on_every_key_slot(graph_shaped_generate):
    """What a CUDA graph replays: attention over the whole preallocated cache, later keys masked."""
    model = HafmLM(stage_config("fine", "small", semantic_vocab=40, codebook_size=48)).eval()
    cond = _cond(model, batch=3, frames=20)
    reference = generate(model, cond, 24, [7, 8, 9], decoder="cached")
    fixed, calls = graph_shaped_generate(model, cond, 24, [7, 8, 9])
    assert calls == [24 * 4 - 1]  # every step after the prefill's first sample
    assert torch.equal(fixed, reference)


def test_the_step_reads_its_bias_row_from_a_table_built_once():
    model = _model("coarse")
    cond = _cond(model)
    with mock.patch.object(model.relative_bias, "bucket", wraps=model.relative_bias.bucket) as bucket:
        generate(model, cond, 15, [0, 1])
    n_slots = 15 * model.layout.n_target
    assert 1 <= bucket.call_count <= 3  # prefill + the table, not one call per token
    assert bucket.call_count < n_slots


def test_bucket_table_rows_equal_the_bias_of_the_full_forward():
    model = _model("coarse")
    positions = model.layout.positions(10, 60)
    table = bucket_table(model, positions, first=20)
    full = model.relative_bias.bucket(positions[None, :] - positions[:, None])
    assert table.dtype == torch.int16 and torch.equal(table.long(), full[20:])


def test_a_step_touches_only_its_own_cache_slot():
    model = _model("semantic")
    cond = _cond(model, batch=1)
    captured = {}
    real = StaticStep.__call__

    def spy(self, n_keys):
        if "before" not in captured:
            captured["before"] = [k.clone() for k in self.cache.keys]
            captured["index"] = int(self.index)
            real(self, n_keys)
            captured["after"] = [k.clone() for k in self.cache.keys]
        else:
            real(self, n_keys)

    with mock.patch.object(StaticStep, "__call__", spy):
        generate(model, cond, 12, [3])
    index = captured["index"]
    for before, after in zip(captured["before"], captured["after"]):
        changed = (before != after).any(dim=(0, 1, 3)).nonzero().flatten().tolist()
        assert changed == [index]


def test_unknown_decoder_is_refused():
    model = _model("semantic")
    with pytest.raises(ValueError, match="decoder"):
        generate(model, _cond(model), 4, [0, 1], decoder="fast")


def test_decode_static_reports_progress_per_token():
    model = _model("semantic")
    seen = []
    generate(model, _cond(model), 12, [0, 1], progress=seen.append)
    assert seen == list(range(1, 13))
