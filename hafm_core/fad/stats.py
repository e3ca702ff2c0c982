"""Mergeable float64 statistics of a set of embeddings: count, sum and second moment.

A shard of files gives one `EmbeddingStats`; shards merge in any order and any grouping to
the statistics of the whole set, *bit for bit* (so a distributed job and a local pass give the
same FAD, even for rank-deficient covariances where the matrix square root amplifies a
rounding difference a million-fold). How: the sum and the raw second moment `sum x x^T` of
one file are computed in float64 in the file's own frame order (deterministic), and files are
added as double-double numbers (`hi + lo`, error-free TwoSum, about 106 bits), so the rounding
to float64 at the end does not depend on the order of additions. Embeddings are stored
float32 and always accumulated in float64 or better.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np

from hafm_core.fad.errors import EmbeddingShapeError, TooFewFilesError


def _two_sum(a_hi: np.ndarray, a_lo: np.ndarray, b_hi: np.ndarray, b_lo: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """Double-double addition (Knuth's TwoSum, then renormalised): (a_hi + a_lo) + (b_hi + b_lo)."""
    total = a_hi + b_hi
    back = total - a_hi
    error = (a_hi - (total - back)) + (b_hi - back) + (a_lo + b_lo)
    hi = total + error
    return hi, error - (hi - total)


@dataclass(frozen=True)
class EmbeddingStats:
    """count: frames; total: float64 [D] sum and second: float64 [D, D] sum of x x^T, each as a
    double-double (`total + total_low`, `second + second_low`)."""

    count: int
    total: np.ndarray
    second: np.ndarray
    total_low: np.ndarray
    second_low: np.ndarray

    @classmethod
    def empty(cls, dim: int) -> EmbeddingStats:
        return cls(0, np.zeros(dim), np.zeros((dim, dim)), np.zeros(dim), np.zeros((dim, dim)))

    @classmethod
    def from_embeddings(cls, frames: np.ndarray) -> EmbeddingStats:
        """frames: float [T, D] embeddings of one file (or any group of frames)."""
        frames = np.asarray(frames, dtype=np.float64)
        if frames.ndim != 2:
            raise EmbeddingShapeError(f"embeddings must be [frames, dim], got shape {frames.shape}")
        if frames.shape[0] == 0:
            return cls.empty(frames.shape[1])
        dim = frames.shape[1]
        return cls(frames.shape[0], frames.sum(axis=0), frames.T @ frames, np.zeros(dim), np.zeros((dim, dim)))

    @property
    def dim(self) -> int:
        return int(self.total.shape[0])

    @property
    def mean(self) -> np.ndarray:
        """float64 [D]."""
        if self.count == 0:
            raise TooFewFilesError("no embedding frames: the mean is undefined")
        return (self.total + self.total_low) / self.count

    @property
    def scatter(self) -> np.ndarray:
        """float64 [D, D] sum of centred outer products `sum (x - mean)(x - mean)^T`."""
        mean = self.mean
        scatter = (self.second - self.count * np.outer(mean, mean)) + self.second_low
        return 0.5 * (scatter + scatter.T)

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

    def _combine(self, other: EmbeddingStats, sign: float) -> EmbeddingStats:
        total = _two_sum(self.total, self.total_low, sign * other.total, sign * other.total_low)
        second = _two_sum(self.second, self.second_low, sign * other.second, sign * other.second_low)
        return EmbeddingStats(self.count + int(sign) * other.count, total[0], second[0], total[1], second[1])

    def merge(self, other: EmbeddingStats) -> EmbeddingStats:
        """Statistics of the union of two disjoint sets of frames."""
        self._check_dim(other)
        return self._combine(other, 1.0)

    def remove(self, part: EmbeddingStats) -> EmbeddingStats:
        """Statistics with `part` (a subset of these frames) taken out: the inverse of merge."""
        self._check_dim(part)
        if part.count > self.count:
            raise ValueError("cannot remove more frames than the statistics hold")
        if part.count == self.count:
            return EmbeddingStats.empty(self.dim)
        return self._combine(part, -1.0)

    def to_json(self) -> dict:
        """JSON-serialisable form: float64 arrays as base64 little-endian bytes."""
        return {"count": int(self.count), "dim": self.dim, "format": "double-double-v2",
                **{name: _encode(getattr(self, name))
                   for name in ("total", "total_low", "second", "second_low")}}

    @classmethod
    def from_json(cls, data: dict) -> EmbeddingStats:
        dim, count = int(data["dim"]), int(data["count"])
        if "second" not in data:  # the centred format stored by earlier versions
            total, scatter = _decode(data["total"], (dim,)), _decode(data["scatter"], (dim, dim))
            second = scatter + (np.outer(total, total) / count if count else 0.0)
            return cls(count, total, second, np.zeros(dim), np.zeros((dim, dim)))
        return cls(count, _decode(data["total"], (dim,)), _decode(data["second"], (dim, dim)),
                   _decode(data["total_low"], (dim,)), _decode(data["second_low"], (dim, dim)))


def merge_all(parts: list[EmbeddingStats]) -> EmbeddingStats:
    """Merge a non-empty list of statistics (any order and grouping gives the same float64 result)."""
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
