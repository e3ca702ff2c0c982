"""`hafm fit --csv` feeding `hafm analyze --metrics`, as a researcher runs them."""

import io
import json
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.synthetic import SyntheticStudyConfig, synthetic_study
from hafm_core.audio import write_audio
from hafm_core.cli import main
from hafm_core.fit import METRIC_NAMES
from hafm_core.synth import synthesize_multitrack

RATE_HZ = 22_050
EXCERPTS = ("0001", "0002", "0003")


@pytest.fixture(scope="module")
def fit_csvs(tmp_path_factory):
    """Three vocals; `ground-truth/` holds their own accompaniments, `other/` another track's.
    `hafm fit --csv` over each: the first names its system after the folder, the second by flag."""
    root = tmp_path_factory.mktemp("agreement")
    tracks = [synthesize_multitrack(seed=seed, duration_s=4.0, sample_rate_hz=RATE_HZ) for seed in (3, 4, 5)]
    for i, name in enumerate(EXCERPTS):
        write_audio(root / "vocals" / f"{name}.wav", tracks[i].stems["vocals"], RATE_HZ)
        write_audio(root / "ground-truth" / f"{name}.wav", tracks[i].accompaniment, RATE_HZ)
        write_audio(root / "other" / f"{name}.wav", tracks[(i + 1) % 3].accompaniment, RATE_HZ)
    truth, other = root / "truth.csv", root / "other.csv"
    assert main(["fit", str(root / "vocals"), str(root / "ground-truth"), "--csv", str(truth)]) == 0
    capture = pytest.MonkeyPatch()
    out = io.StringIO()
    capture.setattr(sys, "stdout", out)
    try:
        code = main(["fit", str(root / "vocals"), str(root / "other"), "--csv", str(other),
                     "--system", "random", "--json", "--resamples", "50"])
    finally:
        capture.undo()
    assert code == 0
    return truth, other, json.loads(out.getvalue()), root


def test_fit_csv_is_the_long_form_of_the_json(fit_csvs):
    truth, other, data, _ = fit_csvs
    table = pd.read_csv(other, dtype={"excerpt": str})
    assert list(table.columns) == ["excerpt", "system", "metric", "value"]
    ok = [r for r in data["results"] if r["status"] == "ok"]
    assert len(ok) == 3 and set(table.excerpt) == set(EXCERPTS) and set(table.system) == {"random"}
    assert len(table) == 3 * len(METRIC_NAMES) == data["metrics_csv"]["rows"]
    for result in ok:
        rows = table[table.excerpt == result["name"]].set_index("metric")["value"]
        assert {m: rows[m] for m in METRIC_NAMES} == {m: result[m] for m in METRIC_NAMES}  # exact round trip
    assert set(pd.read_csv(truth).system) == {"ground-truth"}  # default: the accompaniments folder's name


@pytest.fixture
def study_csvs(fit_csvs):
    """Ratings of the six fitted clips by four listeners (ground truth rated higher), and any
    valid preferences table (the analysis needs one)."""
    _, _, _, root = fit_csvs
    rng = np.random.default_rng(0)
    rows = []
    for listener in range(4):
        for excerpt in EXCERPTS:
            for system, base in (("ground-truth", 4), ("random", 2)):
                for attribute in ("rhythmic alignment", "harmonic compatibility", "overall coherence"):
                    rows.append((f"p{listener}", excerpt, system, attribute, int(np.clip(base + rng.integers(-1, 2), 1, 5))))
    ratings = pd.DataFrame(rows, columns=["participant", "excerpt", "system", "attribute", "score"])
    ratings_path, prefs_path = root / "ratings.csv", root / "preferences.csv"
    ratings.to_csv(ratings_path, index=False)
    synthetic_study(SyntheticStudyConfig(n_judgments=200, n_participants=10, n_excerpts=5, seed=1)
                    ).preferences.to_csv(prefs_path, index=False)
    return prefs_path, ratings_path, ratings


def test_analyze_metrics_reports_spearman_per_metric(fit_csvs, study_csvs, capsys, tmp_path):
    truth, other, _, _ = fit_csvs
    prefs, ratings_path, ratings = study_csvs
    assert main(["analyze", str(prefs), "--ratings", str(ratings_path), "--metrics", str(truth), str(other),
                 "--json", "--n-boot", "300", "--no-mixed-model"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = {row["metric"]: row for row in out["metric_agreement"]}
    assert rows["fit_score"]["attribute"] == "overall coherence"
    assert rows["rhythm_score"]["attribute"] == "rhythmic alignment"
    assert rows["harmony_score"]["attribute"] == "harmonic compatibility"
    metrics = pd.concat([pd.read_csv(truth, dtype={"excerpt": str}), pd.read_csv(other, dtype={"excerpt": str})])
    for metric in ("fit_score", "rhythm_score", "harmony_score"):
        row = rows[metric]
        means = ratings[ratings.attribute == row["attribute"]].groupby(["excerpt", "system"])["score"].mean()
        values = metrics[metrics.metric == metric].set_index(["excerpt", "system"])["value"]
        expected = stats.spearmanr(values, means.reindex(values.index))
        assert row["n_items"] == 6 and row["n_excerpts"] == 3 and row["n_ratings"] == 24
        assert row["rho"] == pytest.approx(expected.statistic, abs=1e-12)
        assert row["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)
        assert row["ci_low"] <= row["rho"] <= row["ci_high"]
    report = tmp_path / "report.html"
    assert main(["analyze", str(prefs), "--ratings", str(ratings_path), "--metrics", str(truth), str(other),
                 "--html", str(report), "--n-boot", "100", "--no-mixed-model"]) == 0
    assert "fit_score vs overall coherence: Spearman rho" in capsys.readouterr().out
    page = report.read_text()
    assert "Objective fit metrics against listener ratings" in page and "rhythmic alignment" in page


def test_mapping_flag_and_bad_input(fit_csvs, study_csvs, capsys):
    truth, other, _, _ = fit_csvs
    prefs, ratings_path, _ = study_csvs
    base = ["analyze", str(prefs), "--n-boot", "50", "--no-mixed-model", "--json"]
    assert main([*base, "--ratings", str(ratings_path), "--metrics", str(truth), str(other),
                 "--metric-attribute", "chord_tone_ratio=overall coherence"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(r["metric"], r["attribute"]) for r in out["metric_agreement"]] == [("chord_tone_ratio", "overall coherence")]
    assert main([*base, "--metrics", str(truth)]) == 2
    assert "--metrics needs --ratings" in capsys.readouterr().err
    # One system only: the items exist, but three is too few; the note says so, the rest still runs.
    assert main([*base, "--ratings", str(ratings_path), "--metrics", str(truth)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert all(row["rho"] is None for row in out["metric_agreement"])
    assert any("need at least 4 items" in note for note in out["notes"])
    assert main([*base, "--ratings", str(ratings_path), "--metrics", str(truth),
                 "--metric-attribute", "fit_score"]) == 2
    assert "METRIC=ATTRIBUTE" in capsys.readouterr().err
