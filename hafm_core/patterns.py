"""Sequence layout of the three cascade stages: id ranges, interleaving, positions.

Every stage sees one flat sequence `[conditioning | BOS, target[:-1]]`:

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
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hafm_core import constants

PAD_ID = 0
NULL_ID = 1  # replaces every conditioning token in the unconditional (guidance) pass
BOS_ID = 2
N_SPECIAL = 3

STAGES = ("semantic", "coarse", "fine")


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
    def vocab_size(self) -> int:
        return N_SPECIAL + sum(s.card for s in self.cond_streams + self.target_streams)

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

    # --- building sequences ----------------------------------------------------------------
    def cond_tokens(self, streams: torch.Tensor) -> torch.Tensor:
        """Local ids int64 [B, n_cond, T_c] -> global ids int64 [B, n_cond * T_c], interleaved."""
        offsets = torch.tensor(self.cond_offsets, device=streams.device).view(1, -1, 1)
        return interleave(streams + offsets)

    def target_tokens(self, codes: torch.Tensor) -> torch.Tensor:
        """Local ids int64 [B, K, T_f] -> global ids int64 [B, K * T_f], interleaved."""
        offsets = torch.tensor(self.target_offsets, device=codes.device).view(1, -1, 1)
        return interleave(codes + offsets)

    def input_sequence(self, cond: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Teacher-forcing input `[cond | BOS, target[:-1]]`.

        cond: global ids int64 [B, L_c]; target: global ids int64 [B, L_t].
        Returns int64 [B, L_c + L_t]; slot L_c + i predicts target token i.
        """
        bos = torch.full_like(target[:, :1], BOS_ID)
        return torch.cat([cond, bos, target[:, :-1]], dim=1)

    def positions(self, cond_frames: int, n_slots: int, device=None) -> torch.Tensor:
        """Time positions int64 [L_c + n_slots] on the target clock (see module docstring).

        Slot i of the target part (input BOS or target token i-1) carries the frame of the
        token it predicts, `i // K`.
        """
        cond_frame = torch.arange(cond_frames, device=device)
        cond_pos = cond_frame * self.target_frame_rate_hz // self.cond_frame_rate_hz
        cond_pos = cond_pos.repeat_interleave(self.n_cond)
        target_pos = torch.arange(n_slots, device=device) // self.n_target
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
                 codebook_size: int = constants.CODEBOOK_SIZE) -> StageLayout:
    """The layout of `stage` ('semantic', 'coarse' or 'fine') for the given vocabularies."""
    sem_rate, ac_rate = constants.SEMANTIC_FRAME_RATE_HZ, constants.ACOUSTIC_FRAME_RATE_HZ
    vocal = Stream("vocal_semantic", semantic_vocab, sem_rate)
    accompaniment = Stream("accompaniment_semantic", semantic_vocab, sem_rate)
    coarse = tuple(Stream(f"codebook_{k + 1}", codebook_size, ac_rate)
                   for k in range(constants.N_COARSE_CODEBOOKS))
    fine = tuple(Stream(f"codebook_{k + 1}", codebook_size, ac_rate)
                 for k in range(constants.N_COARSE_CODEBOOKS, constants.N_CODEBOOKS))
    if stage == "semantic":
        return StageLayout(stage, (vocal,), (accompaniment,))
    if stage == "coarse":
        return StageLayout(stage, (vocal, accompaniment), coarse)
    if stage == "fine":
        return StageLayout(stage, coarse, fine)
    raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
