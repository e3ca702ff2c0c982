"""Throughput of the full listening-test analysis (claim: 1 000 000 judgments in < 10 s).

Runs `analysis.stats.study.analyze_study` (everything but the mixed model: rates, Wilson CIs,
exact tests, non-inferiority, side bias, two-way cluster bootstrap with 1000 replicates,
Bradley-Terry with 1000 listener-bootstrap replicates, power, listener quality, and on the
ratings Friedman, Wilcoxon-Holm, Krippendorff's alpha) on synthetic judgments, and prints the
time of each step. Beside it, the same listener-cluster bootstrap done the naive way (one
pandas resample + groupby per replicate) on the same data, to show what vectorising buys.

    .venv/bin/python benchmarks/analysis_throughput.py            # 1 000 000 judgments
    .venv/bin/python benchmarks/analysis_throughput.py --n 100000 # quicker
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import pandas as pd


def naive_listener_bootstrap(prefs: pd.DataFrame, n_boot: int, seed: int) -> float:
    """Seconds per replicate of a loop bootstrap: resample listeners, concatenate, group."""
    rng = np.random.default_rng(seed)
    chosen = np.where(prefs["chosen"] == "left", prefs["system_left"], prefs["system_right"])
    table = pd.DataFrame({"participant": prefs["participant"],
                          "pair": prefs["system_left"].astype(str) + "|" + prefs["system_right"].astype(str),
                          "won": chosen == prefs["system_left"]})
    groups = dict(tuple(table.groupby("participant", observed=True)))
    ids = list(groups)
    start = time.perf_counter()
    for _ in range(n_boot):
        sample = rng.choice(len(ids), len(ids))
        frame = pd.concat([groups[ids[i]] for i in sample], ignore_index=True)
        frame.groupby("pair")["won"].mean()
    return (time.perf_counter() - start) / n_boot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="preference judgments")
    parser.add_argument("--listeners", type=int, default=20_000)
    parser.add_argument("--excerpts", type=int, default=500)
    parser.add_argument("--rating-blocks", type=int, default=50_000, help="x 4 systems x 3 attributes rows")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--naive-replicates", type=int, default=3)
    args = parser.parse_args()

    from analysis.stats import bootstrap, bradley_terry, preference, ratings
    from analysis.stats.study import AnalysisOptions, analyze_study
    from analysis.synthetic import SyntheticStudyConfig, synthetic_study

    study = synthetic_study(SyntheticStudyConfig(
        n_judgments=args.n, n_participants=args.listeners, n_excerpts=args.excerpts,
        n_rating_blocks=args.rating_blocks))
    prefs, rates = study.preferences, study.ratings
    print(f"{len(prefs):,} preference judgments, {len(rates):,} rating rows, "
          f"{args.listeners:,} listeners, {args.excerpts} excerpts, {args.n_boot} bootstrap replicates")

    options = AnalysisOptions(mixed_model=False, n_boot=args.n_boot)
    start = time.perf_counter()
    analysis = analyze_study(prefs, rates, options=options)
    total = time.perf_counter() - start
    print(f"full analysis (no mixed model): {total:.2f} s  "
          f"({'within' if total < 10 else 'OVER'} the 10 s budget)")
    assert len(analysis.pairs) == 3

    with tempfile.TemporaryDirectory() as folder:
        prefs.to_csv(f"{folder}/preferences.csv", index=False)
        rates.to_csv(f"{folder}/ratings.csv", index=False)
        start = time.perf_counter()
        analyze_study(pd.read_csv(f"{folder}/preferences.csv"), pd.read_csv(f"{folder}/ratings.csv"),
                      options=options)
        from_csv = time.perf_counter() - start
    print(f"same, reading both CSV files first (as `hafm analyze`): {from_csv:.2f} s")

    steps = {
        "preference rates + tests": lambda: preference.preference_rates(prefs),
        "two-way cluster bootstrap": lambda: bootstrap.cluster_bootstrap(prefs, n_boot=args.n_boot),
        "Bradley-Terry + bootstrap": lambda: bradley_terry.bradley_terry(prefs, n_boot=args.n_boot),
        "Friedman": lambda: ratings.friedman(rates),
        "Wilcoxon + Holm": lambda: ratings.wilcoxon_pairs(rates),
    }
    print("individual steps on the raw CSV-like frame (object strings, no shared encoding):")
    for name, step in steps.items():
        t0 = time.perf_counter()
        step()
        print(f"  {name:28s} {time.perf_counter() - t0:6.2f} s")

    t0 = time.perf_counter()
    bootstrap.cluster_bootstrap(prefs, clusters=("participant",), n_boot=args.n_boot)
    vectorised = (time.perf_counter() - t0) / args.n_boot
    naive = naive_listener_bootstrap(prefs, args.naive_replicates, seed=0)
    print(f"listener bootstrap per replicate: vectorised {vectorised * 1e3:.2f} ms, "
          f"naive loop {naive * 1e3:.0f} ms, ratio {naive / vectorised:.0f}x")


if __name__ == "__main__":
    main()
