"""Objective musical fit: does an accompaniment follow the vocal's beat and harmony?

    vocal + accompaniment (any rate, mono)
      -> checks            bad input becomes a per-excerpt status (`excerpt.STATUSES`)
      -> rhythm            librosa onsets and beats: hit rate, beat emphasis, xcorr prominence
      -> harmony           CREPE tiny pitch vs accompaniment chroma: chord tones, key agreement
      -> scores            rhythm_score, harmony_score, fit_score in [0, 1] (weights in `excerpt`)
      -> pairs             folders paired by file name, summary mean with bootstrap CI

librosa's beat tracker is compiled by numba on first use (about 20 s); its cache goes under
`HAFM_CACHE_DIR/numba` unless `NUMBA_CACHE_DIR` is already set, so later runs start fast.
numba reads the variable when it is first imported, hence here, before anything imports librosa.
"""

import os

from hafm_core.config import cache_dir

os.environ.setdefault("NUMBA_CACHE_DIR", str(cache_dir() / "numba"))

from hafm_core.fit.excerpt import (  # noqa: E402  (after the numba cache setting)
    DEFAULT_CONFIG,
    METRIC_NAMES,
    STATUSES,
    Excerpt,
    FitConfig,
    FitResult,
    fit_excerpt,
    fit_excerpts,
)
from hafm_core.fit.pairs import fit_path_pairs, pair_folders, summarize  # noqa: E402

__all__ = [
    "DEFAULT_CONFIG", "METRIC_NAMES", "STATUSES", "Excerpt", "FitConfig", "FitResult",
    "fit_excerpt", "fit_excerpts", "fit_path_pairs", "pair_folders", "summarize",
]
