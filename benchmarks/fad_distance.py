"""Benchmark: FAD's matrix square root via the symmetric eigh form against scipy.linalg.sqrtm.

Both compute the same float64 FAD on the same covariances (checked to agree); the script
prints seconds per call and the speed-up at each dimension, measured side by side.

    .venv/bin/python benchmarks/fad_distance.py            # d = 128, 512, 2048
    .venv/bin/python benchmarks/fad_distance.py --dims 128 512 1024 2048 4096 --repeats 3
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.linalg

from hafm_core.fad import frechet_distance


def sqrtm_fad(mu_a, cov_a, mu_b, cov_b) -> float:
    root = scipy.linalg.sqrtm(cov_a @ cov_b)
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root).real)


def gaussian(rng, dim):
    x = rng.standard_normal((2 * dim, dim)) @ (rng.standard_normal((dim, dim)) / np.sqrt(dim))
    return x.mean(axis=0), np.cov(x, rowvar=False)


def best_of(fn, args, repeats: int) -> tuple[float, float]:
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn(*args)
        times.append(time.perf_counter() - start)
    return min(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[128, 512, 2048])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'d':>6} {'eigh s':>10} {'sqrtm s':>10} {'speed-up':>9} {'rel. diff':>10}")
    for dim in args.dims:
        a, b = gaussian(rng, dim), gaussian(rng, dim)
        t_eigh, v_eigh = best_of(frechet_distance, (*a, *b), args.repeats)
        t_sqrtm, v_sqrtm = best_of(sqrtm_fad, (*a, *b), args.repeats)
        print(f"{dim:>6} {t_eigh:>10.4f} {t_sqrtm:>10.4f} {t_sqrtm / t_eigh:>8.1f}x "
              f"{abs(v_eigh - v_sqrtm) / abs(v_sqrtm):>10.1e}")


if __name__ == "__main__":
    main()
