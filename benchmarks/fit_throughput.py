"""Throughput of the musical-fit metrics on 10 s excerpts: batched pitch tracking against one by one.

Claim (issue 16, item 6): batching pays, the whole fit of N excerpts in one `fit_excerpts`
call (one CREPE call, one STFT shared by onsets and harmony, one constant-Q chroma per
batch) costing at most 1/1.5 of `fit_excerpt` called N times. Side by side, in the same
run, on the same synthetic excerpts:

- CREPE pitch only: one `pitch()` call on [N, n] against N calls on [1, n];
- the whole fit: `fit_excerpts` on the N excerpts against `fit_excerpt` called N times.

CPU seconds (`time.process_time`, all threads of this process) per 10 s of excerpt are
printed beside wall-clock excerpts per second; the ratios are of CPU time.

Where the time goes (cProfile, 4 excerpts of 10 s, one torch thread): CREPE's convolutions
are about three quarters of it and cost the same per frame whether frames come from one
excerpt or many (any chunk size from 32 to 256 frames); what a batch shares is the per-call
part, mainly the constant-Q filters and mel basis (about 0.05 s per call). So on CPU the
claim is out of reach while CREPE dominates; the script reports it as not met rather than
measure something else.

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

CLAIMED_RATIO = 1.5


def best_seconds(function, repeats: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of the fastest of `repeats` calls."""
    times = []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    return min(times, key=lambda t: t[1])


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
    # Warm-up of both paths: numba compiles librosa's beat tracker, and its overlap-add
    # (inverse STFT) again for a batch; 0.7 s that would otherwise land in the first timing.
    fit_excerpts(excerpts[:1], model)
    fit_excerpts(excerpts[:2], model)

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
    per_10_s = 10.0 / (n * args.duration)
    for name, (wall, cpu) in timings.items():
        print(f"  {name:<24} {n / wall:7.2f} excerpts/s wall  {cpu * per_10_s:6.3f} CPU s per 10 s excerpt")
    for what in ("pitch", "whole fit"):
        ratio = timings[f"{what}, one by one"][1] / timings[f"{what}, batched"][1]
        print(f"ratio {what} batched / one by one (CPU): {ratio:.2f}x")
    print(f"claim (issue 16 item 6) whole fit >= {CLAIMED_RATIO}x: "
          f"{'met' if ratio >= CLAIMED_RATIO else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
