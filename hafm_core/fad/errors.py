"""Errors of the FAD engine a user can act on (each names the file, folder or sizes)."""

from hafm_core.errors import DatasetError, HafmError


class EmbeddingShapeError(HafmError):
    """Embeddings of different sizes met: two embedders, a stale file, a wrong protocol."""


class TooFewFilesError(DatasetError):
    """A set has fewer than two audio files (or frames): no covariance can be estimated."""


class UnpairedSetsError(DatasetError):
    """Two systems compared song by song do not hold the same file names."""
