"""The embedding cache: keyed by audio content, protocol, weights and code; float32; atomic."""

import logging

import numpy as np
import pytest

from hafm_core.fad.cache import EmbeddingCache
from hafm_core.fad.compute import embed_files
from hafm_core.fad.embedders import load_embedder
from tests.fad.conftest import accompaniment, write_set


def test_a_changed_file_never_meets_a_stale_entry(tmp_path):
    embedder = load_embedder("logmel", device="cpu")
    cache = EmbeddingCache(tmp_path / "cache")
    folder = write_set(tmp_path / "set", {"a": accompaniment(1), "b": accompaniment(2)})
    paths = [folder / "a.wav", folder / "b.wav"]
    first = embed_files(paths, embedder, cache)
    write_set(folder, {"a": accompaniment(3)})  # same name, new content
    second = embed_files(paths, embedder, cache)
    fresh = embed_files(paths, embedder, cache=None)
    assert first[0].cache_key != second[0].cache_key
    np.testing.assert_array_equal(second[0].embeddings, fresh[0].embeddings)
    assert not np.allclose(second[0].embeddings, first[0].embeddings)
    np.testing.assert_array_equal(second[1].embeddings, first[1].embeddings)  # b unchanged


def test_entries_are_float32_and_are_what_a_hit_returns(tmp_path):
    embedder = load_embedder("logmel", device="cpu")
    cache = EmbeddingCache(tmp_path / "cache")
    folder = write_set(tmp_path / "set", {"a": accompaniment(1)})
    (entry,) = embed_files([folder / "a.wav"], embedder, cache)
    stored = np.load(cache.path(entry.cache_key, embedder.protocol))
    assert stored.dtype == np.float32
    np.testing.assert_array_equal(stored, entry.embeddings)
    # A hit is served from the entry, not recomputed: plant a marker and read it back.
    marker = np.full_like(stored, 7.0)
    cache.put(entry.cache_key, embedder.protocol, marker)
    (again,) = embed_files([folder / "a.wav"], embedder, cache)
    np.testing.assert_array_equal(again.embeddings, marker)
    assert not list(cache.root.rglob(".*"))  # no temp files left behind


def test_key_changes_with_protocol_weights_and_code():
    embedder = load_embedder("logmel", device="cpu")
    base = EmbeddingCache.key("ab" * 32, embedder)
    for field, value in (("protocol", "logmel-rp-v2"), ("weights_hash", "0" * 64), ("code_hash", "1" * 64)):
        original = getattr(embedder, field)
        setattr(embedder, field, value)
        try:
            assert EmbeddingCache.key("ab" * 32, embedder) != base
        finally:
            setattr(embedder, field, original)
    assert EmbeddingCache.key("cd" * 32, embedder) != base


def test_key_changes_with_the_resampler(monkeypatch):
    from hafm_core.fad import cache as cache_module

    embedder = load_embedder("logmel", device="cpu")
    base = EmbeddingCache.key("ab" * 32, embedder)
    assert "soxr" in cache_module.resampler_version()
    monkeypatch.setattr(cache_module, "resampler_version", lambda: "soxr 9.9 VHQ resample:0")
    assert EmbeddingCache.key("ab" * 32, embedder) != base


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong_dim", "nan", "empty"])
def test_a_corrupt_entry_is_discarded_with_a_warning_and_recomputed(tmp_path, caplog, damage):
    embedder = load_embedder("logmel", device="cpu")
    cache = EmbeddingCache(tmp_path / "cache")
    folder = write_set(tmp_path / "set", {"a": accompaniment(1), "b": accompaniment(2)})
    paths = [folder / "a.wav", folder / "b.wav"]
    (first, _) = embed_files(paths, embedder, cache)
    entry = cache.path(first.cache_key, embedder.protocol)
    if damage == "truncate":
        entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    elif damage == "garbage":
        entry.write_bytes(b"\x00not a numpy file")
    elif damage == "wrong_dim":
        np.save(entry, np.ones((3, embedder.dim + 1), np.float32))
    elif damage == "nan":
        np.save(entry, np.full_like(first.embeddings, np.nan))
    else:
        entry.write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="hafm_core.fad.cache"):
        (again, _) = embed_files(paths, embedder, cache)
    assert f"discarding corrupt FAD cache entry {entry}" in caplog.text
    np.testing.assert_array_equal(again.embeddings, first.embeddings)
    np.testing.assert_array_equal(np.load(entry), first.embeddings)  # rewritten whole


def test_hafm_fad_and_regress_survive_a_truncated_entry(tmp_path, monkeypatch, capsys):
    from hafm_core.cli import main

    monkeypatch.setenv("HAFM_CACHE_DIR", str(tmp_path / "cache"))
    clips = {f"s{i}": accompaniment(i) for i in range(3)}
    background = write_set(tmp_path / "bg", {f"s{i}": accompaniment(10 + i) for i in range(3)})
    system = write_set(tmp_path / "sys", clips)
    argv = ["fad", str(background), str(system), "--embedder", "logmel", "--json"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    for entry in (tmp_path / "cache").rglob("*.npy"):
        entry.write_bytes(entry.read_bytes()[:100])
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out == first
    for entry in (tmp_path / "cache").rglob("*.npy"):
        entry.write_bytes(entry.read_bytes()[:100])
    code = main(["regress", "--candidate", str(system), "--baseline", str(system),
                 "--background", str(background), "--embedder", "logmel"])
    assert code == 0, capsys.readouterr()


def test_an_unexpected_error_in_regress_exits_2_with_one_line_never_1(tmp_path, monkeypatch, capsys):
    from hafm_core.cli import main
    from hafm_core.fad import cache as cache_module

    monkeypatch.setenv("HAFM_CACHE_DIR", str(tmp_path / "cache"))
    background = write_set(tmp_path / "bg", {f"s{i}": accompaniment(10 + i) for i in range(2)})
    system = write_set(tmp_path / "sys", {f"s{i}": accompaniment(i) for i in range(2)})

    def broken_disk(self, key, protocol, embeddings):
        raise PermissionError(13, "Permission denied", str(self.root))

    monkeypatch.setattr(cache_module.EmbeddingCache, "put", broken_disk)
    for argv in (["regress", "--candidate", str(system), "--baseline", str(system),
                  "--background", str(background), "--embedder", "logmel"],
                 ["fad", str(background), str(system), "--embedder", "logmel"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if "error" in line]
        assert len(errors) == 1 and "unexpected error: PermissionError" in errors[0]
        assert "Traceback" not in err
