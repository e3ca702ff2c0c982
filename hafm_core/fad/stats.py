"""Mergeable float64 statistics of a set of embeddings: count, sum and scatter matrix.

A shard of files gives one `EmbeddingStats`; shards merge in any order (Chan, Golub and
LeVeque's pairwise update) to the statistics of the whole set, equal to a single pass up to
rounding. Embeddings are stored float32 and always accumulated in float64.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np

from hafm_core.fad.errors import EmbeddingShapeError, TooFewFilesError


@dataclass(frozen=True)
class EmbeddingStats:
    """count: frames; total: float64 [D] sum; scatter: float64 [D, D] sum of centred outer products."""

    count: int
    total: np.ndarray
    scatter: np.ndarray

    @classmethod
    def empty(cls, dim: int) -> EmbeddingStats:
        return cls(0, np.zeros(dim), np.zeros((dim, dim)))

    @classmethod
    def from_embeddings(cls, frames: np.ndarray) -> EmbeddingStats:
        """frames: float [T, D] embeddings of one file (or any group of frames)."""
        frames = np.asarray(frames, dtype=np.float64)
        if frames.ndim != 2:
            raise EmbeddingShapeError(f"embeddings must be [frames, dim], got shape {frames.shape}")
        if frames.shape[0] == 0:
            return cls.empty(frames.shape[1])
        total = frames.sum(axis=0)
        centred = frames - total / frames.shape[0]
        return cls(frames.shape[0], total, centred.T @ centred)

    @property
    def dim(self) -> int:
        return int(self.total.shape[0])

    @property
    def mean(self) -> np.ndarray:
        """float64 [D]."""
        if self.count == 0:
            raise TooFewFilesError("no embedding frames: the mean is undefined")
        return self.total / self.count

    @property
    def covariance(self) -> np.ndarray:
        """float64 [D, D] unbiased sample covariance (divides by count - 1)."""
        if self.count < 2:
            raise TooFewFilesError(f"{self.count} embedding frame(s): a covariance needs at least two")
        return self.scatter / (self.count - 1)

    def _check_dim(self, other: EmbeddingStats) -> None:
        if self.dim != other.dim:
            raise EmbeddingShapeError(
                f"cannot combine statistics of {self.dim}-dimensional and {other.dim}-dimensional "
                "embeddings (same embedder and protocol on both sides?)"
            )

    def merge(self, other: EmbeddingStats) -> EmbeddingStats:
        """Statistics of the union of two disjoint sets of frames."""
        self._check_dim(other)
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        count = self.count + other.count
        delta = other.total / other.count - self.total / self.count
        scatter = (self.scatter + other.scatter
                   + np.outer(delta, delta) * (self.count * other.count / count))
        return EmbeddingStats(count, self.total + other.total, scatter)

    def remove(self, part: EmbeddingStats) -> EmbeddingStats:
        """Statistics with `part` (a subset of these frames) taken out: the inverse of merge."""
        self._check_dim(part)
        count = self.count - part.count
        if count < 0:
            raise ValueError("cannot remove more frames than the statistics hold")
        if count == 0:
            return EmbeddingStats.empty(self.dim)
        rest_total = self.total - part.total
        delta = part.total / part.count - rest_total / count
        scatter = self.scatter - part.scatter - np.outer(delta, delta) * (part.count * count / self.count)
        return EmbeddingStats(count, rest_total, 0.5 * (scatter + scatter.T))

    def to_json(self) -> dict:
        """JSON-serialisable form: float64 arrays as base64 little-endian bytes."""
        return {
            "count": int(self.count),
            "dim": self.dim,
            "total": _encode(self.total),
            "scatter": _encode(self.scatter),
        }

    @classmethod
    def from_json(cls, data: dict) -> EmbeddingStats:
        dim = int(data["dim"])
        return cls(int(data["count"]), _decode(data["total"], (dim,)), _decode(data["scatter"], (dim, dim)))


def merge_all(parts: list[EmbeddingStats]) -> EmbeddingStats:
    """Merge a non-empty list of statistics (any order gives the same result up to rounding)."""
    if not parts:
        raise TooFewFilesError("no statistics to merge")
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    return merged


def _encode(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f8").tobytes()).decode("ascii")


def _decode(text: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f8").reshape(shape).copy()
