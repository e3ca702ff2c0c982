"""Exclusion rules on the listening exports' columns, and their record."""

import pandas as pd
import pytest

from analysis.stats import AnalysisInputError
from analysis.stats.exclusions import ExclusionRules, apply_exclusions


def tables():
    prefs = pd.DataFrame({
        "participant": ["a", "a", "b", "b", "c", "c"], "excerpt": ["x", "y"] * 3,
        "system_left": ["three-stage", "random"] * 3, "system_right": ["random", "three-stage"] * 3,
        "chosen": ["left", "right", "left", "left", "right", "right"],
        "is_catch": [False, True, False, False, False, True],
        "catch_passed": [None, True, None, None, None, False],
    })
    ratings = pd.DataFrame({"participant": ["a", "b", "c"], "excerpt": "x", "system": "random",
                            "attribute": "overall coherence", "score": [1, 2, 3]})
    participants = pd.DataFrame({
        "participant": ["a", "b", "c"], "status": ["completed", "returned", "completed"],
        "screening": ["passed", "failed", "not required"], "catch_accuracy": [1.0, None, 0.0],
    })
    return prefs, ratings, participants


def test_catch_rows_never_count_and_rules_are_recorded():
    prefs, ratings, participants = tables()
    result = apply_exclusions(prefs, ratings, participants, ExclusionRules(min_catch_accuracy=1.0))
    assert list(result.preferences.participant) == ["a", "b", "b"]
    assert list(result.ratings.participant) == ["a", "b"]
    record = result.record
    assert record["catch_trials_set_aside"] == 2 and record["excluded_participants"] == ["c"]
    assert record["before"] == {"judgments": 4, "ratings": 3, "participants": 3}
    assert record["after"] == {"judgments": 3, "ratings": 2, "participants": 2}


def test_screening_and_completion_use_the_participants_export():
    prefs, ratings, participants = tables()
    rules = ExclusionRules(exclude_failed_screening=True, completed_only=True)
    result = apply_exclusions(prefs, ratings, participants, rules)
    assert result.record["excluded_participants"] == ["b"]
    assert [r["rule"] for r in result.record["applied"]] == ["failed headphone screening", "did not complete the study"]
    with pytest.raises(AnalysisInputError, match="participants.csv"):
        apply_exclusions(prefs, ratings, None, rules)


def test_catch_rule_without_catch_information_names_what_is_missing():
    prefs, _, _ = tables()
    with pytest.raises(AnalysisInputError, match="catch_passed"):
        apply_exclusions(prefs.drop(columns=["is_catch", "catch_passed"]), rules=ExclusionRules(min_catch_accuracy=0.5))
