"""`hafm analyze` as a user runs it: CSVs in, JSON or an offline HTML report out."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from statsmodels.stats.proportion import proportion_confint

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
        assert set(pair) == {"system", "opponent", "n", "wins", "rate", "ci_low", "ci_high", "p_value"}
        involved = df.system_left.isin([pair["system"], pair["opponent"]]) & df.system_right.isin(
            [pair["system"], pair["opponent"]])
        n, wins = int(involved.sum()), int((chosen[involved] == pair["system"]).sum())
        assert (pair["n"], pair["wins"]) == (n, wins)
        assert pair["rate"] == pytest.approx(wins / n)
        assert (pair["ci_low"], pair["ci_high"]) == pytest.approx(proportion_confint(wins, n, method="wilson"))
        assert pair["p_value"] == pytest.approx(binomtest(wins, n, 0.5).pvalue)
    for key in ("cluster_bootstrap", "non_inferiority", "side_bias", "bradley_terry", "mixed_model", "power",
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
