#!/usr/bin/env bash
# The GPU figures of issue #17 in one call (device time is scarce): correctness of the CUDA-graph
# decoder, then the base cascade's speed, then the fine stage's training memory.
# Usage: bash benchmarks/gpu_checks.sh OUT_DIR
set -u
out=${1:-${OUT:-/tmp/gpu-out}}
mkdir -p "$out"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
timeout 60 python benchmarks/cuda_decoder_check.py 2>&1 | tee "$out/check.txt"
timeout 300 python benchmarks/cascade_speed.py --preset base --device cuda --batch-sizes 1,16 \
    --dtypes float32,bfloat16,float16 --old-dtypes float32 --old-prefixes 0.03,0.08 \
    --json "$out/cascade_speed.json" 2>&1 | tee "$out/cascade_speed.txt"
timeout 120 python benchmarks/train_memory.py --device cuda --json "$out/train_memory.json" 2>&1 \
    | tee "$out/train_memory.txt"
