"""`hafm fit` over two folders paired by name, and the summary's bootstrap CI."""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest
import scipy.stats

from hafm_core.audio import write_audio
from hafm_core.cli import main
from hafm_core.fit.pairs import bootstrap_mean_ci
from hafm_core.synth import synthesize_multitrack

RATE_HZ = 22_050


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """vocals/{a, sub/b, c (corrupt), only_vocal}; accompaniments/{a, sub/b (silent), c, only_accompaniment}."""
    root = tmp_path_factory.mktemp("fit")
    vocals, accompaniments = root / "vocals", root / "accompaniments"
    track = synthesize_multitrack(seed=2, duration_s=4.0, sample_rate_hz=RATE_HZ)
    write_audio(vocals / "a.wav", track.stems["vocals"], RATE_HZ)
    write_audio(accompaniments / "a.flac", track.accompaniment, RATE_HZ)
    write_audio(vocals / "sub" / "b.wav", track.stems["vocals"], RATE_HZ)
    write_audio(accompaniments / "sub" / "b.wav", np.zeros_like(track.accompaniment), RATE_HZ)
    (vocals / "c.wav").write_bytes(b"RIFF but not really a wav file")
    write_audio(accompaniments / "c.wav", track.accompaniment, RATE_HZ)
    write_audio(vocals / "only_vocal.wav", track.stems["vocals"], RATE_HZ)
    write_audio(accompaniments / "only_accompaniment.wav", track.accompaniment, RATE_HZ)
    (accompaniments / "notes.txt").write_text("not audio")
    return vocals, accompaniments


@pytest.fixture(scope="module")
def json_run(folders):
    capture = pytest.MonkeyPatch()
    out = io.StringIO()
    capture.setattr(sys, "stdout", out)
    try:
        code = main(["fit", str(folders[0]), str(folders[1]), "--json", "--resamples", "200"])
    finally:
        capture.undo()
    return code, json.loads(out.getvalue())


def test_json_reports_each_pair_and_the_unmatched(json_run):
    code, data = json_run
    assert code == 0
    assert data["n_pairs"] == 3
    assert data["unmatched"] == {"vocals_only": ["only_vocal"], "accompaniments_only": ["only_accompaniment"]}
    by_name = {r["name"]: r for r in data["results"]}
    assert set(by_name) == {"a", "c", "sub/b"}
    assert by_name["c"]["status"] == "unreadable" and "c.wav" in by_name["c"]["detail"]
    assert by_name["a"]["status"] == "ok"
    assert 0 <= by_name["a"]["fit_score"] <= 1
    assert by_name["sub/b"]["status"] == "silent_accompaniment"
    assert by_name["sub/b"]["fit_score"] is None


def test_summary_counts_failed_excerpts_as_the_worst_score(json_run):
    _, data = json_run
    summary = data["summary"]
    assert summary["n_excerpts"] == 3 and summary["n_ok"] == 1 and summary["n_failed"] == 2
    assert summary["failure_rate"] == pytest.approx(2 / 3)
    assert summary["statuses"] == {"ok": 1, "silent_accompaniment": 1, "unreadable": 1}
    ok = next(r for r in data["results"] if r["status"] == "ok")
    fit = summary["metrics"]["fit_score"]
    assert fit["mean"] == pytest.approx(ok["fit_score"] / 3) and fit["n"] == 3  # failures score 0
    assert fit["mean_ok"] == pytest.approx(ok["fit_score"]) and fit["n_ok"] == 1
    assert fit["ci_low"] <= fit["mean"] <= fit["ci_high"]


def test_text_output_and_exit_codes(folders, tmp_path, capsys):
    assert main(["fit", str(folders[0]), str(folders[1])]) == 0
    out = capsys.readouterr().out
    assert "a: fit " in out and "sub/b: silent_accompaniment" in out and "only_vocal" in out
    assert "failure rate 66.7%" in out and "ok only" in out
    # No pair at all is bad input (exit 2); pairs that all fail are a failed run (exit 1).
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["fit", str(folders[0]), str(empty)]) == 2
    assert "no file name" in capsys.readouterr().err
    assert main(["fit", str(folders[0] / "missing"), str(folders[1])]) == 2
    silent_only = tmp_path / "silent"
    write_audio(silent_only / "a.wav", np.zeros(RATE_HZ * 3, np.float32), RATE_HZ)
    assert main(["fit", str(folders[0]), str(silent_only), "--json"]) == 1


def test_vocal_pitch_is_cached_under_hafm_cache_dir_unless_no_cache(folders, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HAFM_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["fit", str(folders[0]), str(folders[1]), "--no-cache"]) == 0
    assert not (tmp_path / "cache" / "fit-pitch").exists()
    assert main(["fit", str(folders[0]), str(folders[1])]) == 0
    # one vocal reaches pitch tracking: sub/b's accompaniment is silent, c is unreadable
    assert len(list((tmp_path / "cache" / "fit-pitch").rglob("*.pitch"))) == 1


def test_bootstrap_ci_agrees_with_scipy():
    values = np.random.default_rng(1).gamma(2.0, 0.2, size=40)
    ours = bootstrap_mean_ci(values, n_resamples=20_000, seed=3)
    reference = scipy.stats.bootstrap((values,), np.mean, n_resamples=20_000, method="percentile",
                                      confidence_level=0.95, random_state=4).confidence_interval
    assert ours[0] == pytest.approx(reference.low, abs=0.005)
    assert ours[1] == pytest.approx(reference.high, abs=0.005)
    assert ours[0] < values.mean() < ours[1]
    assert bootstrap_mean_ci(values[:1]) is None
