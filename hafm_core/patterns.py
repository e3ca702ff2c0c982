"""Sequence layout of the three cascade stages: id ranges, codebook patterns, positions.

Every stage sees one sequence `[conditioning | BOS, target[:-1]]`:

    stage     conditioning (frame-interleaved)         target (frame-interleaved)
    semantic  vocal semantic (50 Hz)                   accompaniment semantic (50 Hz), 1 stream
    coarse    vocal + accompaniment semantic (50 Hz)   codebooks 1-4 (75 Hz), 4 streams
    fine      codebooks 1-4 (75 Hz)                    codebooks 5-8 (75 Hz), 4 streams

Multi-stream blocks are interleaved frame by frame (`c1_t0 c2_t0 c3_t0 c4_t0 c1_t1 ...`), so
10 s of the coarse stage is 2 x 500 = 1 000 conditioning tokens then 4 x 750 = 3 000 targets.

Token ids. Each stream has its own id range in one embedding table: ids 0..2 are the specials
(PAD, NULL, BOS), then each conditioning stream, then each target stream. The model's output
heads (one per target stream) predict *local* ids `0..card-1`; `target_offsets` turns them into
the global ids that are fed back.

Positions. Attention uses a relative position bias over *time*, not over sequence index: every
token carries the index of its frame on the target stream's clock (a 50 Hz conditioning frame j
sits at `floor(j * 75 / 50)` in the 75 Hz coarse stage). The target slot that predicts frame t
and the conditioning frame t are then at distance 0, so aligning accompaniment to vocal needs
one bias bucket, not counting hundreds of tokens. Causality still follows sequence order.

Codebook patterns (`pattern`, stored in the stage's config). "flat" is the layout above: one
target token per step, K * T_f steps. "delay" is MusicGen's delay pattern: the target part has
T_f + K - 1 steps and step s predicts codebook k of frame s - k for every k at once (K heads on
one hidden state), so codebook k+1 of a frame is predicted one step after codebook k and sees it.
The input of step s is the *sum* of the K embeddings of step s - 1's tokens; where frame s - k
is out of range (the first K - 1 steps for the later codebooks, the last K - 1 for the earlier
ones) codebook k holds its own delay pad id, and step 0's input is every pad (the delay layout's
BOS). The pads are K ids appended after the flat vocabulary, so flat ids never change.
A delay sequence is int64 [B, L, K]; a conditioning token fills column 0 and `NO_ID` the others
(`NO_ID` embeds to zero). Step s sits at frame s on the time axis (codebook 1's frame).

    10 s of coarse or fine: flat 3 000 target steps, delay 753 (750 + 4 - 1)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hafm_core import constants

PAD_ID = 0
NULL_ID = 1  # replaces every conditioning token in the unconditional (guidance) pass
BOS_ID = 2
N_SPECIAL = 3
NO_ID = -1  # delay sequences: an empty column of a conditioning row (embeds to zero)

STAGES = ("semantic", "coarse", "fine")
PATTERNS = constants.CODEBOOK_PATTERNS  # ("flat", "delay")


@dataclass(frozen=True)
class Stream:
    name: str
    card: int  # number of distinct local ids
    frame_rate_hz: int


@dataclass(frozen=True)
class StageLayout:
    """Where each stream's ids live and how a stage's sequence is laid out."""

    stage: str
    cond_streams: tuple[Stream, ...]
    target_streams: tuple[Stream, ...]
    pattern: str = "flat"  # "flat" or "delay" (see the module docstring)

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise ValueError(f"pattern={self.pattern!r} is not one of {PATTERNS}")

    @property
    def is_delay(self) -> bool:
        return self.pattern == "delay"

    @property
    def n_cond(self) -> int:
        return len(self.cond_streams)

    @property
    def n_target(self) -> int:
        """K: number of interleaved target streams (one output head each)."""
        return len(self.target_streams)

    @property
    def cond_offsets(self) -> tuple[int, ...]:
        offsets, start = [], N_SPECIAL
        for stream in self.cond_streams:
            offsets.append(start)
            start += stream.card
        return tuple(offsets)

    @property
    def target_offsets(self) -> tuple[int, ...]:
        offsets, start = [], N_SPECIAL + sum(s.card for s in self.cond_streams)
        for stream in self.target_streams:
            offsets.append(start)
            start += stream.card
        return tuple(offsets)

    @property
    def flat_vocab_size(self) -> int:
        """Specials and every stream's ids: the whole vocabulary of the flat pattern."""
        return N_SPECIAL + sum(s.card for s in self.cond_streams + self.target_streams)

    @property
    def delay_pad_ids(self) -> tuple[int, ...]:
        """Delay pattern: the pad id of each target codebook, after the flat vocabulary."""
        return tuple(range(self.flat_vocab_size, self.flat_vocab_size + self.n_target))

    @property
    def vocab_size(self) -> int:
        """Rows of the token embedding: the flat vocabulary, plus K delay pads for "delay"."""
        return self.flat_vocab_size + (self.n_target if self.is_delay else 0)

    @property
    def target_cards(self) -> tuple[int, ...]:
        return tuple(s.card for s in self.target_streams)

    @property
    def cond_frame_rate_hz(self) -> int:
        return self.cond_streams[0].frame_rate_hz

    @property
    def target_frame_rate_hz(self) -> int:
        return self.target_streams[0].frame_rate_hz

    def target_frames(self, cond_frames: int) -> int:
        """Target frames generated for `cond_frames` conditioning frames (50 -> 75 Hz: x1.5)."""
        return cond_frames * self.target_frame_rate_hz // self.cond_frame_rate_hz

    def n_slots(self, n_frames: int) -> int:
        """Target steps (sequence slots) of `n_frames` frames: K * T_f flat, T_f + K - 1 delay."""
        return n_frames + self.n_target - 1 if self.is_delay else n_frames * self.n_target

    def delay_valid(self, n_frames: int, device=None) -> torch.Tensor:
        """bool [T_f + K - 1, K]: True where step s of codebook k is a real frame (0 <= s-k < T_f)."""
        frame = torch.arange(self.n_slots(n_frames), device=device)[:, None] - torch.arange(self.n_target, device=device)
        return (frame >= 0) & (frame < n_frames)

    # --- building sequences ----------------------------------------------------------------
    def cond_tokens(self, streams: torch.Tensor) -> torch.Tensor:
        """Local ids int64 [B, n_cond, T_c] -> global ids int64 [B, n_cond * T_c], interleaved."""
        offsets = torch.tensor(self.cond_offsets, device=streams.device).view(1, -1, 1)
        return interleave(streams + offsets)

    def target_tokens(self, codes: torch.Tensor) -> torch.Tensor:
        """Local ids int64 [B, K, T_f] -> global ids of the target steps.

        flat: int64 [B, K * T_f], interleaved. delay: int64 [B, T_f + K - 1, K], step s holding
        codebook k of frame s - k, or codebook k's pad id where that frame is out of range.
        """
        offsets = torch.tensor(self.target_offsets, device=codes.device).view(1, -1, 1)
        if not self.is_delay:
            return interleave(codes + offsets)
        batch, n_streams, n_frames = codes.shape
        pads = torch.tensor(self.delay_pad_ids, device=codes.device)
        steps = pads.repeat(batch, self.n_slots(n_frames), 1)  # (B, S, K)
        for k in range(n_streams):
            steps[:, k:k + n_frames, k] = codes[:, k] + offsets[0, k]
        return steps

    def codes_from_steps(self, steps: torch.Tensor) -> torch.Tensor:
        """delay: global ids int64 [B, T_f + K - 1, K] -> local ids [B, K, T_f] (`target_tokens`'s inverse)."""
        n_frames = steps.shape[1] - self.n_target + 1
        return torch.stack([steps[:, k:k + n_frames, k] - offset for k, offset in enumerate(self.target_offsets)], 1)

    def start_input(self, batch: int, device=None) -> torch.Tensor:
        """The input of the first target step: BOS, int64 [B, 1] (flat); every delay pad, [B, 1, K] (delay)."""
        if self.is_delay:
            return torch.tensor(self.delay_pad_ids, device=device).repeat(batch, 1, 1)
        return torch.full((batch, 1), BOS_ID, dtype=torch.long, device=device)

    def cond_input(self, cond: torch.Tensor) -> torch.Tensor:
        """Conditioning ids [B, L_c] as sequence rows: unchanged (flat), [B, L_c, K] with `NO_ID`
        after column 0 (delay)."""
        if not self.is_delay:
            return cond
        empty = torch.full((*cond.shape, self.n_target - 1), NO_ID, dtype=cond.dtype, device=cond.device)
        return torch.cat([cond[..., None], empty], dim=-1)

    def input_sequence(self, cond: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Teacher-forcing input `[cond | BOS, target[:-1]]`.

        cond: global ids int64 [B, L_c]; target: `target_tokens`, [B, L_t] or [B, L_t, K].
        Returns int64 [B, L_c + L_t] (flat) or [B, L_c + L_t, K] (delay); slot L_c + i predicts
        target step i.
        """
        start = self.start_input(target.shape[0], target.device)
        return torch.cat([self.cond_input(cond), start, target[:, :-1]], dim=1)

    def positions(self, cond_frames: int, n_slots: int, device=None) -> torch.Tensor:
        """Time positions int64 [L_c + n_slots] on the target clock (see module docstring).

        Slot i of the target part (input BOS or target step i-1) carries the frame of the
        token it predicts: `i // K` (flat), `i`, codebook 1's frame (delay).
        """
        cond_frame = torch.arange(cond_frames, device=device)
        cond_pos = cond_frame * self.target_frame_rate_hz // self.cond_frame_rate_hz
        cond_pos = cond_pos.repeat_interleave(self.n_cond)
        target_pos = torch.arange(n_slots, device=device) // (1 if self.is_delay else self.n_target)
        return torch.cat([cond_pos, target_pos])

    def segments(self, cond_len: int, n_slots: int, device=None) -> torch.Tensor:
        """Segment ids int64 [L_c + n_slots]: 0 for conditioning, 1 for BOS and target."""
        return torch.cat([torch.zeros(cond_len, dtype=torch.long, device=device),
                          torch.ones(n_slots, dtype=torch.long, device=device)])


def interleave(streams: torch.Tensor) -> torch.Tensor:
    """int64 [B, K, T] -> [B, K * T], frame-major: stream k of frame t at index t * K + k."""
    batch, n_streams, n_frames = streams.shape
    return streams.transpose(1, 2).reshape(batch, n_frames * n_streams)


def deinterleave(tokens: torch.Tensor, n_streams: int) -> torch.Tensor:
    """int64 [B, K * T] -> [B, K, T]; the inverse of `interleave`."""
    batch, length = tokens.shape
    return tokens.view(batch, length // n_streams, n_streams).transpose(1, 2).contiguous()


def stage_layout(stage: str, semantic_vocab: int = constants.KMEANS_CLUSTERS,
                 codebook_size: int = constants.CODEBOOK_SIZE, pattern: str = "flat") -> StageLayout:
    """The layout of `stage` ('semantic', 'coarse' or 'fine') for the given vocabularies and pattern."""
    sem_rate, ac_rate = constants.SEMANTIC_FRAME_RATE_HZ, constants.ACOUSTIC_FRAME_RATE_HZ
    vocal = Stream("vocal_semantic", semantic_vocab, sem_rate)
    accompaniment = Stream("accompaniment_semantic", semantic_vocab, sem_rate)
    coarse = tuple(Stream(f"codebook_{k + 1}", codebook_size, ac_rate)
                   for k in range(constants.N_COARSE_CODEBOOKS))
    fine = tuple(Stream(f"codebook_{k + 1}", codebook_size, ac_rate)
                 for k in range(constants.N_COARSE_CODEBOOKS, constants.N_CODEBOOKS))
    if stage == "semantic":
        return StageLayout(stage, (vocal,), (accompaniment,), pattern)
    if stage == "coarse":
        return StageLayout(stage, (vocal, accompaniment), coarse, pattern)
    if stage == "fine":
        return StageLayout(stage, coarse, fine, pattern)
    raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
