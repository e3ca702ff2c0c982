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
    chosen = df["chosen"].astype(str).to_numpy()
    bad = ~np.isin(chosen, SIDES)
    if bad.any():
        labels = sorted(set(chosen[bad].tolist()))[:5]
        raise AnalysisInputError(
            f"{what}: column 'chosen' must be 'left' or 'right'; found {labels} "
            f"in {int(bad.sum())} row(s), first at row {int(np.flatnonzero(bad)[0])}"
        )
    same = df["system_left"].to_numpy() == df["system_right"].to_numpy()
    if same.any():
        row = int(np.flatnonzero(same)[0])
        raise AnalysisInputError(
            f"{what}: system_left equals system_right ({df['system_left'].iloc[row]!r}) "
            f"in {int(same.sum())} row(s), first at row {row}; drop catch or practice rows first"
        )


def check_ratings(df: pd.DataFrame, what: str = "ratings") -> None:
    """Validate a rating export: the rating columns, no empty cells, numeric scores."""
    require_columns(df, RATING_COLUMNS, what)
    require_rows(df, what)
    _require_no_missing(df, RATING_COLUMNS, what)
    if not pd.api.types.is_numeric_dtype(df["score"]):
        raise AnalysisInputError(f"{what}: column 'score' must be numeric, got {df['score'].dtype}")


def check_systems_present(df: pd.DataFrame, systems: Iterable[str], what: str) -> None:
    """Raise if a system named by the caller never appears in the preference table."""
    present = set(pd.unique(df["system_left"])) | set(pd.unique(df["system_right"]))
    for system in systems:
        if system not in present:
            raise AnalysisInputError(
                f"{what}: no judgment involves system {system!r}; present: {sorted(map(str, present))}"
            )
