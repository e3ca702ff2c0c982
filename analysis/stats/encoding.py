"""Turn a preference table into integer codes once, so every statistic can use bincount.

A judgment compares two systems; each unordered pair gets one canonical orientation
(`system` vs `opponent`) that every table in a report shares: systems are ordered as in
`hafm_core.constants.SYSTEMS` (three-stage first), unknown labels after them alphabetically,
and `system` is the earlier of the two. So "three-stage vs ground-truth" reports the rate at
which three-stage was preferred, the figure the paper gives as 51.5%.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.stats.validation import check_preferences
from hafm_core.constants import SYSTEMS


def system_order(labels: Sequence[str]) -> list[str]:
    """Sort system labels: protocol systems in `SYSTEMS` order, then the rest alphabetically."""
    known = {name: i for i, name in enumerate(SYSTEMS)}
    return sorted(set(labels), key=lambda s: (known.get(s, len(known)), str(s)))


@dataclass(frozen=True)
class EncodedJudgments:
    """Integer view of a preference table with N judgments, K systems and P observed pairs.

    systems: K labels in canonical order. pairs: P (system, opponent) label tuples.
    pair: int64 [N] index into `pairs`. system_won: bool [N], the pair's `system` was chosen.
    system_on_left: bool [N]. chose_left: bool [N].
    winner, loser: int64 [N] codes into `systems`.
    participant, excerpt: int64 [N] codes into `participants` and `excerpts`.
    """

    systems: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]
    pair: np.ndarray
    system_won: np.ndarray
    system_on_left: np.ndarray
    chose_left: np.ndarray
    winner: np.ndarray
    loser: np.ndarray
    participant: np.ndarray
    participants: tuple
    excerpt: np.ndarray
    excerpts: tuple

    @property
    def n(self) -> int:
        return int(self.pair.shape[0])

    def pair_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """(n, wins) per pair: int64 [P] each, wins counted for the pair's `system`."""
        n_pairs = len(self.pairs)
        n = np.bincount(self.pair, minlength=n_pairs)
        wins = np.bincount(self.pair, weights=self.system_won, minlength=n_pairs)
        return n.astype(np.int64), wins.astype(np.int64)


def encode_judgments(df: pd.DataFrame, what: str = "preferences") -> EncodedJudgments:
    """Validate `df` (see `check_preferences`) and encode it. O(N) after factorisation."""
    check_preferences(df, what)
    left_labels = df["system_left"].astype(str).to_numpy()
    right_labels = df["system_right"].astype(str).to_numpy()
    codes, uniques = pd.factorize(np.concatenate([left_labels, right_labels]))
    systems = system_order(uniques.tolist())
    rank = np.array([systems.index(u) for u in uniques], dtype=np.int64)
    n = len(df)
    left, right = rank[codes[:n]], rank[codes[n:]]
    chose_left = df["chosen"].astype(str).to_numpy() == "left"
    winner = np.where(chose_left, left, right)
    loser = np.where(chose_left, right, left)
    first = np.minimum(left, right)
    second = np.maximum(left, right)
    k = len(systems)
    pair_key, pair_keys = pd.factorize(first * k + second, sort=True)
    pairs = tuple((systems[key // k], systems[key % k]) for key in np.asarray(pair_keys))
    participant, participants = pd.factorize(df["participant"])
    excerpt, excerpts = pd.factorize(df["excerpt"])
    return EncodedJudgments(
        systems=tuple(systems),
        pairs=pairs,
        pair=pair_key.astype(np.int64),
        system_won=winner == first,
        system_on_left=left == first,
        chose_left=chose_left,
        winner=winner,
        loser=loser,
        participant=participant.astype(np.int64),
        participants=tuple(participants.tolist()),
        excerpt=excerpt.astype(np.int64),
        excerpts=tuple(excerpts.tolist()),
    )
