"""`benchmarks/fit_validation.py --musdb PATH` end to end, on a MUSDB18-HQ-layout folder built here.

Two synthetic songs (`hafm_core.fit.songs`, known tempo) written as
test/NAME/{mixture,vocals,drums,bass,other}.wav, one with an instrumental opening (vocal
silent), and a copy of the stempeg sample `.stem.mp4` under test/: 3 songs x 2 windows of 3 s.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hafm_core.fit.songs import Song, render

RATE = 22_050
TEMPOS = {"Synth A - Pop": 104.0, "Synth B - Shuffle": 110.0}
SILENT_OPENING_S = 4.0  # "Synth B - Shuffle" has no vocal before this


def load_benchmark():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "fit_validation.py"
    spec = importlib.util.spec_from_file_location("fit_validation_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def musdb_root(tmp_path_factory, stempeg_sample_path):
    root = tmp_path_factory.mktemp("musdb18hq")
    for k, (name, tempo) in enumerate(TEMPOS.items()):
        style = "pop" if k == 0 else "shuffle"
        stems = render(Song(seed=300 + k, style=style, tempo_bpm=tempo, duration_s=11.0))
        if k == 1:
            stems["vocals"][:int(SILENT_OPENING_S * RATE)] = 0.0
        folder = root / "test" / name
        folder.mkdir(parents=True)
        for stem, samples in {**stems, "mixture": sum(stems.values())}.items():
            sf.write(folder / f"{stem}.wav", samples, RATE)
    shutil.copy(stempeg_sample_path, root / "test" / "Stempeg Sample.stem.mp4")
    (root / "train").mkdir()
    return root


@pytest.fixture(scope="module")
def run(musdb_root):
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = load_benchmark().main(["--musdb", str(musdb_root), "--windows-per-track", "2"])
    return code, out.getvalue(), err.getvalue()


def test_the_table_counts_three_songs_and_their_windows(run):
    code, out, err = run
    assert code == 0, err
    assert "MUSDB18 test (3 tracks, 3 s windows)" in out
    assert "95% song-bootstrap interval (3 songs, 6 windows)" in out
    assert re.search(r"fit_score\s+(\d\.\d\d[ *]\s*){13}", out)  # one AUC per manipulation
    assert "tracks done: 3/3" in err
    for line in re.findall(r"claims failing.*", out, re.S)[0].splitlines()[1:]:
        if "vs" in line:
            assert "(3 songs, 6 windows)" in line


def test_tempo_is_estimated_from_the_accompaniment(run):
    _, out, _ = run
    for name, tempo in TEMPOS.items():
        found = float(re.search(rf"{re.escape(name)}: tempo ([\d.]+) BPM", out).group(1))
        assert abs(found - tempo) / tempo < 0.04, (name, found)
    assert re.search(r"Stempeg Sample: tempo [\d.]+ BPM .*windows at [\d.]+, [\d.]+ s", out)


def test_vocal_silent_windows_are_skipped_and_counted(run):
    _, out, _ = run
    line = re.search(r"Synth B - Shuffle: .*", out).group(0)
    starts = [float(s) for s in re.search(r"windows at ([\d., ]+) s", line).group(1).split(", ")]
    assert len(starts) == 2 and min(starts) + 3.0 > SILENT_OPENING_S, line
    skipped, candidates = map(int, re.search(r"(\d+) of (\d+) candidate windows skipped", line).groups())
    assert skipped >= 1 and candidates > skipped
    assert re.search(r"Synth A - Pop: .* 0 of \d+ candidate windows skipped", out)


@pytest.mark.parametrize("problem", ["missing", "no_layout", "empty_split"])
def test_an_invalid_path_is_exit_2_with_one_line(tmp_path, capsys, problem):
    root = tmp_path / "musdb"
    if problem != "missing":
        root.mkdir()
    if problem == "empty_split":
        (root / "train" / "Only Train").mkdir(parents=True)
        for stem in ("vocals", "drums", "bass", "other"):
            sf.write(root / "train" / "Only Train" / f"{stem}.wav", np.zeros(RATE, np.float32), RATE)
    code = load_benchmark().main(["--musdb", str(root)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1 and str(root) in captured.err
