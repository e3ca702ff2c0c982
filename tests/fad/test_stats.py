"""Mergeable statistics: sharded equals single pass, JSON round trip, clear errors."""

import json

import numpy as np
import pytest

from hafm_core.fad import EmbeddingShapeError, EmbeddingStats, TooFewFilesError, merge_all


def test_sharded_merge_equals_single_pass_in_any_order():
    rng = np.random.default_rng(0)
    files = [rng.normal(loc=3.0, size=(int(rng.integers(1, 30)), 12)) for _ in range(25)]
    everything = np.concatenate(files)
    shards = [merge_all([EmbeddingStats.from_embeddings(f) for f in files[i:i + 4]])
              for i in range(0, len(files), 4)]
    for order in (shards, shards[::-1], [shards[i] for i in rng.permutation(len(shards))]):
        merged = merge_all(order)
        assert merged.count == len(everything)
        np.testing.assert_allclose(merged.mean, everything.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(merged.covariance, np.cov(everything, rowvar=False), rtol=1e-10, atol=1e-12)


def test_remove_is_the_inverse_of_merge():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(40, 6)), rng.normal(loc=2.0, size=(15, 6))
    whole = EmbeddingStats.from_embeddings(np.concatenate([a, b]))
    rest = whole.remove(EmbeddingStats.from_embeddings(b))
    assert rest.count == 40
    np.testing.assert_allclose(rest.covariance, np.cov(a, rowvar=False), rtol=1e-10, atol=1e-12)


def test_json_round_trip_is_exact_and_serialisable():
    stats = EmbeddingStats.from_embeddings(np.random.default_rng(2).normal(size=(9, 5)))
    restored = EmbeddingStats.from_json(json.loads(json.dumps(stats.to_json())))
    assert restored.count == stats.count
    assert np.array_equal(restored.total, stats.total)
    assert np.array_equal(restored.scatter, stats.scatter)


def test_merging_different_sizes_is_an_error():
    a = EmbeddingStats.from_embeddings(np.ones((3, 4)))
    b = EmbeddingStats.from_embeddings(np.ones((3, 5)))
    with pytest.raises(EmbeddingShapeError, match="4-dimensional and 5-dimensional"):
        a.merge(b)


def test_covariance_of_one_frame_is_an_error():
    with pytest.raises(TooFewFilesError):
        _ = EmbeddingStats.from_embeddings(np.ones((1, 4))).covariance


def test_any_order_and_grouping_gives_bit_identical_statistics_and_fad():
    # Fewer frames than dimensions: the covariance is rank-deficient, where a rounding
    # difference in the statistics moves FAD by ~1e-8 through the matrix square root.
    from hafm_core.fad import frechet_distance

    rng = np.random.default_rng(5)
    files = [rng.normal(loc=0.5, size=(5, 64)).astype(np.float32) for _ in range(8)]
    reference = EmbeddingStats.from_embeddings(rng.normal(size=(400, 64)))
    per_file = [EmbeddingStats.from_embeddings(f) for f in files]
    groupings = [
        merge_all(per_file),
        merge_all(per_file[::-1]),
        merge_all([merge_all(per_file[i:i + 3]) for i in range(0, 8, 3)]),
        merge_all([merge_all(per_file[i:i + 4]) for i in (4, 0)]),
        merge_all([per_file[i] for i in rng.permutation(8)]),
    ]
    fads = {frechet_distance(reference.mean, reference.covariance, g.mean, g.covariance) for g in groupings}
    for grouped in groupings[1:]:
        assert np.array_equal(grouped.covariance, groupings[0].covariance)
        assert np.array_equal(grouped.mean, groupings[0].mean)
    assert len(fads) == 1
    everything = np.concatenate(files).astype(np.float64)
    np.testing.assert_allclose(groupings[0].covariance, np.cov(everything, rowvar=False), rtol=1e-12, atol=1e-13)
