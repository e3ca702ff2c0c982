"""`hafm analyze` as a user runs it: CSVs in, JSON or an offline HTML report out."""

import json
import os

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from statsmodels.stats.proportion import proportion_confint

from analysis.report import analysis_tables_html
from analysis.stats.study import AnalysisOptions, analyze_study
from analysis.synthetic import SyntheticStudyConfig, synthetic_study
from hafm_core.cli import main
from hafm_core.constants import PAPER_PREFERENCE_VS_GROUND_TRUTH


@pytest.fixture
def exports(tmp_path):
    study = synthetic_study(SyntheticStudyConfig(n_judgments=900, n_participants=30, n_rating_blocks=60, seed=11))
    prefs, ratings = tmp_path / "preferences.csv", tmp_path / "ratings.csv"
    study.preferences.to_csv(prefs, index=False)
    study.ratings.to_csv(ratings, index=False)
    return prefs, ratings, study


def run_json(capsys, *argv):
    assert main(["analyze", *map(str, argv), "--json", "--n-boot", "200"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_pairs_match_counts_and_references(capsys, exports):
    prefs, ratings, study = exports
    out = run_json(capsys, prefs, "--ratings", ratings)
    df = study.preferences
    chosen = np.where(df.chosen == "left", df.system_left, df.system_right)
    assert {(p["system"], p["opponent"]) for p in out["pairs"]} == {
        ("three-stage", "ground-truth"), ("three-stage", "two-stage"), ("three-stage", "random")}
    for pair in out["pairs"]:
        assert {"system", "opponent", "n", "wins", "rate", "ci_low", "ci_high", "p_value", "method", "ci_low_wilson",
                "ci_high_wilson", "p_value_binomial"} <= set(pair)
        involved = df.system_left.isin([pair["system"], pair["opponent"]]) & df.system_right.isin(
            [pair["system"], pair["opponent"]])
        n, wins = int(involved.sum()), int((chosen[involved] == pair["system"]).sum())
        assert (pair["n"], pair["wins"]) == (n, wins)
        assert pair["rate"] == pytest.approx(wins / n)
        # The independent-judgment figures keep their references under labelled keys; the
        # headline ci/p are the clustered ones (checked against statsmodels in test_clustered).
        assert (pair["ci_low_wilson"], pair["ci_high_wilson"]) == pytest.approx(
            proportion_confint(wins, n, method="wilson"))
        assert pair["p_value_binomial"] == pytest.approx(binomtest(wins, n, 0.5).pvalue)
        assert "two-way cluster-robust" in pair["method"]
        assert pair["ci_high"] - pair["ci_low"] > pair["ci_high_wilson"] - pair["ci_low_wilson"]
    for key in ("rating_comparisons", "non_inferiority", "side_bias", "bradley_terry", "mixed_model", "power",
                "friedman", "wilcoxon", "agreement", "exclusions", "paper_comparison"):
        assert out[key], key
    assert out["exclusions"]["after"]["judgments"] == 900
    assert out["paper_comparison"]["paper"]["preference_vs_ground_truth"] == PAPER_PREFERENCE_VS_GROUND_TRUTH


def test_catch_trials_set_aside_and_failed_listeners_excluded(capsys, tmp_path, exports):
    _, _, study = exports
    df = study.preferences.copy()
    df["is_catch"] = False
    df["catch_passed"] = pd.NA
    catch = df.iloc[:60].copy()
    catch["is_catch"] = True
    failing = catch["participant"].iloc[0]
    catch["catch_passed"] = catch["participant"] != failing  # one listener fails every catch trial
    df = pd.concat([catch, df.iloc[60:]], ignore_index=True)
    path = tmp_path / "with_catch.csv"
    df.to_csv(path, index=False)
    out = run_json(capsys, path, "--exclude-failed-catch")
    exclusions = out["exclusions"]
    assert exclusions["catch_trials_set_aside"] == 60
    assert exclusions["excluded_participants"] == [failing]
    expected = int(((~df.is_catch) & (df.participant != failing)).sum())
    assert expected < 900 - 60
    assert exclusions["after"]["judgments"] == expected == sum(p["n"] for p in out["pairs"])
    assert out["catch_trials"][0]["n"] == 60
    assert out["catch_trials"][0]["passed"] == int(catch.catch_passed.sum())


def test_html_report_opens_offline(tmp_path, exports, capsys):
    prefs, ratings, _ = exports
    fad = tmp_path / "fad.json"
    fad.write_text(json.dumps({"three-stage": {"fad": 1.8, "ci_low": 1.6, "ci_high": 2.0}, "two-stage": 2.2}))
    report = tmp_path / "out" / "report.html"
    assert main(["analyze", str(prefs), "--ratings", str(ratings), "--fad", str(fad), "--html", str(report),
                 "--n-boot", "100"]) == 0
    text = report.read_text()
    assert "<script src=" not in text and 'src="http' not in text
    assert "Plotly.newPlot" in text and len(text) > 1_000_000  # plotly.js inlined
    assert "51.5%" in text and "18.6%" in text and f"{1 - 1.8 / 2.2:.1%}" in text
    assert "Krippendorff" in text and "Exclusions" in text


@pytest.mark.parametrize("mutate,message", [
    (lambda df: df.drop(columns="excerpt"), "missing column(s) 'excerpt'"),
    (lambda df: df.assign(chosen="middle"), "'middle'"),
    (lambda df: df.iloc[:0], "no rows"),
])
def test_bad_input_exits_2_with_one_clear_line(tmp_path, exports, capsys, mutate, message):
    _, _, study = exports
    path = tmp_path / "bad.csv"
    mutate(study.preferences).to_csv(path, index=False)
    assert main(["analyze", str(path), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err and captured.err.count("\n") == 1


def one_line_error(capsys, argv, message):
    assert main(["analyze", *map(str, argv)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err and captured.err.count("\n") == 1, captured.err


def test_directory_or_unreadable_input_exits_2_with_one_line(tmp_path, exports, capsys):
    prefs, ratings, _ = exports
    one_line_error(capsys, [tmp_path, "--json"], "is a directory")
    one_line_error(capsys, [prefs, "--ratings", tmp_path, "--json"], "ratings: ")
    locked = tmp_path / "locked.csv"
    locked.write_text(prefs.read_text())
    locked.chmod(0)
    try:
        if not os.access(locked, os.R_OK):  # root reads anything: then only the directory case runs
            one_line_error(capsys, [locked, "--json"], "cannot read")
    finally:
        locked.chmod(0o600)


def test_scores_outside_the_scale_exit_2_naming_the_rows(tmp_path, exports, capsys):
    prefs, _, study = exports
    ratings = study.ratings.copy()
    ratings.loc[[3, 17], "score"] = [7, 0]
    path = tmp_path / "ratings.csv"
    ratings.to_csv(path, index=False)
    one_line_error(capsys, [prefs, "--ratings", path, "--json"], "row 3 (7), row 17 (0)")


def test_exclude_flagged_drops_listeners_with_any_true_flag(tmp_path, exports, capsys):
    prefs, _, study = exports
    listeners = sorted(study.preferences.participant.unique())
    participants = pd.DataFrame({"participant": listeners, "status": "completed",
                                 "flag_too_fast": [i == 0 for i in range(len(listeners))],
                                 "flag_no_audio": ["true" if i == 1 else "" for i in range(len(listeners))],
                                 "flag_duplicate_sequence": False})
    path = tmp_path / "participants.csv"
    participants.to_csv(path, index=False)
    out = run_json(capsys, prefs, "--participants", path, "--exclude-flagged")
    assert out["exclusions"]["excluded_participants"] == sorted(listeners[:2])
    rule = out["exclusions"]["applied"][0]
    assert rule["participants"] == 2 and "flag_too_fast" in rule["columns"]
    expected = int((~study.preferences.participant.isin(listeners[:2])).sum())
    assert out["exclusions"]["after"]["judgments"] == expected == sum(p["n"] for p in out["pairs"])
    # Missing flag columns: nobody is flagged, and the rule is still recorded.
    participants[["participant", "status"]].to_csv(path, index=False)
    out = run_json(capsys, prefs, "--participants", path, "--exclude-flagged")
    assert out["exclusions"]["excluded_participants"] == []
    assert out["exclusions"]["applied"][0]["participants"] == 0


def test_console_names_methods_floors_p_and_prints_integer_counts(tmp_path, capsys):
    n = 3000
    df = pd.DataFrame({
        "participant": [f"p{i % 150}" for i in range(n)], "excerpt": [f"e{i % 41}" for i in range(n)],
        "system_left": "three-stage", "system_right": "random",
        "chosen": np.where(np.arange(n) % 50 == 0, "right", "left"),
    })
    path = tmp_path / "prefs.csv"
    df.to_csv(path, index=False)
    assert main(["analyze", str(path), "--n-boot", "50", "--no-mixed-model"]) == 0
    out = capsys.readouterr().out
    assert "two-way cluster-robust" in out and "Holm across the 1 preference pairs" in out
    assert "< 1e-6" in out and " 0.0 " not in out and "3000.0" not in out and " 3000 " in out


def test_html_report_names_every_method_and_truncation(tmp_path, exports, capsys):
    prefs, ratings, _ = exports
    report = tmp_path / "report.html"
    assert main(["analyze", str(prefs), "--ratings", str(ratings), "--html", str(report), "--n-boot", "50"]) == 0
    text = report.read_text()
    for phrase in ("two-way cluster-robust", "Holm across the 3 preference pairs", "Holm across all",
                   "Wilson", "secondary", "Unit of resampling"):
        assert phrase in text, phrase
    assert "not estimable" not in text.split("<h2>Preferences</h2>")[1].split("</table>")[0]
    analysis = analyze_study(pd.read_csv(prefs), options=AnalysisOptions(n_boot=20, mixed_model=False))
    listeners = analysis_tables_html(analysis, listener_rows=10)["listeners"]
    assert f"showing 10 of {len(analysis.listeners)} rows" in listeners and listeners.count("<tr>") == 10  # body rows
