"""Objective musical fit: does an accompaniment follow the vocal's beat and harmony?

    vocal + accompaniment (any rate, mono)
      -> checks            bad input becomes a per-excerpt status (`excerpt.STATUSES`)
      -> rhythm            onsets and beats away from edges and silences: beat F-measure, xcorr
      -> harmony           CREPE tiny pitch vs harmonic-part chroma: chord tones, key agreement
      -> scores            rhythm_score, harmony_score, fit_score in [0, 1] (weights in `excerpt`)
      -> pairs             folders paired by file name, summary mean (failures as worst) with bootstrap CI and failure rate

librosa's beat tracker is compiled by numba on first use (about 20 s). Each process compiles
into its own cache folder, seeded from a published one (`hafm_core.fit.numba_cache`): a cache
shared by concurrent processes can be poisoned. It is configured here, before anything
imports librosa.
"""

from hafm_core.fit.numba_cache import configure_numba_cache

configure_numba_cache()

from hafm_core.fit.excerpt import (  # noqa: E402  (after the numba cache setting)
    DEFAULT_CONFIG,
    HARMONY_STATUSES,
    METRIC_NAMES,
    METRIC_RANGES,
    STATUSES,
    Excerpt,
    FitConfig,
    FitResult,
    fit_excerpt,
    fit_excerpts,
)
from hafm_core.fit.pairs import fit_path_pairs, pair_folders, summarize  # noqa: E402

__all__ = [
    "DEFAULT_CONFIG", "HARMONY_STATUSES", "METRIC_NAMES", "METRIC_RANGES", "STATUSES", "Excerpt", "FitConfig", "FitResult",
    "fit_excerpt", "fit_excerpts", "fit_path_pairs", "pair_folders", "summarize",
]
