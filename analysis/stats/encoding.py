"""Turn a preference table into integer codes once, so every statistic can use bincount.

A judgment compares two systems; each unordered pair gets one canonical orientation
(`system` vs `opponent`) that every table in a report shares: systems are ordered as in
`hafm_core.constants.SYSTEMS` (three-stage first), unknown labels after them alphabetically,
and `system` is the earlier of the two. So "three-stage vs ground-truth" reports the rate at
which three-stage was preferred, the figure the paper gives as 51.5%.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.stats.validation import check_preferences, label_codes, shared_codes
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
    """Validate `df` (see `check_preferences`) and encode it. O(N) after factorisation, and
    O(N) integer work only when the label columns are categoricals (see `as_categories`).
    Listeners and excerpts are numbered in sorted label order, never in order of appearance,
    so a seeded cluster bootstrap gives the same interval however the rows are ordered (the
    dashboard reads them unordered, the exports by listener)."""
    check_preferences(df, what)
    left_raw, right_raw, labels = shared_codes(df["system_left"], df["system_right"])
    systems = system_order(labels)
    rank = np.array([systems.index(label) for label in labels], dtype=np.int64)
    left, right = rank[left_raw], rank[right_raw]
    chosen_code, chosen_labels = label_codes(df["chosen"])
    chose_left = (np.array(chosen_labels, dtype=object) == "left")[chosen_code]
    winner = np.where(chose_left, left, right)
    loser = np.where(chose_left, right, left)
    first = np.minimum(left, right)
    second = np.maximum(left, right)
    k = len(systems)
    pair_key, pair_keys = pd.factorize(first * k + second, sort=True)
    pairs = tuple((systems[key // k], systems[key % k]) for key in np.asarray(pair_keys))
    participant, participants = pd.factorize(df["participant"], sort=True)
    excerpt, excerpts = pd.factorize(df["excerpt"], sort=True)
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
        participants=tuple(np.asarray(participants).tolist()),
        excerpt=excerpt.astype(np.int64),
        excerpts=tuple(np.asarray(excerpts).tolist()),
    )


def attribute_systems(attribute: pd.Series, system: pd.Series
                      ) -> Iterator[tuple[str, np.ndarray, np.ndarray, list[str]]]:
    """The ratings of each attribute, in sorted attribute order, with their systems coded in
    canonical order (`system_order`), as every rating statistic needs them.

    Yields:
        (attribute, rows: bool [N] selecting its ratings, system: int64 [rows.sum()] codes into
        `systems`, systems: the K systems the attribute rates, canonically ordered).
    """
    attribute_code, attributes = label_codes(attribute)
    system_all, system_labels = label_codes(system)
    for a in np.argsort(attributes):
        rows = attribute_code == a
        present = np.unique(system_all[rows])
        systems = system_order([system_labels[i] for i in present])
        rank = np.full(len(system_labels), -1, dtype=np.int64)
        rank[present] = [systems.index(system_labels[i]) for i in present]
        yield attributes[a], rows, rank[system_all[rows]], systems


def as_categories(df: pd.DataFrame, columns) -> pd.DataFrame:
    """A copy of `df` with the label `columns` as pandas categoricals (labels as str), so
    every later factorisation is a pass over integer codes instead of a string hash."""
    out = df.copy()
    for column in columns:
        if column not in out.columns or isinstance(out[column].dtype, pd.CategoricalDtype):
            continue
        categorical = out[column].astype("category")
        labels = [str(c) for c in categorical.cat.categories]
        if len(set(labels)) == len(labels):  # e.g. ints and strs that print alike merge below
            out[column] = categorical.cat.rename_categories(labels)
        else:
            out[column] = out[column].astype(str).astype("category")
    return out


def combined_codes(*codes: np.ndarray) -> np.ndarray:
    """int64 [N] dense code of the combination of several int64 [N] code arrays, numbered in
    the sorted order of the combinations (independent of row order)."""
    key = np.zeros_like(codes[0])
    for code in codes:
        key = key * (int(code.max()) + 1) + code
    return pd.factorize(key, sort=True)[0].astype(np.int64)
