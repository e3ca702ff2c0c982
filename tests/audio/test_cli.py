"""`hafm data prepare`, `hafm tokenize` and `hafm weights` end to end, as a user runs them."""

from __future__ import annotations

import json

import numpy as np

from hafm_core.cli import main
from hafm_core.tokens.cache import load_split, read_index


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_sample_stem_prepare_and_tokenize(tmp_path, tiny_weights_dir, capsys, monkeypatch):
    monkeypatch.setenv("HAFM_WEIGHTS_DIR", str(tiny_weights_dir))
    assert main(["data", "prepare", "--sample", "--out", str(tmp_path / "data"), "--json"]) == 0
    prepared = _json(capsys)
    assert prepared["n_excerpts"] == 1 and prepared["excerpt_s"] == 6.0
    assert main(["tokenize", str(tmp_path / "data" / "manifest.jsonl"), "--out", str(tmp_path / "tok"), "--json"]) == 0
    summary = _json(capsys)
    assert summary["n_tokenized"] == 1 and summary["n_clusters"] == 500
    [(entry, tokens)] = load_split(tmp_path / "tok", "train")
    assert entry.track == "The Easton Ellises - Falcon 69"
    assert tokens.semantic_vocal.shape == (300,) and tokens.acoustic_accompaniment.shape == (8, 450)
    assert tokens.semantic_vocal.dtype == np.int64 and tokens.acoustic_accompaniment.max() < 1024


def test_synthetic_prepare_fit_kmeans_tokenize_and_resume(tmp_path, tiny_weights_dir, capsys):
    weights = tmp_path / "weights"
    for name in ("hubert-base-ls960", "encodec_24khz"):
        (weights / name).mkdir(parents=True)
        for file in (tiny_weights_dir / name).iterdir():
            (weights / name / file.name).write_bytes(file.read_bytes())
    data, tok = tmp_path / "data", tmp_path / "tok"
    assert main(["data", "prepare", "--synthetic", "3", "--synthetic-duration-s", "4.2", "--excerpt-s", "2",
                 "--out", str(data), "--json"]) == 0
    prepared = _json(capsys)
    assert prepared["n_tracks"] == 3 and prepared["excerpts_by_split"]["test"] >= 1
    assert main(["tokenize", str(data / "manifest.jsonl"), "--out", str(tok), "--weights", str(weights),
                 "--fit-kmeans", "--n-clusters", "16", "--json"]) == 0
    first = _json(capsys)
    assert (weights / "kmeans.npy").is_file() and np.load(weights / "kmeans.npy").shape == (16, 32)
    assert json.loads((weights / "kmeans.json").read_text())["sha256"] == first["kmeans_sha256"]
    assert first["n_tokenized"] == prepared["n_excerpts"] and first["n_skipped"] == 0
    # Resumable: a finished item is skipped; a deleted one is redone, bit-identically.
    entries = read_index(tok)
    victim = tok / entries[0].file
    before = victim.read_bytes()
    victim.unlink()
    assert main(["tokenize", str(data), "--out", str(tok), "--weights", str(weights), "--json"]) == 0
    second = _json(capsys)
    assert (second["n_tokenized"], second["n_skipped"]) == (1, prepared["n_excerpts"] - 1)
    assert victim.read_bytes() == before
    for _, tokens in load_split(tok, "train"):
        assert 0 <= tokens.semantic_vocal.min() and tokens.semantic_vocal.max() < 16
        assert tokens.acoustic_accompaniment.shape[-1] * 2 == tokens.semantic_vocal.shape[-1] * 3


def test_bad_inputs_exit_2_with_one_line(tmp_path, capsys, monkeypatch):
    assert main(["data", "prepare", "--sample", "--excerpt-s", "10", "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "Falcon 69.stem.mp4 (vocals): 6.08 s long, shorter than the requested 10 s excerpt" in err
    assert main(["data", "prepare", "--stems", str(tmp_path), "--out", str(tmp_path / "d")]) == 2
    assert f"{tmp_path} holds no stems" in capsys.readouterr().err
    monkeypatch.setenv("HAFM_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    (tmp_path / "m.jsonl").write_text("")
    assert main(["tokenize", str(tmp_path / "m.jsonl"), "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert "no-weights/hubert-base-ls960" in err and "facebook/hubert-base-ls960" in err


def test_weights_tiny_cli_writes_a_usable_weights_dir(tmp_path, capsys):
    assert main(["weights", "tiny", "--out", str(tmp_path / "w"), "--no-kmeans", "--json"]) == 0
    written = _json(capsys)
    assert set(written["sha256"]) == {"hubert-base-ls960", "encodec_24khz"}
    from hafm_core.weights import weights_status

    assert weights_status("hubert", tmp_path / "w")["present"] and weights_status("encodec", tmp_path / "w")["present"]


def test_tokenize_refuses_excerpts_changed_since_the_manifest(tmp_path, tiny_weights_dir, capsys):
    assert main(["data", "prepare", "--synthetic", "1", "--synthetic-duration-s", "2.1", "--excerpt-s", "2",
                 "--out", str(tmp_path / "d"), "--json"]) == 0
    capsys.readouterr()
    from hafm_core.audio import write_audio
    from hafm_core.data.manifest import read_manifest

    record = read_manifest(tmp_path / "d")[0]
    write_audio(record.vocal_file(tmp_path / "d"), np.full(48_000, 0.1, np.float32), 24_000)
    assert main(["tokenize", str(tmp_path / "d"), "--out", str(tmp_path / "t"),
                 "--weights", str(tiny_weights_dir)]) == 2
    assert "vocal.wav changed since the manifest was written" in capsys.readouterr().err
