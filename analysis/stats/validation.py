"""Checks at the boundary of every statistic: columns, labels, non-empty groups.

Each failure raises `AnalysisInputError` naming the column, the value or the group, so a
researcher who feeds a malformed export learns what to fix instead of reading a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from hafm_core.errors import HafmError

PREFERENCE_COLUMNS = ("participant", "excerpt", "system_left", "system_right", "chosen")
RATING_COLUMNS = ("participant", "excerpt", "system", "attribute", "score")
SIDES = ("left", "right")
# The listener page's rating scale ("Very poor" 1 .. "Excellent" 5, listening/views/listener.py).
RATING_SCALE = (1, 5)


class AnalysisInputError(HafmError):
    """Judgments that cannot be analysed: a missing column, an unknown label, an empty group."""


def require_columns(df: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise unless `df` has every column in `columns`; `what` names the table."""
    if not isinstance(df, pd.DataFrame):
        raise AnalysisInputError(f"{what}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise AnalysisInputError(
            f"{what}: missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"found {', '.join(repr(str(c)) for c in df.columns) or 'none'}"
        )


def require_rows(df: pd.DataFrame, what: str) -> None:
    """Raise if `df` has no rows."""
    if len(df) == 0:
        raise AnalysisInputError(f"{what}: no rows to analyse")


def label_codes(series: pd.Series) -> tuple[np.ndarray, list[str]]:
    """int64 [N] codes and the labels (as str) of a label column; O(N) on categoricals."""
    codes, uniques = pd.factorize(series)
    return codes.astype(np.int64), [str(u) for u in np.asarray(uniques)]


def shared_codes(a: pd.Series, b: pd.Series) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Codes of two label columns in one label space: (codes_a, codes_b, labels)."""
    codes_a, labels_a = label_codes(a)
    codes_b, labels_b = label_codes(b)
    labels = sorted(set(labels_a) | set(labels_b))
    index = {label: i for i, label in enumerate(labels)}
    map_a = np.array([index[x] for x in labels_a], dtype=np.int64)
    map_b = np.array([index[x] for x in labels_b], dtype=np.int64)
    return map_a[codes_a], map_b[codes_b], labels


def _require_no_missing(df: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    for column in columns:
        missing = df[column].isna().to_numpy()
        if missing.any():
            row = int(np.flatnonzero(missing)[0])
            raise AnalysisInputError(
                f"{what}: column {column!r} is empty in {int(missing.sum())} row(s), first at row {row}"
            )


def check_preferences(df: pd.DataFrame, what: str = "preferences") -> None:
    """Validate a preference export (one row per 2AFC judgment).

    Requires the columns `participant, excerpt, system_left, system_right, chosen`, no empty
    cells in them, `chosen` in {left, right} and two different systems on each row.
    """
    require_columns(df, PREFERENCE_COLUMNS, what)
    require_rows(df, what)
    _require_no_missing(df, PREFERENCE_COLUMNS, what)
    chosen_code, chosen_labels = label_codes(df["chosen"])
    bad_label = ~np.isin(np.array(chosen_labels, dtype=object), SIDES)
    if bad_label.any():
        bad = bad_label[chosen_code]
        labels = sorted(np.array(chosen_labels, dtype=object)[bad_label].tolist())[:5]
        raise AnalysisInputError(
            f"{what}: column 'chosen' must be 'left' or 'right'; found {labels} "
            f"in {int(bad.sum())} row(s), first at row {int(np.flatnonzero(bad)[0])}"
        )
    left, right, labels = shared_codes(df["system_left"], df["system_right"])
    same = left == right
    if same.any():
        row = int(np.flatnonzero(same)[0])
        raise AnalysisInputError(
            f"{what}: system_left equals system_right ({labels[left[row]]!r}) "
            f"in {int(same.sum())} row(s), first at row {row}; drop catch or practice rows first"
        )


def check_ratings(df: pd.DataFrame, what: str = "ratings") -> None:
    """Validate a rating export: the rating columns, no empty cells, numeric scores."""
    require_columns(df, RATING_COLUMNS, what)
    require_rows(df, what)
    _require_no_missing(df, RATING_COLUMNS, what)
    if not pd.api.types.is_numeric_dtype(df["score"]):
        raise AnalysisInputError(f"{what}: column 'score' must be numeric, got {df['score'].dtype}")


def check_rating_scale(df: pd.DataFrame, what: str = "ratings") -> None:
    """Raise, naming the rows, when a listener score lies outside `RATING_SCALE` (a rating
    export from the listening site; simulations of latent scores may not use it)."""
    score = df["score"].to_numpy(np.float64)
    low, high = RATING_SCALE
    outside = np.flatnonzero((score < low) | (score > high))
    if outside.size:
        shown = ", ".join(f"row {int(i)} ({score[i]:g})" for i in outside[:5])
        more = f" and {outside.size - 5} more" if outside.size > 5 else ""
        raise AnalysisInputError(
            f"{what}: {outside.size} score(s) outside the rating scale {low}..{high}: {shown}{more} "
            "(rows count data lines from 0)")
