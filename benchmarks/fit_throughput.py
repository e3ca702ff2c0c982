"""Throughput of the musical-fit metrics on 10 s excerpts: batched pitch tracking against one by one.

Claim (issue 10): `hafm fit` measures several 10 s excerpts per second of CPU, and tracking
the vocal pitch of many excerpts in one CREPE batch is at least as fast as one excerpt at a
time. Side by side, in the same run, on the same synthetic excerpts:

- CREPE pitch only: one `pitch()` call on [N, n] against N calls on [1, n];
- the whole fit (pitch + librosa rhythm and harmony): `fit_excerpts` on the N excerpts
  against `fit_excerpt` called N times.

    python benchmarks/fit_throughput.py [--excerpts 4] [--duration 10] [--repeats 1] [--device cpu]
                                        [--threads N]

Prints excerpts per second (best of `--repeats`) and the ratios batched / one by one. On a
machine whose cores are oversubscribed by other processes, `--threads 1` is several times
faster than torch's default (its OpenMP threads spin waiting for each other).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def best_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--excerpts", type=int, default=4, help="excerpts per measurement (default 4)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per excerpt (default 10)")
    parser.add_argument("--repeats", type=int, default=1, help="timed repeats, best kept (default 1)")
    parser.add_argument("--device", default="cpu", help="torch device for CREPE (default cpu)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()

    import numpy as np
    import torch

    from hafm_core.audio import resample
    from hafm_core.crepe import SAMPLE_RATE_HZ, CrepeTiny
    from hafm_core.fit import DEFAULT_CONFIG, Excerpt, fit_excerpt, fit_excerpts
    from hafm_core.synth import synthesize_multitrack

    if args.threads:
        torch.set_num_threads(args.threads)
    rate = 22_050
    tracks = [synthesize_multitrack(seed, args.duration, rate) for seed in range(args.excerpts)]
    excerpts = [Excerpt(t.name, t.stems["vocals"], t.accompaniment, rate) for t in tracks]
    vocals_16k = np.stack([resample(t.stems["vocals"], rate, SAMPLE_RATE_HZ) for t in tracks])  # (N, n)
    hop = int(round(DEFAULT_CONFIG.pitch_hop_s * SAMPLE_RATE_HZ))
    model = CrepeTiny.load(args.device)
    fit_excerpts(excerpts[:1], model)  # warm-up: numba's beat tracker, librosa's filters

    n = args.excerpts
    timings = {
        "pitch, batched": best_seconds(lambda: model.pitch(vocals_16k, hop_samples=hop), args.repeats),
        "pitch, one by one": best_seconds(
            lambda: [model.pitch(vocals_16k[i:i + 1], hop_samples=hop) for i in range(n)], args.repeats),
        "whole fit, batched": best_seconds(lambda: fit_excerpts(excerpts, model), args.repeats),
        "whole fit, one by one": best_seconds(
            lambda: [fit_excerpt(e.vocal, e.accompaniment, rate, model=model) for e in excerpts], args.repeats),
    }
    print(f"{n} excerpts of {args.duration:g} s, CREPE tiny hop {hop} samples on {args.device}, "
          f"{torch.get_num_threads()} torch threads, best of {args.repeats}")
    for name, seconds in timings.items():
        print(f"  {name:<24} {n / seconds:7.2f} excerpts/s  ({seconds:.2f} s)")
    print(f"ratio pitch batched / one by one:     {timings['pitch, one by one'] / timings['pitch, batched']:.2f}x")
    print(f"ratio whole fit batched / one by one: "
          f"{timings['whole fit, one by one'] / timings['whole fit, batched']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
