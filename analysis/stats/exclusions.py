"""Which judgments enter the analysis: catch trials set aside, listeners excluded, recorded.

Catch trials (`is_catch` true in the listening export) never count as preferences; they
measure attention. Rules that exclude whole listeners are opt-in and every report records
them with their counts, so a reader sees exactly what was left out and why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from analysis.stats.validation import AnalysisInputError, label_codes, require_columns


@dataclass(frozen=True)
class ExclusionRules:
    """min_catch_accuracy: exclude listeners whose catch-trial accuracy is below it (1.0:
    any failed catch trial excludes). exclude_failed_screening: exclude listeners whose
    headphone screening failed. completed_only: keep only listeners who completed.
    exclude_flagged: exclude listeners with any true `flag_*` column in the participants table
    (flag_too_fast, flag_no_audio, flag_duplicate_sequence, ...); no such column: none flagged."""

    min_catch_accuracy: float | None = None
    exclude_failed_screening: bool = False
    completed_only: bool = False
    exclude_flagged: bool = False


@dataclass(frozen=True)
class Filtered:
    """The analysed tables, the catch trials set aside, and the record of what was removed."""

    preferences: pd.DataFrame
    ratings: pd.DataFrame | None
    catch_trials: pd.DataFrame
    record: dict


def flag_column(series: pd.Series) -> np.ndarray:
    """A boolean column from a CSV (True/False, 1/0, 'true'/'false'); missing is False."""
    if series.dtype == bool:
        return series.to_numpy()
    text = series.astype("string").str.strip().str.lower()
    return text.isin(["true", "1", "1.0", "yes"]).fillna(False).to_numpy(bool)


def catch_accuracy(catch_trials: pd.DataFrame, participants: pd.DataFrame | None) -> pd.Series:
    """Catch-trial accuracy per participant: from the catch rows' `catch_passed`, else from
    the participants export's `catch_accuracy` column. Listeners without catch trials: NaN."""
    if len(catch_trials) and "catch_passed" in catch_trials.columns:
        passed = pd.Series(flag_column(catch_trials["catch_passed"]), index=catch_trials.index)
        return passed.groupby(catch_trials["participant"].astype(str)).mean()
    if participants is not None and "catch_accuracy" in participants.columns:
        table = participants.dropna(subset=["catch_accuracy"])
        return pd.Series(table["catch_accuracy"].astype(float).to_numpy(), index=table["participant"].astype(str))
    raise AnalysisInputError(
        "catch-trial exclusion needs catch rows with a 'catch_passed' column in preferences, "
        "or a participants table with a 'catch_accuracy' column"
    )


def _screening_failed(participants: pd.DataFrame) -> set[str]:
    if "screening" in participants.columns:
        failed = participants["screening"].astype(str).str.lower() == "failed"
    elif "screening_passed" in participants.columns:
        values = participants["screening_passed"].astype("string").str.lower()
        failed = values.isin(["false", "0", "0.0"]).fillna(False)
    else:
        raise AnalysisInputError("participants: screening exclusion needs a 'screening' or 'screening_passed' column")
    failed = failed | (participants.get("status", pd.Series("", index=participants.index)) == "screened_out")
    return set(participants.loc[failed.to_numpy(bool), "participant"].astype(str))


def flagged_participants(participants: pd.DataFrame) -> tuple[set[str], list[str]]:
    """Listeners with any true `flag_*` column, and the flag columns found (none: nobody)."""
    columns = sorted(c for c in participants.columns if str(c).startswith("flag_"))
    flagged = np.zeros(len(participants), dtype=bool)
    for column in columns:
        flagged |= flag_column(participants[column])
    return set(participants.loc[flagged, "participant"].astype(str)), columns


def _in_set(series: pd.Series, ids: set[str]) -> np.ndarray:
    """bool [N]: the row's label (as str) is in `ids`; integer work only."""
    codes, labels = label_codes(series)
    return np.isin(np.array(labels, dtype=object), list(ids))[codes] if ids else np.zeros(len(series), bool)


def _count_labels(series: pd.Series) -> int:
    return len(label_codes(series)[1])


def apply_exclusions(
    preferences: pd.DataFrame,
    ratings: pd.DataFrame | None = None,
    participants: pd.DataFrame | None = None,
    rules: ExclusionRules | None = None,
) -> Filtered:
    """Set catch trials aside, apply `rules`, and record every count."""
    rules = rules or ExclusionRules()
    require_columns(preferences, ["participant"], "preferences")
    is_catch = flag_column(preferences["is_catch"]) if "is_catch" in preferences.columns else np.zeros(len(preferences), bool)
    catch_trials = preferences[is_catch]
    kept = preferences[~is_catch]
    before = {
        "judgments": int(len(kept)),
        "ratings": int(len(ratings)) if ratings is not None else 0,
        "participants": _count_labels(kept["participant"]),
    }
    applied, excluded = [], set()
    if rules.min_catch_accuracy is not None:
        accuracy = catch_accuracy(catch_trials, participants)
        ids = set(accuracy.index[accuracy < rules.min_catch_accuracy - 1e-12])
        applied.append({"rule": "catch accuracy below threshold", "threshold": rules.min_catch_accuracy,
                        "participants": len(ids)})
        excluded |= ids
    if rules.exclude_failed_screening or rules.completed_only or rules.exclude_flagged:
        if participants is None:
            raise AnalysisInputError("screening, completion and flag exclusions need the participants table "
                                     "(participants.csv, --participants)")
        require_columns(participants, ["participant"], "participants")
    if rules.exclude_failed_screening:
        ids = _screening_failed(participants)
        applied.append({"rule": "failed headphone screening", "participants": len(ids)})
        excluded |= ids
    if rules.completed_only:
        require_columns(participants, ["status"], "participants")
        ids = set(participants.loc[participants["status"] != "completed", "participant"].astype(str))
        applied.append({"rule": "did not complete the study", "participants": len(ids)})
        excluded |= ids
    if rules.exclude_flagged:
        ids, columns = flagged_participants(participants)
        applied.append({"rule": "flagged by the integrity checks (any true flag_* column)",
                        "columns": columns, "participants": len(ids)})
        excluded |= ids
    if excluded:
        kept = kept[~_in_set(kept["participant"], excluded)]
        if ratings is not None:
            ratings = ratings[~_in_set(ratings["participant"], excluded)]
    record = {
        "rules": asdict(rules),
        "applied": applied,
        "catch_trials_set_aside": int(is_catch.sum()),
        "excluded_participants": sorted(excluded),
        "before": before,
        "after": {
            "judgments": int(len(kept)),
            "ratings": int(len(ratings)) if ratings is not None else 0,
            "participants": _count_labels(kept["participant"]),
        },
    }
    return Filtered(preferences=kept, ratings=ratings, catch_trials=catch_trials, record=record)
