"""Training data of the cascade: token tensors per excerpt, cut into each stage's examples.

`TokenSet` is the pure-tensor entry point (tests build one from synthetic sequences, no audio).
`load_token_cache` reads the folder written by `hafm tokenize` (`hafm_core.tokens.cache`:
`tokens.jsonl` + one `.npz` per excerpt) and returns its train and validation splits.

Excerpts of different lengths lose nothing. Lengths count whole 40 ms units (2 semantic, 3
acoustic frames, so T_a stays exactly 3/2 T_s); tensors are padded to the longest excerpt and
`units` says how much of each row is real. Training (`CropSampler`) draws, at each step, one
length bucket with probability proportional to its size: excerpts longer than the crop length
give a random crop of it, shorter ones are trained at their own length, with excerpts of the
same length (never padded, so no padding needs masking). When the cache has no validation
excerpts, every `val_every`-th training excerpt in index order is held out: stable,
seed-independent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hafm_core import constants
from hafm_core.errors import DatasetError

SEMANTIC_PER_UNIT, ACOUSTIC_PER_UNIT = 2, 3  # frames per 40 ms at 50 Hz and 75 Hz


@dataclass(frozen=True)
class TokenSet:
    """Tokens of N excerpts, padded to the longest; `units` are the real lengths in 40 ms units."""

    vocal_semantic: torch.Tensor  # int64 [N, T_s]
    accompaniment_semantic: torch.Tensor  # int64 [N, T_s]
    accompaniment_codes: torch.Tensor | None = None  # int64 [N, 8, T_a]
    units: torch.Tensor | None = None  # int64 [N]; None: every row is T_s // 2 units long

    def __len__(self) -> int:
        return self.vocal_semantic.shape[0]

    def unit_lengths(self) -> torch.Tensor:
        if self.units is not None:
            return self.units
        return torch.full((len(self),), self.vocal_semantic.shape[1] // SEMANTIC_PER_UNIT, dtype=torch.int64)

    def subset(self, index: torch.Tensor) -> TokenSet:
        codes = self.accompaniment_codes
        return TokenSet(self.vocal_semantic[index], self.accompaniment_semantic[index],
                        None if codes is None else codes[index],
                        None if self.units is None else self.units[index])


@dataclass(frozen=True)
class StageExamples:
    """One stage's teacher-forcing pairs, in local ids, padded to the longest excerpt."""

    cond_streams: torch.Tensor  # int64 [N, n_cond, T_c]
    target_codes: torch.Tensor  # int64 [N, K, T_f]
    units: torch.Tensor | None = None  # int64 [N] real lengths in 40 ms units; None: all full
    cond_per_unit: int = SEMANTIC_PER_UNIT
    target_per_unit: int = SEMANTIC_PER_UNIT

    def __len__(self) -> int:
        return self.cond_streams.shape[0]

    def unit_lengths(self) -> torch.Tensor:
        if self.units is not None:
            return self.units
        return torch.full((len(self),), self.target_codes.shape[2] // self.target_per_unit, dtype=torch.int64)

    def window(self, index: torch.Tensor, offsets: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows `index`, `length` units from each row's `offsets` (units):
        (cond int64 [b, n_cond, length * cond_per_unit], target int64 [b, K, length * target_per_unit])."""
        def cut(tensor: torch.Tensor, per_unit: int) -> torch.Tensor:
            rows = tensor[index]  # (b, S, T)
            frames = offsets[:, None] * per_unit + torch.arange(length * per_unit)  # (b, length * per_unit)
            return torch.gather(rows, 2, frames[:, None, :].expand(-1, rows.shape[1], -1))

        return cut(self.cond_streams, self.cond_per_unit), cut(self.target_codes, self.target_per_unit)


class CropSampler:
    """Draws training batches of equal-length windows from excerpts of any length.

    Each excerpt's window length is min(its length, `crop_units`); excerpts with the same window
    length form a bucket. A draw picks one bucket with probability proportional to its size
    (through one uniformly drawn excerpt), then `batch` rows of it with replacement, then, for
    rows longer than the window, a uniform random offset. With one bucket and nothing to crop
    the draws are exactly `torch.randint(N, (batch,))`, as before buckets existed.
    """

    def __init__(self, examples: StageExamples, crop_units: int | None = None):
        units = examples.unit_lengths()
        if len(units) == 0:
            raise DatasetError("no training excerpts")
        self.examples = examples
        self.units = units
        self.crop_units = int(units.max()) if crop_units is None else int(crop_units)
        self.windows = units.clamp(max=self.crop_units)
        self.buckets = {int(length): torch.nonzero(self.windows == length)[:, 0]
                        for length in torch.unique(self.windows)}
        self.crops = bool((units > self.crop_units).any())

    def describe(self) -> dict:
        """Counts for the log and the CLI: nothing is dropped, and this says how each excerpt is used."""
        return {"n_excerpts": len(self.units), "crop_s": self.crop_units * constants.UNIT_S,
                "n_cropped": int((self.units > self.crop_units).sum()),
                "n_shorter": int((self.units < self.crop_units).sum()),
                "bucket_lengths_s": [length * constants.UNIT_S for length in sorted(self.buckets)]}

    def draw(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, int]:
        """(row index int64 [batch], offsets int64 [batch] in units, window length in units)."""
        if len(self.buckets) == 1:
            (length, members), = self.buckets.items()
            index = torch.randint(len(members), (batch,), generator=generator)
            index = index if len(members) == len(self.units) else members[index]
        else:
            anchor = int(torch.randint(len(self.units), (1,), generator=generator))
            length = int(self.windows[anchor])
            members = self.buckets[length]
            index = members[torch.randint(len(members), (batch,), generator=generator)]
        offsets = torch.zeros(batch, dtype=torch.int64)
        if self.crops:
            room = (self.units[index] - length + 1).double()
            offsets = (torch.rand(batch, generator=generator, dtype=torch.float64) * room).long()
        return index, offsets, length

    def evaluation_batches(self, batch: int):
        """Every excerpt once, from its start, bucket by bucket: (index, offsets, length) triples."""
        for length, members in sorted(self.buckets.items()):
            for start in range(0, len(members), batch):
                index = members[start:start + batch]
                yield index, torch.zeros(len(index), dtype=torch.int64), length


def stage_examples(stage: str, tokens: TokenSet) -> StageExamples:
    """Conditioning and target streams of `stage` (see `hafm_core.patterns`)."""
    n_coarse = constants.N_COARSE_CODEBOOKS
    units = tokens.unit_lengths()
    if stage == "semantic":
        return StageExamples(tokens.vocal_semantic[:, None], tokens.accompaniment_semantic[:, None], units)
    codes = tokens.accompaniment_codes
    if codes is None:
        raise DatasetError(f"the {stage} stage needs accompaniment_codes, which the token set lacks")
    if stage == "coarse":
        cond = torch.stack([tokens.vocal_semantic, tokens.accompaniment_semantic], dim=1)
        return StageExamples(cond, codes[:, :n_coarse], units, SEMANTIC_PER_UNIT, ACOUSTIC_PER_UNIT)
    if stage == "fine":
        return StageExamples(codes[:, :n_coarse], codes[:, n_coarse:constants.N_CODEBOOKS], units,
                             ACOUSTIC_PER_UNIT, ACOUSTIC_PER_UNIT)
    raise ValueError(f"unknown stage {stage!r}")


def split(tokens: TokenSet, val_every: int = 10) -> tuple[TokenSet, TokenSet]:
    """(train, validation): excerpt i goes to validation when i % val_every == val_every - 1.

    With fewer than `val_every` excerpts the last one is the validation set.
    """
    n = len(tokens)
    if n < 2:
        raise DatasetError(f"need at least 2 excerpts to hold one out for validation, got {n}")
    is_val = torch.arange(n) % val_every == val_every - 1
    if not is_val.any():
        is_val[-1] = True
    return tokens.subset(torch.nonzero(~is_val)[:, 0]), tokens.subset(torch.nonzero(is_val)[:, 0])


def load_token_cache(path: str | Path, val_every: int = 10) -> tuple[TokenSet, TokenSet]:
    """(train, validation) token sets of a `hafm tokenize` cache folder."""
    from hafm_core.tokens import cache

    train = [tokens for _, tokens in cache.load_split(path, "train")]
    validation = [tokens for _, tokens in cache.load_split(path, "validation")]
    if not train:
        raise DatasetError(f"token cache {path} has no train-split excerpts; tokenize a manifest with "
                           "a train split (`hafm data prepare`, then `hafm tokenize`)")
    if validation:
        return _stack(train), _stack(validation)
    return split(_stack(train), val_every)


def _stack(excerpts: list) -> TokenSet:
    """Cached `ExcerptTokens` -> TokenSet padded to the longest excerpt's whole 40 ms units."""
    units = [min(len(e.semantic_vocal) // SEMANTIC_PER_UNIT, e.acoustic_accompaniment.shape[1] // ACOUSTIC_PER_UNIT)
             for e in excerpts]
    if min(units) == 0:
        raise DatasetError("a cached excerpt is shorter than 40 ms (one token unit)")
    longest = max(units)

    def stack(arrays, frames_per_unit: int) -> torch.Tensor:
        arrays = list(arrays)
        out = np.zeros((len(arrays), *arrays[0].shape[:-1], longest * frames_per_unit), dtype=np.int64)
        for row, (array, n) in enumerate(zip(arrays, units)):
            out[row, ..., : n * frames_per_unit] = array[..., : n * frames_per_unit]
        return torch.from_numpy(out)

    return TokenSet(stack((e.semantic_vocal for e in excerpts), SEMANTIC_PER_UNIT),
                    stack((e.semantic_accompaniment for e in excerpts), SEMANTIC_PER_UNIT),
                    stack((e.acoustic_accompaniment for e in excerpts), ACOUSTIC_PER_UNIT),
                    torch.tensor(units, dtype=torch.int64))
