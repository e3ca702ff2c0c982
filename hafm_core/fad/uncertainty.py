"""Honest uncertainty for FAD: jackknife CI, paired bootstrap between systems, FAD-inf.

Songs (files) are the unit of resampling, never frames: frames of one song are correlated
and resampling them would understate the spread.
- Jackknife (two-sample, delete one song; Arvesen 1969): the standard error of one FAD.
- Paired bootstrap: the same resampled songs for two systems give the CI of their difference
  and of the relative change, which is what a regression verdict must use.
- FAD-inf (Chong & Forsyth 2020, "Effectively Unbiased FID and Inception Score and where to
  find them"; adapted to audio by fadtk): FAD(n) = FAD_inf + k / n fitted over subsets of n eval songs drawn
  without replacement with a fixed seed, reporting slope and R^2 of the fit.
The background set is the fixed reference in the bootstrap and FAD-inf; the jackknife
deletes songs from both sets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from hafm_core.fad.errors import TooFewFilesError, UnpairedSetsError
from hafm_core.fad.songs import SongMoments, distances_for_weights, full_gaussian


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided confidence interval."""

    estimate: float
    low: float
    high: float
    confidence: float
    method: str
    quantity: str = ""  # what the interval covers, e.g. "FAD at n_background=50, n_eval=50"

    def to_json(self) -> dict:
        return {"estimate": self.estimate, "low": self.low, "high": self.high,
                "confidence": self.confidence, "method": self.method, "quantity": self.quantity}


def _leave_one_out(n: int) -> np.ndarray:
    return 1.0 - np.eye(n)


@dataclass(frozen=True)
class Jackknife:
    """Delete-one-song jackknife of the plug-in FAD over both sets.

    estimate: the plug-in FAD at these sizes; standard_error: the square root of the sum of the
    two one-sample jackknife variances `(n - 1) / n * sum_i (theta_(-i) - mean)^2`;
    bias_corrected: `theta - sum_sets (n - 1) * (mean_i theta_(-i) - theta)` (Quenouille), which
    removes the bias terms of order 1/n of each set, i.e. the `k / n` of FAD(n) = FAD_inf + k / n:
    an estimate of the n-free FAD.
    """

    estimate: float
    standard_error: float
    bias_corrected: float
    n_background: int
    n_eval: int


def jackknife(background: SongMoments, evaluation: SongMoments) -> Jackknife:
    ref_bg, ref_ev = full_gaussian(background), full_gaussian(evaluation)
    estimate = float(distances_for_weights(ref_bg, evaluation, np.ones((1, evaluation.n_songs)))[0])
    variance, bias = 0.0, 0.0
    for reference, moments in ((ref_bg, evaluation), (ref_ev, background)):
        n = moments.n_songs
        values = distances_for_weights(reference, moments, _leave_one_out(n))
        variance += (n - 1) / n * float(np.sum((values - values.mean()) ** 2))
        bias += (n - 1) * (float(values.mean()) - estimate)
    return Jackknife(estimate, variance ** 0.5, estimate - bias, background.n_songs, evaluation.n_songs)


def _z(confidence: float) -> float:
    return float(scipy_stats.norm.ppf(0.5 + confidence / 2))


def jackknife_interval(background: SongMoments, evaluation: SongMoments,
                       confidence: float = 0.95) -> tuple[Interval, float]:
    """CI of the FAD *at these set sizes* (the expected plug-in FAD at n), not of the true FAD.

    Normal interval around the plug-in FAD with the jackknife standard error; returns
    (interval, standard error). The plug-in FAD is biased upward by 1/n, so this interval
    does not cover the n-free FAD: see `fad_inf_interval` for that.
    """
    jk = jackknife(background, evaluation)
    z = _z(confidence)
    return Interval(jk.estimate, max(jk.estimate - z * jk.standard_error, 0.0),
                    jk.estimate + z * jk.standard_error, confidence,
                    "jackknife (delete one song, both sets)",
                    f"FAD at n_background={jk.n_background}, n_eval={jk.n_eval}"), jk.standard_error


def fad_inf_interval(background: SongMoments, evaluation: SongMoments,
                     confidence: float = 0.95) -> Interval:
    """CI of the n-free FAD: jackknife bias-corrected estimate +- z * jackknife standard error.

    Its coverage of the true FAD of two known Gaussians is checked by simulation in the tests
    and in `benchmarks/fad_intervals.py`. The lower end is not clipped at 0 (the estimate of a
    small FAD can be negative; clipping would hide that).
    """
    jk = jackknife(background, evaluation)
    z = _z(confidence)
    return Interval(jk.bias_corrected, jk.bias_corrected - z * jk.standard_error,
                    jk.bias_corrected + z * jk.standard_error, confidence,
                    "jackknife bias-corrected (delete one song, both sets)",
                    "FAD-inf (n-free)")


def bootstrap_weights(n_songs: int, n_resamples: int, seed: int) -> np.ndarray:
    """Song multiplicities float64 [B, S] for B resamples of S songs with replacement."""
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, n_songs, size=(n_resamples, n_songs))
    return np.stack([np.bincount(row, minlength=n_songs) for row in indices]).astype(np.float64)


@dataclass(frozen=True)
class PairedComparison:
    """Candidate against baseline on the same songs, same background."""

    fad_candidate: float
    fad_baseline: float
    difference: Interval  # candidate - baseline (positive: candidate worse)
    relative_change: Interval  # candidate / baseline - 1
    relative_change_upper: float  # one-sided upper bound at `confidence`
    n_songs: int
    n_resamples: int
    seed: int

    def to_json(self) -> dict:
        return {"fad_candidate": self.fad_candidate, "fad_baseline": self.fad_baseline,
                "difference": self.difference.to_json(),
                "relative_change": self.relative_change.to_json(),
                "relative_change_upper": self.relative_change_upper,
                "n_songs": self.n_songs, "n_resamples": self.n_resamples, "seed": self.seed}


def paired_bootstrap(background: SongMoments, candidate: SongMoments, baseline: SongMoments,
                     n_resamples: int = 1000, seed: int = 0,
                     confidence: float = 0.95) -> PairedComparison:
    """Percentile bootstrap over songs, the same resampled songs for both systems.

    `candidate` and `baseline` hold the same songs in the same order (paired by file name).
    """
    if candidate.n_songs != baseline.n_songs:
        raise UnpairedSetsError(
            f"candidate has {candidate.n_songs} songs and baseline {baseline.n_songs}: "
            "a paired comparison needs the same songs"
        )
    reference = full_gaussian(background)
    ones = np.ones((1, candidate.n_songs))
    fad_c = float(distances_for_weights(reference, candidate, ones)[0])
    fad_b = float(distances_for_weights(reference, baseline, ones)[0])
    weights = bootstrap_weights(candidate.n_songs, n_resamples, seed)
    rep_c = distances_for_weights(reference, candidate, weights)
    rep_b = distances_for_weights(reference, baseline, weights)
    alpha = 1.0 - confidence
    diff = rep_c - rep_b
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(rep_b > 0, rep_c / rep_b - 1.0, np.where(rep_c > 0, np.inf, 0.0))
    lo, hi = 100 * alpha / 2, 100 * (1 - alpha / 2)
    method = f"paired percentile bootstrap over {candidate.n_songs} songs, {n_resamples} resamples"
    return PairedComparison(
        fad_candidate=fad_c,
        fad_baseline=fad_b,
        difference=Interval(fad_c - fad_b, float(np.percentile(diff, lo)),
                            float(np.percentile(diff, hi)), confidence, method),
        relative_change=Interval(fad_c / fad_b - 1.0 if fad_b > 0 else float("inf") if fad_c > 0 else 0.0,
                                 float(np.percentile(relative, lo)),
                                 float(np.percentile(relative, hi)), confidence, method),
        relative_change_upper=float(np.percentile(relative, 100 * confidence)),
        n_songs=candidate.n_songs,
        n_resamples=n_resamples,
        seed=seed,
    )


@dataclass(frozen=True)
class FadInfinity:
    """FAD(n) = value + slope / n fitted over subsets of n eval songs."""

    value: float
    slope: float
    r_squared: float
    sizes: tuple[int, ...]
    fads: tuple[float, ...]  # mean FAD over the subsets of each size
    repeats: int
    seed: int

    def to_json(self) -> dict:
        return {"value": self.value, "slope": self.slope, "r_squared": self.r_squared,
                "sizes": list(self.sizes), "fads": list(self.fads), "repeats": self.repeats,
                "seed": self.seed}


def subset_sizes(n_songs: int, n_points: int) -> list[int]:
    """Distinct subset sizes from about a fifth of the songs (at least 2) up to all of them."""
    smallest = max(2, n_songs // 5)
    sizes = sorted({int(round(n)) for n in np.linspace(smallest, n_songs, n_points)})
    if len(sizes) < 3:
        raise TooFewFilesError(
            f"{n_songs} eval songs give only {len(sizes)} distinct subset sizes; FAD-inf needs at "
            "least 3 (use 10 or more songs)"
        )
    return sizes


def fad_infinity(background: SongMoments, evaluation: SongMoments, n_points: int = 8,
                 repeats: int = 4, seed: int = 0) -> FadInfinity:
    """Extrapolate FAD to infinitely many eval songs (Chong & Forsyth 2020), whole songs, no replacement."""
    rng = np.random.default_rng(seed)
    reference = full_gaussian(background)
    n = evaluation.n_songs
    sizes = subset_sizes(n, n_points)
    fads = []
    for size in sizes:
        draws = 1 if size == n else repeats
        weights = np.zeros((draws, n))
        for row in weights:
            row[rng.choice(n, size=size, replace=False)] = 1.0
        fads.append(float(distances_for_weights(reference, evaluation, weights).mean()))
    x = 1.0 / np.asarray(sizes, dtype=np.float64)
    y = np.asarray(fads)
    design = np.stack([np.ones_like(x), x], axis=1)
    (intercept, slope), *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - (intercept + slope * x)
    total = np.sum((y - y.mean()) ** 2)
    r_squared = 1.0 - float(np.sum(residual ** 2) / total) if total > 0 else 1.0
    return FadInfinity(float(intercept), float(slope), r_squared, tuple(sizes), tuple(fads),
                       repeats, seed)


def paired_names(songs_a: dict[str, np.ndarray], songs_b: dict[str, np.ndarray],
                 labels: tuple[str, str]) -> list[str]:
    """The song names of two systems, sorted; names found in one system only are an error."""
    only_a = sorted(set(songs_a) - set(songs_b))
    only_b = sorted(set(songs_b) - set(songs_a))
    if only_a or only_b:
        parts = []
        if only_a:
            parts.append(f"only in {labels[0]}: {', '.join(only_a[:5])}{' ...' if len(only_a) > 5 else ''}")
        if only_b:
            parts.append(f"only in {labels[1]}: {', '.join(only_b[:5])}{' ...' if len(only_b) > 5 else ''}")
        raise UnpairedSetsError("songs are paired by file name, but " + "; ".join(parts))
    return sorted(songs_a)


def paired_moments(songs_a: dict[str, np.ndarray], songs_b: dict[str, np.ndarray],
                   labels: tuple[str, str]) -> tuple[SongMoments, SongMoments, list[str]]:
    """Moments of two systems' songs matched by name (same order); unmatched names are an error."""
    names = paired_names(songs_a, songs_b, labels)
    return (SongMoments.from_songs([songs_a[k] for k in names], labels[0]),
            SongMoments.from_songs([songs_b[k] for k in names], labels[1]), names)
