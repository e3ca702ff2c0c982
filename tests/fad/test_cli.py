"""`hafm fad` and `hafm regress` as a user runs them (local mode, no broker)."""

import json

import numpy as np
import pytest

from hafm_core.audio import read_stems, write_audio
from hafm_core.cli import main
from hafm_core.fad.compute import compute_fad
from hafm_core.fad.embedders import load_embedder
from tests.fad.conftest import SAMPLE_RATE_HZ, accompaniment, write_set


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HAFM_CACHE_DIR", str(tmp_path / "cache"))


def run_json(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip() else None), captured.err


def test_fad_json_has_the_contract_fields(audio_sets, capsys):
    code, data, err = run_json(capsys, ["fad", str(audio_sets["background"]), str(audio_sets["eval"]),
                                        "--embedder", "logmel", "--json", "--ci"])
    assert code == 0
    expected = compute_fad(audio_sets["background"], audio_sets["eval"], load_embedder("logmel", device="cpu"))
    assert data["fad"] == pytest.approx(expected.fad, rel=1e-9)
    assert (data["n_background"], data["n_eval"]) == (8, 8)
    assert (data["embedder"], data["protocol"]) == ("logmel", "logmel-rp-v1")
    assert data["ci"]["low"] < data["fad"] < data["ci"]["high"]
    for field in ("code_version", "weights_hash", "seed", "embedder_code_hash"):
        assert data[field] is not None
    assert "embedding" in err  # progress goes to stderr


def test_fad_human_output(audio_sets, capsys):
    assert main(["fad", str(audio_sets["background"]), str(audio_sets["noisy"]), "--embedder", "logmel"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("FAD ") and "logmel-rp-v1" in out


def test_fad_on_the_real_musdb_stem(stempeg_sample_path, tmp_path, capsys):
    stems, rate = read_stems(stempeg_sample_path, sample_rate_hz=SAMPLE_RATE_HZ)
    accompaniment_track = stems["drums"] + stems["bass"] + stems["other"]
    n = 2 * SAMPLE_RATE_HZ
    excerpts = min(4, len(accompaniment_track) // n)
    for i in range(excerpts):
        write_audio(tmp_path / "real" / f"x{i}.wav", accompaniment_track[i * n:(i + 1) * n], rate)
        write_audio(tmp_path / "vocals" / f"x{i}.wav", stems["vocals"][i * n:(i + 1) * n], rate)
    code, data, _ = run_json(capsys, ["fad", str(tmp_path / "real"), str(tmp_path / "vocals"),
                                      "--embedder", "logmel", "--json"])
    assert code == 0 and data["fad"] > 0 and data["n_eval"] == excerpts >= 2


def test_bad_folders_exit_2_with_one_line(tmp_path, audio_sets, capsys):
    code = main(["fad", str(tmp_path / "missing"), str(audio_sets["eval"]), "--embedder", "logmel"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"background folder {tmp_path / 'missing'} does not exist" in err
    assert "Traceback" not in err


def test_missing_vggish_weights_say_where_to_put_them(tmp_path, audio_sets, monkeypatch, capsys):
    monkeypatch.setenv("HAFM_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    code = main(["fad", str(audio_sets["background"]), str(audio_sets["eval"]), "--embedder", "vggish"])
    assert code == 2
    assert "vggish-10086976.pth" in capsys.readouterr().err


def regress_argv(audio_sets, candidate, baseline, *extra):
    return ["regress", "--candidate", str(audio_sets[candidate]), "--baseline", str(audio_sets[baseline]),
            "--background", str(audio_sets["background"]), "--embedder", "logmel", *extra]


def test_regress_passes_a_system_against_itself(audio_sets, capsys):
    code, data, _ = run_json(capsys, regress_argv(audio_sets, "eval", "eval", "--json"))
    assert code == 0 and data["passed"] is True and data["verdict"] == "pass"
    assert data["difference"] == 0.0 and data["p_value"] == 1.0
    assert data["fad_candidate"] == data["fad_baseline"]


def test_regress_fails_a_clearly_worse_candidate(audio_sets, capsys):
    code = main(regress_argv(audio_sets, "noisy", "eval"))
    out = capsys.readouterr().out
    assert code == 1
    assert out.startswith("REGRESSION: candidate FAD")
    assert "difference +" in out and "one-sided p = " in out


def test_regress_too_few_songs_is_inconclusive_exit_3(audio_sets, capsys):
    # A better candidate on 8 songs: not a regression, but a 5% worsening could not have been
    # detected, so the gate does not vouch for it.
    argv = regress_argv(audio_sets, "eval", "noisy", "--json")
    code, data, _ = run_json(capsys, argv)
    assert code == 3 and data["verdict"] == "inconclusive" and data["difference"] < 0
    assert data["detectable_relative_worsening"] > 0.05 and data["songs_needed"] > 8
    assert main(regress_argv(audio_sets, "eval", "noisy")) == 3
    out = capsys.readouterr().out
    assert out.startswith("INCONCLUSIVE") and "songs would detect the margin" in out
    # With a margin it can detect at 8 songs, the same comparison passes.
    margin = f"{2 * data['detectable_relative_worsening']:.6f}"
    assert main(argv + ["--max-relative-increase", margin]) == 0
    capsys.readouterr()


def test_regress_refuses_a_negative_margin_and_too_few_permutations(audio_sets, capsys):
    assert main(regress_argv(audio_sets, "eval", "noisy", "--max-relative-increase", "-0.01")) == 2
    assert "--max-relative-increase" in capsys.readouterr().err
    assert main(regress_argv(audio_sets, "eval", "noisy", "--permutations", "10")) == 2
    err = capsys.readouterr().err
    assert "--permutations" in err and "99" in err


def test_regress_refuses_unpaired_sets(tmp_path, audio_sets, capsys):
    other = write_set(tmp_path / "other", {"songA": accompaniment(5), "songB": accompaniment(6)})
    code = main(["regress", "--candidate", str(other), "--baseline", str(audio_sets["eval"]),
                 "--background", str(audio_sets["background"]), "--embedder", "logmel"])
    assert code == 2
    assert "paired by file name" in capsys.readouterr().err


def test_noise_in_candidate_is_detected_at_the_song_level(audio_sets):
    # Sanity of the fixture the regression tests rely on: noisy audio really differs.
    a = compute_fad(audio_sets["background"], audio_sets["eval"], load_embedder("logmel", device="cpu"))
    b = compute_fad(audio_sets["background"], audio_sets["noisy"], load_embedder("logmel", device="cpu"))
    assert b.fad > 1.5 * a.fad and np.isfinite(b.fad)
