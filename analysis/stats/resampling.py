"""Vectorised cluster resampling: bootstrap replicates of per-cluster sums without loops.

A one-way cluster bootstrap (Davison & Hinkley 1997, section 3.8) draws G clusters with
replacement from G and recomputes a statistic. When the statistic is a function of sums over
clusters (wins and judgments per pair, win matrices for Bradley-Terry), a replicate is a
multiplicity vector m (m ~ Multinomial(G, 1/G)) times the per-cluster sums: m @ S. Clusters
with identical sums are exchangeable, so they are merged into "profiles" first and the
multinomial is drawn over profiles; this is exact, and makes (listener x excerpt) cells,
which are mostly identical singletons, cost almost nothing.
"""

from __future__ import annotations

import numpy as np

# Above this many profile-draws per replicate, drawing G uniform indices is cheaper than a
# multinomial over the profiles (numpy draws a multinomial as one binomial per category).
_INDEX_DRAW_RATIO = 20
_MAX_DRAWS_PER_CHUNK = 4_000_000


def _profiles(sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of `sums` (int64 [G, S]) and, per cluster, the index of its row."""
    top = int(sums.max(initial=0)) + 1
    width = sums.shape[1]
    if width * np.log2(max(top, 2)) < 62:
        key = np.zeros(sums.shape[0], dtype=np.int64)
        for column in range(width):
            key = key * top + sums[:, column]
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        return sums[first], inverse.ravel()
    unique, inverse = np.unique(sums, axis=0, return_inverse=True)
    return unique, inverse.ravel()


def resampled_sums(
    sums: np.ndarray, n_boot: int, rng: np.random.Generator, chunk: int = 256
) -> np.ndarray:
    """Bootstrap replicates of column sums when whole clusters (rows) are resampled.

    Args:
        sums: int64 [G, S], one row of sufficient statistics per cluster.
        n_boot: number of replicates B.
        rng: the seeded generator; the same seed gives the same replicates.
        chunk: replicates drawn at once (bounds memory to chunk x G).

    Returns:
        float64 [B, S]: row b is sum over clusters of m_b[g] * sums[g].
    """
    sums = np.asarray(sums, dtype=np.int64)
    n_clusters = sums.shape[0]
    profiles, profile_of = _profiles(sums)
    n_profiles = profiles.shape[0]
    counts = np.bincount(profile_of, minlength=n_profiles)
    profiles = profiles.astype(np.float64)
    out = np.empty((n_boot, sums.shape[1]), dtype=np.float64)
    chunk = max(1, min(chunk, _MAX_DRAWS_PER_CHUNK // max(n_clusters, 1)))
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        if n_clusters <= _INDEX_DRAW_RATIO * n_profiles:
            drawn = profile_of[rng.integers(0, n_clusters, size=(size, n_clusters))]
            offsets = np.arange(size)[:, None] * n_profiles
            multiplicity = np.bincount(
                (drawn + offsets).ravel(), minlength=size * n_profiles
            ).reshape(size, n_profiles)
        else:
            multiplicity = rng.multinomial(n_clusters, counts / n_clusters, size=size)
        out[start : start + size] = multiplicity @ profiles
    return out


def group_sums(group: np.ndarray, column: np.ndarray, values: np.ndarray, n_columns: int) -> np.ndarray:
    """Sum `values` into an int64 [G, n_columns] table indexed by (group, column).

    group, column: int64 [N] codes; values: [N] numbers (bool or int).
    """
    n_groups = int(group.max()) + 1 if group.size else 0
    flat = np.bincount(group * n_columns + column, weights=values, minlength=n_groups * n_columns)
    return np.rint(flat).astype(np.int64).reshape(n_groups, n_columns)
