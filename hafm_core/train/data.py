"""Training data of the cascade: token tensors per excerpt, cut into each stage's examples.

`TokenSet` is the pure-tensor entry point (tests build one from synthetic sequences, no audio).
`load_token_cache` reads the folder written by `hafm tokenize` (`hafm_core.tokens.cache`:
`tokens.jsonl` + one `.npz` per excerpt) and returns its train and validation splits.

Excerpts of different lengths are cut to the shortest, on whole 40 ms units (2 semantic, 3
acoustic frames), so T_a stays exactly 3/2 T_s. When the cache has no validation excerpts,
every `val_every`-th training excerpt in index order is held out: stable, seed-independent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hafm_core import constants
from hafm_core.errors import DatasetError


@dataclass(frozen=True)
class TokenSet:
    """Tokens of N excerpts of equal length."""

    vocal_semantic: torch.Tensor  # int64 [N, T_s]
    accompaniment_semantic: torch.Tensor  # int64 [N, T_s]
    accompaniment_codes: torch.Tensor | None = None  # int64 [N, 8, T_a]

    def __len__(self) -> int:
        return self.vocal_semantic.shape[0]

    def subset(self, index: torch.Tensor) -> TokenSet:
        codes = self.accompaniment_codes
        return TokenSet(self.vocal_semantic[index], self.accompaniment_semantic[index],
                        None if codes is None else codes[index])


@dataclass(frozen=True)
class StageExamples:
    """One stage's teacher-forcing pairs, in local ids."""

    cond_streams: torch.Tensor  # int64 [N, n_cond, T_c]
    target_codes: torch.Tensor  # int64 [N, K, T_f]

    def __len__(self) -> int:
        return self.cond_streams.shape[0]


def stage_examples(stage: str, tokens: TokenSet) -> StageExamples:
    """Conditioning and target streams of `stage` (see `hafm_core.patterns`)."""
    n_coarse = constants.N_COARSE_CODEBOOKS
    if stage == "semantic":
        return StageExamples(tokens.vocal_semantic[:, None], tokens.accompaniment_semantic[:, None])
    codes = tokens.accompaniment_codes
    if codes is None:
        raise DatasetError(f"the {stage} stage needs accompaniment_codes, which the token set lacks")
    if stage == "coarse":
        cond = torch.stack([tokens.vocal_semantic, tokens.accompaniment_semantic], dim=1)
        return StageExamples(cond, codes[:, :n_coarse])
    if stage == "fine":
        return StageExamples(codes[:, :n_coarse], codes[:, n_coarse:constants.N_CODEBOOKS])
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
    """Cached `ExcerptTokens` -> TokenSet, cut to the shortest excerpt's whole 40 ms units."""
    units = min(len(e.semantic_vocal) // 2 for e in excerpts)
    if units == 0:
        raise DatasetError("a cached excerpt is shorter than 40 ms (one token unit)")

    def stack(arrays) -> torch.Tensor:
        return torch.from_numpy(np.stack(list(arrays)).astype(np.int64))

    return TokenSet(stack(e.semantic_vocal[: 2 * units] for e in excerpts),
                    stack(e.semantic_accompaniment[: 2 * units] for e in excerpts),
                    stack(e.acoustic_accompaniment[:, : 3 * units] for e in excerpts))
