"""Per-song moments: the FAD of any weighted selection of songs without re-reading frames.

Resampling songs (jackknife, bootstrap, FAD-inf subsets) only changes how many times each
song counts. With each song's frame count, sum and second moment about a common shift, the
mean and covariance of any weighting `w [B, S]` follow from three contractions, so thousands
of replicates cost thousands of `eigh` calls and no pass over the embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hafm_core.fad.distance import frechet_distances_to
from hafm_core.fad.errors import EmbeddingShapeError, TooFewFilesError

# Replicates evaluated at once: bounds memory at CHUNK * D * D float64 (8 MiB at D=128).
CHUNK = 64


@dataclass(frozen=True)
class SongMoments:
    """counts: float64 [S]; sums: float64 [S, D] and seconds: float64 [S, D, D] of (x - shift)."""

    counts: np.ndarray
    sums: np.ndarray
    seconds: np.ndarray
    shift: np.ndarray

    @classmethod
    def from_songs(cls, songs: Sequence[np.ndarray], label: str = "set") -> SongMoments:
        """songs: one float [T_i, D] embedding array per song (a file is a song)."""
        if len(songs) < 2:
            raise TooFewFilesError(f"{label}: {len(songs)} song(s); resampling needs at least two")
        dims = {np.shape(song)[1] for song in songs}
        if len(dims) != 1:
            raise EmbeddingShapeError(f"{label}: songs have embeddings of different sizes {sorted(dims)}")
        counts = np.array([len(song) for song in songs], dtype=np.float64)
        shift = sum(np.asarray(song, dtype=np.float64).sum(axis=0) for song in songs) / counts.sum()
        sums, seconds = [], []
        for song in songs:
            centred = np.asarray(song, dtype=np.float64) - shift
            sums.append(centred.sum(axis=0))
            seconds.append(centred.T @ centred)
        return cls(counts, np.stack(sums), np.stack(seconds), shift)

    @property
    def n_songs(self) -> int:
        return int(self.counts.shape[0])

    def gaussians(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Means float64 [B, D] and covariances float64 [B, D, D] for song weights [B, S]."""
        weights = np.asarray(weights, dtype=np.float64)
        count = weights @ self.counts  # (B,)
        if np.any(count < 2):
            raise TooFewFilesError("a resampled set has fewer than two frames")
        total = weights @ self.sums  # (B, D)
        second = np.einsum("bs,sde->bde", weights, self.seconds)  # (B, D, D)
        mean_shifted = total / count[:, None]
        covs = (second - count[:, None, None] * np.einsum("bd,be->bde", mean_shifted, mean_shifted))
        covs /= (count - 1.0)[:, None, None]
        return mean_shifted + self.shift, covs


def distances_for_weights(reference: tuple[np.ndarray, np.ndarray], moments: SongMoments,
                          weights: np.ndarray) -> np.ndarray:
    """FAD between a fixed reference (mu [D], cov [D, D]) and each weighting [B, S] -> float64 [B]."""
    out = np.empty(len(weights))
    for start in range(0, len(weights), CHUNK):
        mus, covs = moments.gaussians(weights[start:start + CHUNK])
        out[start:start + CHUNK] = frechet_distances_to(reference[0], reference[1], mus, covs)
    return out


def full_gaussian(moments: SongMoments) -> tuple[np.ndarray, np.ndarray]:
    """(mu [D], cov [D, D]) of all songs, each counted once."""
    mus, covs = moments.gaussians(np.ones((1, moments.n_songs)))
    return mus[0], covs[0]
