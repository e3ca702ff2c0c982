"""What each interval covers, by simulation with a known true FAD (tests/fad/simulation.py)."""

import json

import numpy as np
import pytest

from hafm_core.cli import main
from hafm_core.fad.songs import SongMoments
from hafm_core.fad.uncertainty import fad_inf_interval, jackknife_interval
from tests.fad.simulation import World, paired_systems, real_songs

WORLD = World(dim=10, frames=4, baseline_fad=1.0)  # few frames per song: a large 1/n bias


def coverage(n_songs: int, runs: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    inf_hits = at_n_hits = 0
    for _ in range(runs):
        background = SongMoments.from_songs(real_songs(rng, WORLD, n_songs))
        _, system = paired_systems(rng, WORLD, n_songs, 0.0)
        evaluation = SongMoments.from_songs(system)
        inf = fad_inf_interval(background, evaluation)
        at_n, _ = jackknife_interval(background, evaluation)
        inf_hits += inf.low <= WORLD.baseline_fad <= inf.high
        at_n_hits += at_n.low <= WORLD.baseline_fad <= at_n.high
    return inf_hits / runs, at_n_hits / runs


def test_the_fad_inf_interval_covers_the_true_fad_at_its_confidence():
    assert WORLD.true_fad(WORLD.baseline_fad) == pytest.approx(WORLD.baseline_fad, rel=1e-9)
    runs = 300
    inf, at_n = coverage(n_songs=40, runs=runs, seed=0)
    mc_error = np.sqrt(0.95 * 0.05 / runs)
    assert abs(inf - 0.95) <= 3 * mc_error, inf
    # The plug-in interval is centred on a FAD biased upward by 1/n: it covers the FAD at this
    # n, not the true one, which is why it is labelled with n.
    assert at_n < 0.95 - 3 * mc_error, at_n


def test_intervals_say_what_they_cover():
    rng = np.random.default_rng(1)
    background = SongMoments.from_songs(real_songs(rng, WORLD, 7))
    evaluation = SongMoments.from_songs(paired_systems(rng, WORLD, 5, 0.0)[1])
    at_n, _ = jackknife_interval(background, evaluation)
    assert at_n.quantity == "FAD at n_background=7, n_eval=5"
    assert fad_inf_interval(background, evaluation).quantity == "FAD-inf (n-free)"


def run_report(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured


def test_comparisons_across_runs_only_at_equal_n_or_on_fad_inf(audio_sets, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HAFM_CACHE_DIR", str(tmp_path / "cache"))
    smaller = tmp_path / "smaller"
    smaller.mkdir()
    for path in sorted(audio_sets["eval"].glob("*.wav"))[:6]:
        (smaller / path.name).write_bytes(path.read_bytes())
    common = ["--embedder", "logmel", "--json"]
    bg = str(audio_sets["background"])

    def report(folder, name, *extra):
        code, captured = run_report(capsys, ["fad", bg, str(folder), *common, *extra])
        assert code == 0, captured.err
        (tmp_path / name).write_text(captured.out)
        return json.loads(captured.out)

    full = report(audio_sets["eval"], "full.json")
    report(smaller, "smaller.json")
    # Equal n: the FADs themselves.
    code, captured = run_report(capsys, ["fad", bg, str(audio_sets["noisy"]), *common,
                                         "--compare-with", str(tmp_path / "full.json")])
    comparison = json.loads(captured.out)["comparison"]
    assert code == 0 and comparison["on"] == "FAD at n_background=8, n_eval=8"
    assert comparison["previous"] == full["fad"]
    # Different n without FAD-inf: refused, one line, exit 2.
    code, captured = run_report(capsys, ["fad", bg, str(audio_sets["noisy"]), *common,
                                         "--compare-with", str(tmp_path / "smaller.json")])
    assert code == 2 and "FADs at different n are not comparable" in captured.err
    # Different n with FAD-inf on both sides: compared on FAD-inf.
    report(smaller, "smaller-ci.json", "--ci")
    code, captured = run_report(capsys, ["fad", bg, str(audio_sets["noisy"]), *common, "--ci",
                                         "--compare-with", str(tmp_path / "smaller-ci.json")])
    data = json.loads(captured.out)
    assert code == 0 and data["comparison"]["on"] == "FAD-inf (n-free)"
    assert data["comparison"]["current"] == data["fad_inf_ci"]["estimate"]
