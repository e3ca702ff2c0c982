"""The regression gate's error rates, by simulation with known truth, and its p-value by brute force."""

import numpy as np
import pytest

from hafm_core.fad.gate import regression_gate, sign_flips
from tests.fad.simulation import World, paired_systems, real_songs
from tests.fad.test_uncertainty import fad_of

ALPHA = 0.05
SMALL = World(dim=4, frames=6)


def gate_runs(world: World, n_songs: int, worse_by: float, runs: int, seed: int, **gate) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for run in range(runs):
        background = real_songs(rng, world, n_songs)
        candidate, baseline = paired_systems(rng, world, n_songs, worse_by)
        out.append(regression_gate(background, candidate, baseline, alpha=ALPHA, n_permutations=99,
                                   seed=run, **gate))
    return out


@pytest.mark.parametrize("n_songs", [8, 30])
def test_equal_systems_fail_at_most_alpha_of_the_time_at_any_number_of_songs(n_songs):
    runs = 200
    results = gate_runs(SMALL, n_songs, 0.0, runs, seed=n_songs, max_relative_increase=0.05)
    found = [r.verdict for r in results]
    mc_error = np.sqrt(ALPHA * (1 - ALPHA) / runs)
    # Exact test: the false-alarm rate is alpha up to Monte Carlo error (not far above it, and
    # not a gate that never fails either).
    assert abs(found.count("regression") / runs - ALPHA) <= 3 * mc_error, found.count("regression")
    # The rest pass exactly when a worsening of the margin was detectable at this n: with a
    # margin above every run's detectable worsening, equal systems pass 1 - alpha of the time.
    for result in results:
        if result.verdict != "regression":
            expected = "pass" if result.detectable_relative_worsening <= 0.05 else "inconclusive"
            assert result.verdict == expected
    if n_songs >= 30:
        assert max(r.detectable_relative_worsening for r in results) < np.inf


def test_a_clearly_worse_candidate_fails():
    found = [r.verdict for r in gate_runs(SMALL, 40, 1.0, 40, seed=1)]
    assert found.count("regression") >= 36, found


def test_too_few_songs_is_inconclusive_with_the_detectable_worsening_and_songs_needed():
    rng = np.random.default_rng(2)
    background = real_songs(rng, SMALL, 8)
    candidate, baseline = paired_systems(rng, SMALL, 8, 0.0)
    result = regression_gate(background, candidate, baseline, max_relative_increase=0.05,
                             n_permutations=99, seed=0)
    if result.verdict == "regression":  # a 5% false alarm with this seed would void the test
        pytest.skip("this draw is one of the false alarms")
    assert result.verdict == "inconclusive"
    assert result.detectable_relative_worsening > 0.05
    expected = int(np.ceil(8 * (result.detectable_relative_worsening / 0.05) ** 2))
    assert result.songs_needed == expected


def test_p_value_matches_brute_force_swaps_with_scipy_sqrtm():
    rng = np.random.default_rng(4)
    background = real_songs(rng, SMALL, 7)
    candidate, baseline = paired_systems(rng, SMALL, 6, 0.5)
    result = regression_gate(background, candidate, baseline, n_permutations=30, seed=11)
    observed = fad_of(background, candidate) - fad_of(background, baseline)
    null = []
    for row in sign_flips(6, 30, seed=11).astype(bool):
        c = [b if swap else c for c, b, swap in zip(candidate, baseline, row)]
        b = [c if swap else b for c, b, swap in zip(candidate, baseline, row)]
        null.append(fad_of(background, c) - fad_of(background, b))
    assert result.difference == pytest.approx(observed, rel=1e-9)
    assert result.fad_candidate == pytest.approx(fad_of(background, candidate), rel=1e-9)
    assert result.p_value == (1 + sum(v >= observed for v in null)) / 31


def test_a_system_against_itself_is_never_a_regression():
    rng = np.random.default_rng(5)
    background = real_songs(rng, SMALL, 10)
    system, _ = paired_systems(rng, SMALL, 10, 0.0)
    result = regression_gate(background, system, system, n_permutations=99)
    assert abs(result.difference) < 1e-12 * result.fad_baseline and result.p_value == 1.0
    assert result.verdict != "regression"
