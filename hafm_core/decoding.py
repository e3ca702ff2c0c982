"""Fixed-shape decoding: a sampling step that reads and writes only preallocated buffers.

`generate` (in `hafm_core.sampling`) prefills the conditioning (and any forced prompt) with the
ordinary forward pass, then calls `decode_static` for the remaining target slots. One step:

1. embeds the token at sequence index `i` (a device scalar, never a Python int);
2. reads row `i`'s relative-bias bucket ids from a table built once per call and adds -inf on
   the keys after `i` (the mask of every step has the same shape);
3. runs every block, writing the token's keys and values into the KV cache at `i`;
4. applies the head of codebook `(i - L_c) % K` (the K heads stacked into one weight),
   mixes guidance, and samples every row at once by inverse CDF at its own uniform (drawn up
   front from the excerpt's generator, so a seed reproduces its tokens whatever the batch);
   with the delay pattern (`DelayStep`) every head at once, K tokens per step;
5. stores the sample and writes the next step's input token (row), then increments `i`.

Nothing in a step depends on a Python value that changes between steps, so on CUDA it is
captured once as a CUDA graph and replayed: one launch per token instead of several hundred
kernels, which is what bound the decoder (the GPU was idle between launches). On CPU the graph
buys nothing, so the same step runs eagerly over the keys filled so far (`n_keys = i + 1`); it
computes exactly what the step of the growing-cache decoder computes, token for token.

    codes = generate(model, cond, n_frames=750, seeds=[0, 1], decoder="static")  # the default
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hafm_core.model import HafmLM, KVCache

# Eager steps run on a side stream before capture (CUDA initialises its kernels and workspaces
# on first use, which a capture must not see). They are real steps of the generation.
WARMUP_STEPS = 3
BUCKET_ROWS_PER_CHUNK = 256  # bounds the int64 temporary of the bucket table


def bucket_table(model: HafmLM, positions: torch.Tensor, first: int) -> torch.Tensor:
    """int16 [L - first, L]: relative-bias bucket ids of query rows first..L-1 over all L keys."""
    rows = []
    for start in range(first, positions.shape[0], BUCKET_ROWS_PER_CHUNK):
        query = positions[start:start + BUCKET_ROWS_PER_CHUNK]
        rows.append(model.relative_bias.bucket(positions[None, :] - query[:, None]).to(torch.int16))
    return torch.cat(rows)


class StaticStep:
    """The state and the step function of one `decode_static` call (see the module docstring).

    This is the flat pattern's step (one token, the head of codebook `slot % K`); `DelayStep`
    changes only what happens after the hidden state (K tokens from K heads).
    """

    def __init__(self, model: HafmLM, cache: KVCache, tokens: torch.Tensor, positions: torch.Tensor,
                 segments: torch.Tensor, generated: torch.Tensor, uniforms: torch.Tensor, params,
                 cond_len: int, first_slot: int, sample):
        """sample: `hafm_core.sampling.sample_next` (logits [B, card], params, uniforms [B] -> ids [B])."""
        layout = model.layout
        self.model, self.cache, self.params, self.sample = model, cache, params, sample
        self.generated, self.uniforms = generated, uniforms  # (B, n_slots) each
        self.batch, self.rows = generated.shape[0], tokens.shape[0]
        self.n_streams, self.cond_len = layout.n_target, cond_len
        device = tokens.device
        first_index = cond_len + first_slot
        self.first_index = first_index
        self.buckets = bucket_table(model, positions, first_index)  # (L - first, L)
        self.key_index = torch.arange(positions.shape[0], device=device)
        self.offsets = torch.tensor(layout.target_offsets, device=device)
        self.head_weight = torch.stack([head.weight for head in model.heads])  # (K, card, D)
        self.segment = model.segment_embedding(segments[first_index:first_index + 1])  # (1, D)
        # The buffers a step reads and writes in place.
        self.index = torch.tensor([first_index], device=device)  # sequence index of the input token
        self.token = tokens[:, first_index:first_index + 1].clone()  # (rows, 1[, K]) global ids

    def __call__(self, n_keys: int) -> None:
        """Run the step at `self.index` over the first `n_keys` cache slots, then advance."""
        model, index = self.model, self.index
        embedded = model.embed(self.token) + self.segment  # (rows, 1, D)
        row = self.buckets.index_select(0, index - self.first_index)[:, :n_keys]  # (1, n_keys)
        bias = F.embedding(row.long(), model.relative_bias.embedding.weight)  # (1, n_keys, H)
        bias = bias.permute(2, 0, 1).unsqueeze(0)  # (1, H, 1, n_keys)
        mask = bias.float().masked_fill(self.key_index[:n_keys] > index, float("-inf"))
        hidden = model.decode_step(embedded, mask, self.cache, index, n_keys)  # (rows, D)
        self.emit(hidden, index - self.cond_len)
        index.add_(1)

    def guide(self, logits: torch.Tensor) -> torch.Tensor:
        """logits [rows, ...] -> [B, ...]: guidance mixes conditional rows (first) and unconditional."""
        if self.rows == self.batch:
            return logits
        conditional, unconditional = logits[:self.batch], logits[self.batch:]
        return unconditional + self.params.guidance_scale * (conditional - unconditional)

    def emit(self, hidden: torch.Tensor, slot: torch.Tensor) -> None:
        """Sample target slot `slot` (int64 [1]) from hidden [rows, D]; store it and the next input."""
        codebook = slot % self.n_streams
        logits = F.linear(hidden, self.head_weight.index_select(0, codebook)[0]).float()  # (rows, card)
        local = self.sample(self.guide(logits), self.params, self.uniforms.index_select(1, slot)[:, 0])  # (B,)
        self.generated.index_copy_(1, slot, local[:, None])
        next_token = (local + self.offsets.index_select(0, codebook)).repeat(self.rows // self.batch)
        self.token.copy_(next_token[:, None])


class DelayStep(StaticStep):
    """The delay pattern's step: K tokens per step, one from each head of the same hidden state.

    generated: global ids int64 [B, S, K], prefilled with the tokens fixed in advance (delay
    pads, forced prompt frames) where `fixed` bool [S, K] is True; uniforms float64 [B, S, K].
    A sampled token never replaces a fixed one, so forcing and pads cost no branch.
    """

    def __init__(self, *args, fixed: torch.Tensor, **kwargs):
        super().__init__(*args, **kwargs)
        self.fixed = fixed

    def emit(self, hidden: torch.Tensor, slot: torch.Tensor) -> None:
        logits = self.guide(self.model.all_head_logits(hidden).float())  # (B, K, card)
        uniforms = self.uniforms.index_select(1, slot)[:, 0]  # (B, K)
        local = self.sample(logits.flatten(0, 1), self.params, uniforms.flatten()).view(self.batch, -1)
        known = self.generated.index_select(1, slot)[:, 0]  # (B, K)
        step_tokens = torch.where(self.fixed.index_select(0, slot), known, local + self.offsets)  # (B, K)
        self.generated.index_copy_(1, slot, step_tokens[:, None])
        self.token.copy_(step_tokens.repeat(self.rows // self.batch, 1)[:, None])


def decode_static(step: StaticStep, n_steps: int, use_graph: bool, progress=None, first_done: int = 0,
                  fixed_keys: bool = False) -> None:
    """Run `n_steps` steps; on CUDA with `use_graph`, as replays of one captured graph.

    fixed_keys: every eager step attends all cache slots (masked), as the graph does; lets a CPU
        test check the graph's arithmetic. progress: optional callable(n_done_slots) after each
        step, counting from `first_done`.
    """
    n_total = step.key_index.shape[0]
    done = 0

    def report() -> None:
        if progress is not None:
            progress(first_done + done)

    if not use_graph or n_steps <= WARMUP_STEPS + 1:
        for _ in range(n_steps):
            step(n_keys=n_total if fixed_keys else step.first_index + done + 1)  # the keys filled so far
            done += 1
            report()
        return
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(WARMUP_STEPS):
            step(n_keys=n_total)
            done += 1
            report()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):  # records the step; nothing runs until replay
        step(n_keys=n_total)
    for _ in range(n_steps - WARMUP_STEPS):
        graph.replay()
        done += 1
        report()
