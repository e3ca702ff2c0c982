"""The song (cluster) bootstrap of a paired AUC, against exact and analytic references.

References: enumeration of every ordered draw of 3 songs (27 equally likely), the binomial
distribution (scipy) when every window of a song has the same outcome, and coverage of a
known AUC in a clustered simulation.
"""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from hafm_core.fit import validation as v

# Windows per song as (true score, manipulated score): a win, a tie (1/2) or a loss.
SONGS = {"a": [(0.9, 0.2), (0.8, 0.3), (0.5, 0.5), (0.1, 0.7)], "b": [(0.2, 0.6), (0.3, 0.4)],
         "c": [(0.7, 0.1), (0.6, 0.2), (0.9, 0.0)]}


def flatten(songs: dict) -> tuple[list, list, list]:
    true, other, labels = [], [], []
    for song, pairs in songs.items():
        for t, o in pairs:
            true.append(t), other.append(o), labels.append(song)
    return true, other, labels


def exact_distribution(songs: dict) -> dict[float, float]:
    """{AUC: probability} over every ordered draw of len(songs) songs with replacement."""
    names = list(songs)
    counts = Counter()
    for draw in itertools.product(names, repeat=len(names)):
        pairs = [pair for song in draw for pair in songs[song]]
        wins = sum(1.0 if t > o else 0.5 if t == o else 0.0 for t, o in pairs)
        counts[round(wins / len(pairs), 12)] += 1
    total = len(names) ** len(names)
    return {auc: n / total for auc, n in sorted(counts.items())}


def test_the_bootstrap_distribution_is_the_enumerated_one():
    n = 20_000
    boot = v.song_bootstrap(*flatten(SONGS), n_resamples=n, seed=1)
    exact = exact_distribution(SONGS)
    found = Counter(np.round(boot, 12))
    assert set(found) <= set(exact)
    for auc, p in exact.items():
        assert abs(found[auc] / n - p) <= 5 * np.sqrt(p * (1 - p) / n), auc
    cdf = np.cumsum(list(exact.values()))
    for level in (0.025, 0.975):
        assert np.min(np.abs(cdf - level)) > 0.005  # no jump of the exact CDF at the level: the quantile is sharp
    low, high = (list(exact)[int(np.searchsorted(cdf, level))] for level in (0.025, 0.975))
    interval = v.song_auc_interval(*flatten(SONGS))
    assert interval.songs == 3 and interval.windows == 9
    assert interval.auc == pytest.approx(5.5 / 9)  # wins: a 2.5 of 4, b 0 of 2, c 3 of 3
    assert (interval.low, interval.high) == pytest.approx((low, high))


def test_songs_with_one_outcome_each_give_the_binomial_interval_whatever_their_window_count():
    # 14 songs where the truth always wins, 6 where it always loses, 10 windows each: the song
    # bootstrap AUC is Binomial(20, 0.7) / 20; resampling the 200 windows would be far narrower.
    true = [1.0] * 140 + [0.0] * 60
    other = [0.0] * 140 + [1.0] * 60
    songs = [f"s{k // 10}" for k in range(200)]
    interval = v.song_auc_interval(true, other, songs)
    reference = stats.binom(20, 0.7)
    assert interval.auc == pytest.approx(0.7)
    assert (interval.low, interval.high) == pytest.approx((reference.ppf(0.025) / 20, reference.ppf(0.975) / 20))
    assert str(interval) == "AUC 0.70 [0.50, 0.90] (20 songs, 200 windows)"


def test_one_song_has_no_interval():
    interval = v.song_auc_interval([0.9, 0.8, 0.1], [0.1, 0.2, 0.3], ["x", "x", "x"])
    assert interval.low is None and interval.high is None
    assert str(interval) == "AUC 0.67 (1 song: no interval)"


def test_the_interval_covers_a_known_auc_in_clustered_data():
    # Each song has its own chance that the truth wins (Beta, mean 0.7); its windows share it.
    rng = np.random.default_rng(7)
    simulations, covered, covered_by_windows = 300, 0, 0
    for k in range(simulations):
        song_p = rng.beta(1.4, 0.6, size=30)  # mean 0.7
        wins = (rng.random((30, 6)) < song_p[:, None]).astype(float).ravel()
        songs = np.repeat(np.arange(30), 6).astype(str)
        interval = v.song_auc_interval(wins, 1 - wins, songs, n_resamples=2000, seed=k)
        covered += interval.low <= 0.7 <= interval.high
        by_window = v.song_auc_interval(wins, 1 - wins, np.arange(180).astype(str), n_resamples=2000, seed=k)
        covered_by_windows += by_window.low <= 0.7 <= by_window.high
    assert covered / simulations >= 0.90, covered / simulations
    assert covered_by_windows / simulations < 0.85  # the simulation is clustered enough to tell them apart
