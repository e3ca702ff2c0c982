"""The embedding cache: keyed by audio content, protocol, weights and code; float32; atomic."""

import numpy as np

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
