"""frechet_distance against a float64 scipy.linalg.sqrtm reference and its defining properties."""

import numpy as np
import pytest
import scipy.linalg

from hafm_core.fad import EmbeddingShapeError, frechet_distance


def reference_fad(mu_a, cov_a, mu_b, cov_b) -> float:
    """The textbook formula with scipy's general matrix square root, in float64."""
    root = scipy.linalg.sqrtm(cov_a @ cov_b)
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root).real)


def gaussian_sample(rng, n, dim, scale=1.0, shift=0.0):
    mixing = rng.normal(size=(dim, dim)) / np.sqrt(dim)
    return rng.normal(size=(n, dim)) @ mixing * scale + shift


def moments(x):
    return x.mean(axis=0), np.cov(x, rowvar=False)


@pytest.mark.parametrize("dim", [8, 64, 128])
def test_agrees_with_float64_sqrtm_reference(dim):
    rng = np.random.default_rng(dim)
    a = moments(gaussian_sample(rng, 4 * dim, dim))
    b = moments(gaussian_sample(rng, 4 * dim, dim, scale=1.3, shift=0.2))
    expected = reference_fad(*a, *b)
    assert frechet_distance(*a, *b) == pytest.approx(expected, rel=1e-6)


def test_same_set_is_zero_and_distance_is_symmetric():
    rng = np.random.default_rng(0)
    a = moments(gaussian_sample(rng, 300, 32))
    b = moments(gaussian_sample(rng, 300, 32, shift=0.5))
    assert frechet_distance(*a, *a) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(*a, *b) == pytest.approx(frechet_distance(*b, *a), rel=1e-10)


def test_invariant_to_file_order():
    rng = np.random.default_rng(1)
    x, y = gaussian_sample(rng, 200, 16), gaussian_sample(rng, 200, 16, shift=0.3)
    shuffled = x[rng.permutation(len(x))]
    assert frechet_distance(*moments(shuffled), *moments(y)) == pytest.approx(
        frechet_distance(*moments(x), *moments(y)), rel=1e-10)


def test_never_negative_on_rank_deficient_covariances():
    rng = np.random.default_rng(2)
    for _ in range(10):
        # fewer files than dimensions: both covariances are singular
        x = gaussian_sample(rng, 10, 64)
        value = frechet_distance(*moments(x), *moments(x + 1e-9 * rng.normal(size=x.shape)))
        assert value >= 0.0
        assert np.isfinite(value)
        assert frechet_distance(*moments(x), *moments(x)) >= 0.0


def test_rank_deficient_case_matches_reference_where_reference_is_defined():
    rng = np.random.default_rng(3)
    a = moments(gaussian_sample(rng, 20, 48))
    b = moments(gaussian_sample(rng, 200, 48, shift=0.4))  # b full rank: sqrtm(a b) is fine
    assert frechet_distance(*a, *b) == pytest.approx(reference_fad(*a, *b), rel=1e-6)


def test_grows_monotonically_with_added_noise():
    rng = np.random.default_rng(4)
    clean = gaussian_sample(rng, 2000, 16)
    noise = rng.normal(size=clean.shape)
    values = [frechet_distance(*moments(clean), *moments(clean + sigma * noise))
              for sigma in (0.0, 0.1, 0.3, 0.6, 1.0, 2.0)]
    assert all(later > earlier for earlier, later in zip(values, values[1:]))


def test_mismatched_sizes_are_a_clear_error():
    rng = np.random.default_rng(5)
    a = moments(gaussian_sample(rng, 50, 8))
    b = moments(gaussian_sample(rng, 50, 16))
    with pytest.raises(EmbeddingShapeError, match="8 against 16"):
        frechet_distance(*a, *b)


def test_nan_statistics_are_rejected():
    mu, cov = np.zeros(4), np.eye(4)
    with pytest.raises(EmbeddingShapeError, match="NaN"):
        frechet_distance(mu, cov, np.full(4, np.nan), cov)
