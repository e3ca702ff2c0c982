"""Frechet Audio Distance: embedders, mergeable statistics, distance, uncertainty.

    audio files -> embedders (named, versioned protocols) -> per-file float32 [T, D] (cached)
      -> EmbeddingStats (count, sum, scatter; float64, mergeable across shards)
      -> frechet_distance (float64, symmetric eigh form)
      -> uncertainty: jackknife CI, paired bootstrap, FAD-inf

Importing this package loads numpy only; embedders load torch when built.
"""

from hafm_core.fad.distance import frechet_distance
from hafm_core.fad.errors import EmbeddingShapeError, TooFewFilesError, UnpairedSetsError
from hafm_core.fad.stats import EmbeddingStats, merge_all

__all__ = [
    "EmbeddingShapeError",
    "EmbeddingStats",
    "TooFewFilesError",
    "UnpairedSetsError",
    "frechet_distance",
    "merge_all",
]
