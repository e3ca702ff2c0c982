"""Tokenizer throughput on CPU at the real base sizes (random init), batched against one by one.

Claim (issue 4): seconds of audio tokenized per second of wall clock for EnCodec 24 kHz
(6 kbps, 8 codebooks) and HuBERT-base (layer-9 features + 500-centroid nearest search), with
B excerpts in one batch against the same excerpts one at a time, measured side by side in
one run on the same synthetic audio; and the peak resident memory added by tokenizing one
batch of 16 x 10 s, measured in a fresh subprocess per model (ru_maxrss after the model is
loaded and warmed on a short input, against after the batch).

Weights are random (the architectures are the real ones: `HubertConfig()` and the
`facebook/encodec_24khz` config), which is all speed and memory depend on.

    .venv/bin/python benchmarks/tokenizer_throughput.py      # short: 4 x 2 s, memory for 16 x 2 s
    .venv/bin/python benchmarks/tokenizer_throughput.py --batch 8 --seconds 4 --repeats 2 \
        --memory-seconds 10                                     # the issue's 16 x 10 s figure (minutes)
    .venv/bin/python benchmarks/tokenizer_throughput.py --skip-memory   # throughput only

Measured on the shared 2-core CPU development machine while other jobs loaded it (load
average 6-10), so absolute rates are low and noisy; ratios are side by side in one run:
- batch 8 x 4 s, best of 2: EnCodec 2.7 audio-s/s batched vs 1.2 one by one (2.3x);
  HuBERT-base 2.1 vs 1.1 (1.9x).
- batch 4 x 3 s, best of 2 (warm-up on the timed shapes): EnCodec 3.2 vs 7.4 (0.43x, batching
  *lost*); HuBERT-base 2.6 vs 1.2 (2.1x). EnCodec's gain from batching on CPU is not settled by
  these runs; HuBERT's is consistent.
- peak memory added by one batch of 16 x 10 s (ru_maxrss, first version of this script):
  EnCodec +1390 MiB (process 2.9 GiB), HuBERT-base +1830 MiB (process 3.3 GiB); of 16 x 2.5 s
  (VmHWM reset before the batch): EnCodec +597 MiB, HuBERT-base +626 MiB. HuBERT's 512-channel
  first conv at 3.2 kHz and EnCodec's full-rate first layers dominate: tokenize at batch 8 or
  less on small machines.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hafm_core import constants
from hafm_core.synth import synthesize_multitrack


def base_weights(folder: Path) -> Path:
    """Random-init HuBERT-base and EnCodec-24kHz folders (real sizes) + random 500 x 768 centroids."""
    from transformers import EncodecConfig, EncodecModel, HubertConfig, HubertModel

    from hafm_core.tokens.semantic import save_kmeans

    torch.manual_seed(0)
    if not (folder / "hubert-base-ls960").is_dir():
        HubertModel(HubertConfig()).save_pretrained(folder / "hubert-base-ls960")
        # The facebook/encodec_24khz config: 1.5-24 kbps, ratios 8-5-4-2, causal, no normalisation.
        EncodecModel(EncodecConfig()).save_pretrained(folder / "encodec_24khz")
        centroids = np.random.default_rng(0).standard_normal((constants.KMEANS_CLUSTERS, 768)).astype(np.float32)
        save_kmeans(centroids, folder / "kmeans.npy")
    return folder


def load(kind: str, folder: Path):
    if kind == "encodec":
        from hafm_core.tokens.acoustic import AcousticTokenizer

        return AcousticTokenizer.from_pretrained(folder / "encodec_24khz", device="cpu"), constants.ACOUSTIC_SAMPLE_RATE_HZ
    from hafm_core.tokens.semantic import SemanticTokenizer

    tokenizer = SemanticTokenizer.from_pretrained(folder / "hubert-base-ls960", folder / "kmeans.npy", device="cpu")
    return tokenizer, constants.SEMANTIC_SAMPLE_RATE_HZ


def excerpts(batch: int, seconds: float, rate: int) -> np.ndarray:
    """float32 [batch, seconds * rate]: the vocals of seeded synthetic tracks."""
    return np.stack([synthesize_multitrack(i, seconds, rate).stems["vocals"] for i in range(batch)]).astype(np.float32)


def throughput(kind: str, folder: Path, batch: int, seconds: float, repeats: int) -> dict:
    tokenizer, rate = load(kind, folder)
    audio = excerpts(batch, seconds, rate)
    tokenizer.encode(audio)  # warm-up on the very shapes timed (oneDNN builds kernels per shape)
    tokenizer.encode(audio[:1])
    batched, single = [], []
    for _ in range(repeats):  # interleaved so load changes hit both alike
        start = time.perf_counter()
        tokenizer.encode(audio)
        batched.append(time.perf_counter() - start)
        start = time.perf_counter()
        for row in audio:
            tokenizer.encode(row[None])
        single.append(time.perf_counter() - start)
    total_s = batch * seconds
    return {"model": kind, "audio_s": total_s, "batched_audio_s_per_s": total_s / min(batched),
            "one_by_one_audio_s_per_s": total_s / min(single), "speedup": min(single) / min(batched)}


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_memory_child(kind: str, folder: str, batch: int, seconds: float) -> None:
    """Runs in a fresh process: prints the peak resident memory (MiB) one batch adds.

    The kernel's high-water mark (VmHWM) is reset just before the batch (`clear_refs` 5), so
    loading the weights does not mask the batch's own peak.
    """
    torch.set_grad_enabled(False)
    tokenizer, rate = load(kind, Path(folder))
    audio = excerpts(batch, seconds, rate)
    tokenizer.encode(audio[:1, : rate // 2])
    Path("/proc/self/clear_refs").write_text("5")
    baseline = _status_kib("VmRSS")
    tokenizer.encode(audio)
    peak = _status_kib("VmHWM")
    print(json.dumps({"model": kind, "peak_added_mib": (peak - baseline) / 1024,
                      "input_mib": audio.nbytes / 2**20, "peak_total_mib": peak / 1024}))


def peak_memory(kind: str, folder: Path, batch: int, seconds: float) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--memory-child", kind, "--weights", str(folder),
         "--memory-batch", str(batch), "--memory-seconds", str(seconds)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=4, help="excerpts per batch for throughput")
    parser.add_argument("--seconds", type=float, default=2.0, help="excerpt length for throughput")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--memory-batch", type=int, default=16)
    parser.add_argument("--memory-seconds", type=float, default=2.0, help="10 for the issue's figure")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--weights", type=Path, default=None, help="reuse a folder of base-size weights")
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        peak_memory_child(args.memory_child, str(args.weights), args.memory_batch, args.memory_seconds)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = base_weights(args.weights or Path(tmp))
        print(f"CPU threads: {torch.get_num_threads()}; batch {args.batch} x {args.seconds:g} s, "
              f"best of {args.repeats}")
        print(f"{'model':8s} {'batched (audio s/s)':>20s} {'one-by-one (audio s/s)':>23s} {'batched speed-up':>17s}")
        for kind in ("encodec", "hubert"):
            r = throughput(kind, folder, args.batch, args.seconds, args.repeats)
            print(f"{kind:8s} {r['batched_audio_s_per_s']:20.1f} {r['one_by_one_audio_s_per_s']:23.1f} "
                  f"{r['speedup']:16.2f}x")
        if not args.skip_memory:
            print(f"peak memory for one batch of {args.memory_batch} x {args.memory_seconds:g} s (fresh process each):")
            for kind in ("encodec", "hubert"):
                m = peak_memory(kind, folder, args.memory_batch, args.memory_seconds)
                print(f"{kind:8s} +{m['peak_added_mib']:.0f} MiB over the loaded model "
                      f"(process peak {m['peak_total_mib']:.0f} MiB, input {m['input_mib']:.1f} MiB)")


if __name__ == "__main__":
    main()
