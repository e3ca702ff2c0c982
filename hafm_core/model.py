"""The HAFM language model: one decoder-only causal transformer, configured into three stages.

Pre-norm RMSNorm blocks with QK-norm attention, a GEGLU feed-forward and a T5-style bucketed
relative position bias (shared by all layers, measured on the time axis: see
`hafm_core.patterns`). Inputs are token + segment embeddings (with the delay codebook pattern
a target step's input is the sum of its K codebooks' embeddings); there is no absolute position
embedding. One linear head per target codebook predicts local ids. A `KVCache` makes
generation cost one new step instead of the whole prefix.

Memory. The position bias is never built as a whole [B, H, T, T] tensor unless it is small:
`forward` computes one int16 [T, T_keys] table of bucket ids, and each layer turns it into an
additive mask for `attn_chunk` query rows at a time. In training each chunk runs under
activation checkpointing (the chunk's mask and attention are recomputed in the backward pass),
so the memory of attention grows as H * attn_chunk * T, not H * T^2, with the same loss and
gradients. `activation_checkpointing` also recomputes whole blocks. Both are runtime settings
(`HafmLM.attn_chunk`, `HafmLM.activation_checkpointing`), not part of the checkpoint's config.

    config = stage_config("coarse", "tiny")
    model = HafmLM(config)
    loss, metrics = model.loss(cond_streams, target_codes)   # teacher forcing
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from hafm_core import constants
from hafm_core.patterns import PATTERNS, STAGES, StageLayout, stage_layout


@dataclass(frozen=True)
class ModelConfig:
    """Every size of one stage's transformer. A checkpoint stores `to_dict()` of it."""

    stage: str  # "semantic", "coarse" or "fine"
    n_layer: int
    n_head: int
    d_model: int
    d_ff: int  # GEGLU hidden width
    dropout: float = 0.0
    rel_buckets: int = 64  # both directions together
    rel_max_distance: int = 512  # frames; farther distances share the last bucket
    semantic_vocab: int = constants.KMEANS_CLUSTERS
    codebook_size: int = constants.CODEBOOK_SIZE
    pattern: str = "flat"  # codebook pattern, "flat" or "delay" (checkpoints without it are flat)

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage={self.stage!r} is not one of {STAGES}")
        if self.pattern not in PATTERNS:
            raise ValueError(f"pattern={self.pattern!r} is not one of {PATTERNS}")
        if self.d_model % self.n_head:
            raise ValueError(f"d_model={self.d_model} is not a multiple of n_head={self.n_head}")

    @property
    def layout(self) -> StageLayout:
        return stage_layout(self.stage, self.semantic_vocab, self.codebook_size, self.pattern)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        """Rebuild from `to_dict()`; raises KeyError naming an unknown or missing field."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise KeyError(unknown[0])
        required = {f.name for f in fields(cls) if f.default is MISSING}
        missing = sorted(required - set(values))
        if missing:
            raise KeyError(missing[0])
        return cls(**values)


# Sizes shared by the three stages of a preset.
PRESETS: dict[str, dict] = {
    "tiny": dict(n_layer=2, n_head=4, d_model=64, d_ff=128),  # < 1M parameters, tests
    "small": dict(n_layer=6, n_head=4, d_model=256, d_ff=683),  # CPU demo, ~6-10M
    "base": dict(n_layer=24, n_head=16, d_model=1024, d_ff=2816, dropout=0.1),  # paper scale
}


def stage_config(stage: str, preset: str, **overrides) -> ModelConfig:
    """The `preset` sizes for `stage`, with optional field overrides (e.g. codebook_size)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    return ModelConfig(stage=stage, **{**PRESETS[preset], **overrides})


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_float = x.float()
        normed = x_float * torch.rsqrt(x_float.pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


class RelativePositionBias(nn.Module):
    """T5 bucketed relative position bias (bidirectional buckets), one scalar per head."""

    def __init__(self, n_buckets: int, max_distance: int, n_head: int):
        super().__init__()
        self.n_buckets, self.max_distance = n_buckets, max_distance
        self.embedding = nn.Embedding(n_buckets, n_head)

    def bucket(self, relative: torch.Tensor) -> torch.Tensor:
        """relative = key_pos - query_pos, int64 [...] -> bucket ids int64 [...]."""
        half = self.n_buckets // 2
        bucket = (relative > 0).long() * half
        distance = relative.abs()
        exact = half // 2
        is_small = distance < exact
        log_ratio = torch.log(distance.float().clamp(min=1) / exact) / math.log(self.max_distance / exact)
        large = exact + (log_ratio * (half - exact)).long()
        large = large.clamp(max=half - 1)
        return bucket + torch.where(is_small, distance, large)

    def forward(self, query_pos: torch.Tensor, key_pos: torch.Tensor) -> torch.Tensor:
        """query_pos int64 [Tq], key_pos int64 [Tk] -> bias float [1, H, Tq, Tk]."""
        buckets = self.bucket(key_pos[None, :] - query_pos[:, None])  # (Tq, Tk)
        return self.embedding(buckets).permute(2, 0, 1).unsqueeze(0)

    def for_queries(self, query_pos: torch.Tensor, key_pos: torch.Tensor, future: torch.Tensor) -> AttentionBias:
        buckets = self.bucket(key_pos[None, :] - query_pos[:, None]).to(torch.int16)  # (Tq, Tk)
        return AttentionBias(buckets, future, self.embedding.weight)


@dataclass(frozen=True)
class AttentionBias:
    """What attention needs to build its additive mask for any block of query rows.

    buckets: bucket ids int16 [Tq, Tk]; future: bool [Tq, Tk], True where a key comes after the
    query in sequence order; table: the bias embedding float [n_buckets, H] (learned).
    """

    buckets: torch.Tensor
    future: torch.Tensor
    table: torch.Tensor

    def mask(self, rows: slice, dtype: torch.dtype) -> torch.Tensor:
        """float [1, H, rows, Tk]: bias plus -inf on future keys."""
        return _bias_mask(self.buckets[rows], self.future[rows], self.table, dtype)


def _bias_mask(buckets: torch.Tensor, future: torch.Tensor, table: torch.Tensor, dtype) -> torch.Tensor:
    bias = F.embedding(buckets.long(), table).permute(2, 0, 1).unsqueeze(0)  # (1, H, rows, Tk)
    return bias.masked_fill(future, float("-inf")).to(dtype)


class KVCache:
    """Keys and values of every layer for a batch of sequences, preallocated to `max_len`."""

    def __init__(self, config: ModelConfig, batch: int, max_len: int, device, dtype):
        head_dim = config.d_model // config.n_head
        shape = (batch, config.n_head, max_len, head_dim)
        self.keys = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.values = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.positions = torch.zeros(max_len, dtype=torch.long, device=device)
        self.length = 0  # tokens stored so far

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v [B, H, Tq, hd] after the current length; return all [B, H, length+Tq, hd]."""
        end = self.length + k.shape[2]
        self.keys[layer][:, :, self.length:end] = k
        self.values[layer][:, :, self.length:end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]


class Attention(nn.Module):
    def __init__(self, config: ModelConfig, layer: int):
        super().__init__()
        self.layer, self.n_head = layer, config.n_head
        self.head_dim = config.d_model // config.n_head
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=False)
        self.q_norm = RMSNorm(self.head_dim)
        self.k_norm = RMSNorm(self.head_dim)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=False)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, bias: AttentionBias, cache: KVCache | None, chunk: int = 0) -> torch.Tensor:
        """x [B, T, D] -> [B, T, D]; `chunk` > 0 attends `chunk` query rows at a time."""
        batch, length, d_model = x.shape
        q, k, v = self.qkv(x).split(d_model, dim=2)
        q = self.q_norm(q.view(batch, length, self.n_head, self.head_dim)).transpose(1, 2)  # (B, H, T, hd)
        k = self.k_norm(k.view(batch, length, self.n_head, self.head_dim)).transpose(1, 2)
        v = v.view(batch, length, self.n_head, self.head_dim).transpose(1, 2)
        if cache is not None:
            k, v = cache.append(self.layer, k, v)  # (B, H, T_keys, hd)
        dropout = self.dropout if self.training else 0.0
        if chunk <= 0 or length <= chunk:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.mask(slice(None), q.dtype), dropout_p=dropout)
        else:
            parts = []
            for start in range(0, length, chunk):
                rows = slice(start, start + chunk)
                args = (q[:, :, rows], k, v, bias.buckets[rows], bias.future[rows], bias.table, dropout)
                recompute = self.training and torch.is_grad_enabled()
                parts.append(checkpoint(_attend, *args, use_reentrant=False) if recompute else _attend(*args))
            y = torch.cat(parts, dim=2)  # (B, H, T, hd)
        return self.proj(y.transpose(1, 2).reshape(batch, length, d_model))

    def step(self, x: torch.Tensor, mask: torch.Tensor, cache: KVCache, index: torch.Tensor,
             n_keys: int) -> torch.Tensor:
        """One decoding token with fixed shapes (see `hafm_core.decoding`).

        x [B, 1, D]; index int64 [1], the token's sequence index (a tensor, so a captured CUDA
        graph replays it); its key and value are written into the cache at `index`. Attention
        reads the first `n_keys` cache slots; mask float32 [1, H, 1, n_keys] is -inf after `index`.
        """
        batch, _, d_model = x.shape
        q, k, v = self.qkv(x).split(d_model, dim=2)
        q = self.q_norm(q.view(batch, 1, self.n_head, self.head_dim)).transpose(1, 2)  # (B, H, 1, hd)
        k = self.k_norm(k.view(batch, 1, self.n_head, self.head_dim)).transpose(1, 2)
        v = v.view(batch, 1, self.n_head, self.head_dim).transpose(1, 2)
        keys, values = cache.keys[self.layer], cache.values[self.layer]
        keys.index_copy_(2, index, k)
        values.index_copy_(2, index, v)
        # Two batched matrix products, not scaled_dot_product_attention: for one query row its
        # fused kernels walk the keys of each (row, head) in one thread block, so at batch 1 a
        # few dozen blocks crawl through thousands of keys (measured 14-20 ms a step at `base`
        # on an H200); the products spread the keys over the whole GPU.
        scores = torch.matmul(q, keys[:, :, :n_keys].transpose(2, 3)).float() * self.head_dim ** -0.5
        weights = (scores + mask).softmax(-1).to(v.dtype)  # (B, H, 1, n_keys)
        y = torch.matmul(weights, values[:, :, :n_keys])  # (B, H, 1, hd)
        return self.proj(y.transpose(1, 2).reshape(batch, 1, d_model))


def _attend(q, k, v, buckets, future, table, dropout: float) -> torch.Tensor:
    """Attention of a block of query rows q [B, H, rows, hd] over k, v [B, H, Tk, hd]."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=_bias_mask(buckets, future, table, q.dtype),
                                          dropout_p=dropout)


class GEGLU(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.w_in = nn.Linear(config.d_model, 2 * config.d_ff, bias=False)
        self.w_out = nn.Linear(config.d_ff, config.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.w_in(x).chunk(2, dim=-1)  # (B, T, d_ff) each
        return self.w_out(F.gelu(gate) * value)


class Block(nn.Module):
    def __init__(self, config: ModelConfig, layer: int):
        super().__init__()
        self.norm_attn = RMSNorm(config.d_model)
        self.attn = Attention(config, layer)
        self.norm_ffn = RMSNorm(config.d_model)
        self.ffn = GEGLU(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, bias: AttentionBias, cache: KVCache | None, chunk: int = 0) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.norm_attn(x), bias, cache, chunk))
        return x + self.dropout(self.ffn(self.norm_ffn(x)))

    def step(self, x: torch.Tensor, mask: torch.Tensor, cache: KVCache, index: torch.Tensor,
             n_keys: int) -> torch.Tensor:
        """`forward` for one decoding token (inference: no dropout); see `Attention.step`."""
        x = x + self.attn.step(self.norm_attn(x), mask, cache, index, n_keys)
        return x + self.ffn(self.norm_ffn(x))


class HafmLM(nn.Module):
    """One cascade stage. Sequences follow `config.layout` (see `hafm_core.patterns`)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.layout = layout = config.layout
        self.token_embedding = nn.Embedding(layout.vocab_size, config.d_model)
        self.segment_embedding = nn.Embedding(2, config.d_model)
        self.relative_bias = RelativePositionBias(config.rel_buckets, config.rel_max_distance, config.n_head)
        self.blocks = nn.ModuleList(Block(config, layer) for layer in range(config.n_layer))
        self.norm_out = RMSNorm(config.d_model)
        self.heads = nn.ModuleList(nn.Linear(config.d_model, card, bias=False) for card in layout.target_cards)
        self.apply(self._init_weights)
        self.attn_chunk = 0  # query rows per attention block; 0: all at once
        self.activation_checkpointing = False  # recompute each block in the backward pass

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token embeddings float [B, T, D] of global ids int64 [B, T] (flat), or of rows of ids
        [B, T, K] (delay: the sum of each row's embeddings, `NO_ID` entries adding nothing)."""
        if tokens.dim() == 2:
            return self.token_embedding(tokens)
        present = (tokens >= 0).unsqueeze(-1)  # (B, T, K, 1)
        return (self.token_embedding(tokens.clamp(min=0)) * present).sum(dim=-2)

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor, segments: torch.Tensor,
                cache: KVCache | None = None) -> torch.Tensor:
        """Hidden states of `tokens`.

        tokens: global ids int64 [B, T], or [B, T, K] rows for the delay pattern (see `embed`);
        positions, segments: int64 [T] for these tokens.
        cache: when given, the tokens continue the cached ones and their keys/values are added.
        Returns float [B, T, D] after the final norm.
        """
        start = cache.length if cache is not None else 0
        if cache is not None:
            cache.positions[start:start + tokens.shape[1]] = positions
            key_positions = cache.positions[:start + tokens.shape[1]]
        else:
            key_positions = positions
        query_index = torch.arange(start, start + tokens.shape[1], device=tokens.device)
        key_index = torch.arange(key_positions.shape[0], device=tokens.device)
        future = key_index[None, :] > query_index[:, None]  # (T, T_keys)
        bias = self.relative_bias.for_queries(positions, key_positions, future)
        x = self.embed(tokens) + self.segment_embedding(segments)[None]  # (B, T, D)
        recompute = self.activation_checkpointing and self.training and torch.is_grad_enabled() and cache is None
        for block in self.blocks:
            if recompute:
                x = checkpoint(block, x, bias, None, self.attn_chunk, use_reentrant=False)
            else:
                x = block(x, bias, cache, self.attn_chunk)
        if cache is not None:
            cache.length = start + tokens.shape[1]
        return self.norm_out(x)

    def decode_step(self, embedded: torch.Tensor, mask: torch.Tensor, cache: KVCache, index: torch.Tensor,
                    n_keys: int) -> torch.Tensor:
        """Hidden state float [B, D] of one token at sequence `index` (int64 [1]) with fixed shapes.

        embedded: its token + segment embedding [B, 1, D]; mask: float32 [1, H, 1, n_keys], the
        relative bias of row `index` with -inf on later keys. The cache's keys and values at
        `index` are written; `cache.length` is left to the caller (see `hafm_core.decoding`).
        """
        x = embedded
        for block in self.blocks:
            x = block.step(x, mask, cache, index, n_keys)
        return self.norm_out(x)[:, 0]

    def head_logits(self, hidden: torch.Tensor, codebook: int) -> torch.Tensor:
        """hidden [B, T, D] -> logits float [B, T, card] of target stream `codebook`."""
        return self.heads[codebook](hidden)

    def all_head_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden [B, D] -> logits [B, K, card] of every target stream (a delay step)."""
        return torch.stack([head(hidden) for head in self.heads], dim=1)

    def target_logits(self, cond: torch.Tensor, target_codes: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits.

        cond: global conditioning ids int64 [B, L_c] (interleaved; NULL_ID rows are unconditional).
        target_codes: local ids int64 [B, K, T_f].
        Returns float [B, K, T_f, card]; [:, k, t] predicts target_codes[:, k, t] (whatever the
        pattern: for "delay", codebook k of frame t comes from step t + k).
        """
        layout = self.layout
        n_streams, n_frames = target_codes.shape[1:]
        target = layout.target_tokens(target_codes)  # (B, S) flat, (B, S, K) delay
        tokens = layout.input_sequence(cond, target)  # (B, L_c + S[, K])
        cond_frames = cond.shape[1] // layout.n_cond
        positions = layout.positions(cond_frames, target.shape[1], device=cond.device)
        segments = layout.segments(cond.shape[1], target.shape[1], device=cond.device)
        hidden = self(tokens, positions, segments)[:, cond.shape[1]:]  # (B, S, D)
        if layout.is_delay:  # step t + k predicts codebook k of frame t
            return torch.stack([self.head_logits(hidden[:, k:k + n_frames], k) for k in range(n_streams)], dim=1)
        hidden = hidden.view(hidden.shape[0], n_frames, n_streams, -1)  # (B, T_f, K, D)
        return torch.stack([self.head_logits(hidden[:, :, k], k) for k in range(n_streams)], dim=1)

    def loss(self, cond: torch.Tensor, target_codes: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Cross-entropy averaged over the K target streams.

        Returns (scalar loss, {"loss": float [K], "correct": int64 [K], "count": int}) where the
        per-codebook tensors are detached, for validation accuracy per codebook.
        """
        logits = self.target_logits(cond, target_codes).float()  # (B, K, T_f, card)
        per_codebook = F.cross_entropy(
            logits.permute(0, 3, 1, 2), target_codes, reduction="none").mean(dim=(0, 2))  # (K,)
        correct = (logits.argmax(-1) == target_codes).sum(dim=(0, 2))  # (K,)
        count = target_codes.shape[0] * target_codes.shape[2]
        return per_codebook.mean(), {"loss": per_codebook.detach(), "correct": correct, "count": count}
