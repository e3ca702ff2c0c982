"""Autoregressive sampling of one cascade stage: temperature, top-k, top-p, guidance, KV cache.

Classifier-free guidance runs the conditional and the unconditional rows in one batch of 2B
sequences (the unconditional rows see every conditioning token replaced by `NULL_ID`) and
mixes their logits as `uncond + scale * (cond - uncond)`. Each excerpt draws its tokens from its
own `torch.Generator`, so on CPU a seed reproduces the same tokens whatever else is in the batch:
the generator of excerpt b draws all its uniforms up front, float64 [n_slots], and each step
samples every row at once by inverting the row's cumulative distribution at its uniform (one
`searchsorted` for the batch instead of a Python loop of `multinomial` calls per step).

With the delay codebook pattern a step samples the K codebooks of its (staggered) frames at
once, from the K heads of one hidden state, with K uniforms per step per excerpt.

    codes = generate(model, cond_streams, n_frames=750, seeds=[0, 1, 2])   # int64 [3, K, 750]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from hafm_core import constants
from hafm_core.decoding import DelayStep, StaticStep, decode_static
from hafm_core.model import HafmLM, KVCache
from hafm_core.patterns import BOS_ID, NULL_ID, interleave


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = constants.DEFAULT_TEMPERATURE  # 0 means greedy
    top_k: int = constants.DEFAULT_TOP_K  # 0 disables
    top_p: float = 1.0  # 1 disables
    guidance_scale: float = constants.DEFAULT_GUIDANCE_SCALE  # 1 disables (no uncond rows)

    def to_dict(self) -> dict:
        return asdict(self)


def filter_logits(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """logits float [B, card] -> temperature-scaled logits with -inf outside top-k / top-p."""
    logits = logits / params.temperature
    card = logits.shape[-1]
    if 0 < params.top_k < card:
        kth = torch.topk(logits, params.top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if 0.0 < params.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        # Drop a token when the tokens before it already reach top_p (the first one always stays).
        drop_sorted = (cumulative - sorted_logits.softmax(-1)) >= params.top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(logits: torch.Tensor, params: SamplingParams, uniforms: torch.Tensor) -> torch.Tensor:
    """logits float [B, card], uniforms float64 [B] in [0, 1) -> local ids int64 [B].

    Row b takes the first id whose cumulative probability exceeds uniforms[b] (inverse CDF):
    ids filtered out by top-k/top-p have probability 0 and can never be taken.
    """
    if params.temperature <= 0:
        return logits.argmax(-1)
    probs = filter_logits(logits.float(), params).softmax(-1).double()  # (B, card)
    cdf = probs.cumsum(-1)  # (B, card)
    targets = uniforms.to(cdf)[:, None] * cdf[:, -1:]  # (B, 1), below the row's total mass
    return torch.searchsorted(cdf, targets, right=True)[:, 0].clamp(max=probs.shape[-1] - 1)


def draw_uniforms(seeds: Sequence[int], n_slots: int, device) -> torch.Tensor:
    """float64 [B, n_slots]: row b from a generator seeded with seeds[b] (independent of the batch)."""
    return torch.stack([torch.rand(n_slots, generator=torch.Generator(device=device).manual_seed(int(seed)),
                                   device=device, dtype=torch.float64) for seed in seeds])


DECODERS = ("static", "cached", "recompute")


@torch.no_grad()
def generate(model: HafmLM, cond_streams: torch.Tensor, n_frames: int, seeds: Sequence[int],
             params: SamplingParams = SamplingParams(), prompt: torch.Tensor | None = None,
             use_cache: bool = True, progress=None, decoder: str = "static",
             cuda_graph: bool = True) -> torch.Tensor:
    """Sample `n_frames` target frames for each excerpt of a batch.

    cond_streams: local conditioning ids int64 [B, n_cond, T_c] (all excerpts the same length).
    seeds: one int per excerpt.
    prompt: optional local target ids int64 [B, K, T_p] forced as the first T_p frames (used to
        continue the previous window of a long vocal).
    decoder: "static" (fixed-shape steps, a CUDA graph on GPU: `hafm_core.decoding`), "cached"
        (the growing KV cache, one Python-driven forward per step) or "recompute" (the whole
        prefix at every step: the reference both caches must match token for token; tests and
        benchmarks only). `use_cache=False` is "recompute".
    cuda_graph: on CUDA, replay the static step as a captured graph (False: run it eagerly).
    progress: optional callable(n_done_slots) called after each step (a token with the flat
        pattern, a frame's K codebooks staggered with the delay pattern: `layout.n_slots`).
    Returns local target ids int64 [B, K, n_frames], whatever the model's codebook pattern.
    """
    if decoder not in DECODERS:
        raise ValueError(f"decoder={decoder!r} is not one of {DECODERS}")
    if not use_cache:
        decoder = "recompute"
    layout = model.layout
    device = next(model.parameters()).device
    batch, _, cond_frames = cond_streams.shape
    if len(seeds) != batch:
        raise ValueError(f"{len(seeds)} seeds for {batch} excerpts")
    n_slots = layout.n_slots(n_frames)
    cond = layout.cond_tokens(cond_streams.to(device))  # (B, L_c)
    if params.guidance_scale != 1.0:
        cond = torch.cat([cond, torch.full_like(cond, NULL_ID)])  # (2B, L_c): cond rows, uncond rows
    cond_len = cond.shape[1]
    run = _Run(model, layout.positions(cond_frames, n_slots, device=device),
               layout.segments(cond_len, n_slots, device=device), params, batch, cond_len, decoder,
               cuda_graph and device.type == "cuda", progress)
    n_prompt = 0 if prompt is None else min(prompt.shape[2], n_frames)
    if layout.is_delay:
        return _generate_delay(run, cond, n_frames, seeds, prompt, n_prompt)
    return _generate_flat(run, cond, n_frames, seeds, prompt, n_prompt)


@dataclass(frozen=True)
class _Run:
    """What every step of one `generate` call shares."""

    model: HafmLM
    positions: torch.Tensor  # int64 [L_c + n_slots]
    segments: torch.Tensor  # int64 [L_c + n_slots]
    params: SamplingParams
    batch: int  # excerpts; the sequences are `rows` = B or 2B (guidance)
    cond_len: int
    decoder: str
    use_graph: bool
    progress: object

    def guide(self, logits: torch.Tensor) -> torch.Tensor:
        """logits [rows, ...] -> [B, ...] (guidance mixes conditional and unconditional rows)."""
        if logits.shape[0] == self.batch:
            return logits
        conditional, unconditional = logits[:self.batch], logits[self.batch:]
        return unconditional + self.params.guidance_scale * (conditional - unconditional)

    def hidden(self, tokens: torch.Tensor, slot: int, cache: KVCache | None) -> torch.Tensor:
        """Hidden state [rows, D] of the sequence index that predicts target `slot`."""
        end = self.cond_len + slot + 1  # tokens[:, :end] are known; index end-1 predicts slot
        start = cache.length if cache is not None else 0
        return self.model(tokens[:, start:end], self.positions[start:end], self.segments[start:end], cache)[:, -1]

    def cache(self, rows: int, n_slots: int) -> KVCache | None:
        if self.decoder == "recompute":
            return None
        parameter = next(self.model.parameters())
        return KVCache(self.model.config, rows, self.cond_len + n_slots, parameter.device, parameter.dtype)


def _generate_flat(run: _Run, cond: torch.Tensor, n_frames: int, seeds, prompt, n_prompt: int) -> torch.Tensor:
    """The flat pattern: one token per step, K * n_frames steps."""
    model, layout, batch = run.model, run.model.layout, run.batch
    device, (rows, cond_len) = cond.device, cond.shape
    n_streams, n_slots = layout.n_target, layout.n_slots(n_frames)
    offsets = torch.tensor(layout.target_offsets, device=device)
    generated = torch.zeros(batch, n_slots, dtype=torch.long, device=device)  # local ids
    n_forced = n_prompt * n_streams
    if n_forced:
        generated[:, :n_forced] = interleave(prompt.to(device))[:, :n_forced]
    tokens = torch.full((rows, cond_len + n_slots), BOS_ID, dtype=torch.long, device=device)
    tokens[:, :cond_len] = cond
    n_fed = min(n_forced, n_slots - 1)  # forced tokens that are inputs of later slots
    forced_ids = generated[:, :n_fed] + offsets.repeat(n_slots)[:n_fed]
    tokens[:, cond_len + 1: cond_len + 1 + n_fed] = forced_ids.repeat(rows // batch, 1)

    cache = run.cache(rows, n_slots)
    uniforms = draw_uniforms(seeds, n_slots, device)  # (B, n_slots)
    for slot in range(n_forced, n_slots):
        codebook = slot % n_streams
        logits = run.guide(model.head_logits(run.hidden(tokens, slot, cache), codebook).float())  # (B, card)
        local = sample_next(logits, run.params, uniforms[:, slot])  # (B,)
        generated[:, slot] = local
        if slot + 1 < n_slots:
            tokens[:, cond_len + slot + 1] = (local + offsets[codebook]).repeat(rows // batch)
        if run.progress is not None:
            run.progress(slot + 1)
        if run.decoder == "static" and slot + 1 < n_slots:
            # The prefill (conditioning, prompt, first sample) is done: fixed-shape steps go on.
            step = StaticStep(model, cache, tokens, run.positions, run.segments, generated, uniforms, run.params,
                              cond_len, slot + 1, sample_next)
            decode_static(step, n_slots - slot - 1, run.use_graph, run.progress, slot + 1)
            break
    return generated.view(batch, n_frames, n_streams).transpose(1, 2).contiguous()


def _generate_delay(run: _Run, cond: torch.Tensor, n_frames: int, seeds, prompt, n_prompt: int) -> torch.Tensor:
    """The delay pattern: step s samples codebook k of frame s - k for every k, n_frames + K - 1 steps.

    The steps' tokens are known in advance where the frame is out of range (delay pads) or
    forced by the prompt (`fixed`); there a sampled token is discarded. Every excerpt draws K
    uniforms per step from its own generator, so a seed reproduces its tokens whatever the batch.
    """
    model, layout, batch = run.model, run.model.layout, run.batch
    device, (rows, cond_len) = cond.device, cond.shape
    n_streams, n_slots = layout.n_target, layout.n_slots(n_frames)
    offsets = torch.tensor(layout.target_offsets, device=device)
    codes = torch.zeros(batch, n_streams, n_frames, dtype=torch.long, device=device)
    if n_prompt:
        codes[:, :, :n_prompt] = prompt[:, :, :n_prompt].to(device)
    generated = layout.target_tokens(codes)  # (B, S, K) global ids: pads in place, prompt frames
    frame = torch.arange(n_slots, device=device)[:, None] - torch.arange(n_streams, device=device)  # (S, K)
    fixed = ~layout.delay_valid(n_frames, device) | (frame < n_prompt)  # (S, K)
    first = int((~fixed).any(1).int().argmax()) if (~fixed).any() else n_slots  # first step to sample
    tokens = torch.cat([layout.cond_input(cond), layout.start_input(rows, device),
                        generated[:, :-1].repeat(rows // batch, 1, 1)], dim=1)  # (rows, L_c + S, K)

    cache = run.cache(rows, n_slots)
    uniforms = draw_uniforms(seeds, n_slots * n_streams, device).view(batch, n_slots, n_streams)
    for slot in range(first, n_slots):
        logits = run.guide(model.all_head_logits(run.hidden(tokens, slot, cache)).float())  # (B, K, card)
        local = sample_next(logits.flatten(0, 1), run.params, uniforms[:, slot].flatten()).view(batch, n_streams)
        generated[:, slot] = torch.where(fixed[slot], generated[:, slot], local + offsets)
        if slot + 1 < n_slots:
            tokens[:, cond_len + slot + 1] = generated[:, slot].repeat(rows // batch, 1)
        if run.progress is not None:
            run.progress(slot + 1)
        if run.decoder == "static" and slot + 1 < n_slots:
            step = DelayStep(model, cache, tokens, run.positions, run.segments, generated, uniforms, run.params,
                             cond_len, slot + 1, sample_next, fixed=fixed)
            decode_static(step, n_slots - slot - 1, run.use_graph, run.progress, slot + 1)
            break
    return layout.codes_from_steps(generated)
