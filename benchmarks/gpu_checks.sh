#!/usr/bin/env bash
# The GPU figures of issue #17 in ONE device call (device time is scarce: ~35 s to start, one
# command of at most 600 s), most valuable first. Each step runs under its own `timeout`, capped
# by what is left of a 540 s budget (GPU_CHECKS_BUDGET_S), and writes OUT/<step>.txt; the
# cascade_speed steps rewrite their .json after every row, so a step cut short keeps its rows.
#
#   step                  what                                                   cap    expected
#   1 decoder_check       graph = eager = cached = recompute, delay then flat,   60 s   ~30 s
#                         small, 40 frames
#   2 cascade_delay       base, delay pattern, batch 1 and 16, float32, bfloat16, 270 s  ~130 s
#                         float16; old decoder at float32 batch 1 on 5 % + 15 %
#                         prefixes (--skip-old: not at all)
#   3 train_memory        fine stage, base, batch 8 x 10 s, delay pattern,       120 s  ~60 s
#                         the three attention variants
#   4 cascade_flat_fp16   base, flat pattern, float16 (the rows missing from     rest   ~90 s
#                         the H200 table), batch 1 then 16
#
# Expected total ~310 s, at most 540 s (+5 s per step if a step ignores SIGTERM). Basis: a
# static step at base cost ~3.3 ms at batch 1 on an H200; delay is 500 + 753 + 753 ~ 2 000 steps
# per excerpt: ~7 s per dtype at batch 1, ~30 s (fp32) and ~12 s (bf16, fp16) at batch 16 where
# attention over 1 750-3 750 keys grows with the batch; the old decoder (~18 ms a step) on 20 % of
# 2 000 steps ~8 s; building and copying the 3 x 320 M models, graph captures ~40 s.
#
# Usage: bash benchmarks/gpu_checks.sh OUT_DIR [--skip-old]
#        bash benchmarks/gpu_checks.sh OUT_DIR --cpu-dry-run   # the same steps at tiny on CPU, ~20 s
set -u
out=${1:-${OUT:-/tmp/gpu-out}}
shift $(( $# > 0 ? 1 : 0 ))
dry_run=0 skip_old=0
for arg in "$@"; do
    case $arg in
        --cpu-dry-run) dry_run=1 ;;
        --skip-old) skip_old=1 ;;
        *) echo "gpu_checks: unknown option $arg (expected --cpu-dry-run or --skip-old)" >&2; exit 2 ;;
    esac
done
python=${PYTHON:-python}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1

if (( dry_run )); then
    device=(--device cpu)
    check_size=(--preset tiny --frames 8)
    speed_size=(--preset tiny --seconds 1 --batch-sizes 1,2 --old-prefixes 0.2,0.5)
    memory_size=(--preset tiny --batch 2 --seconds 1)
else
    if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
        echo "gpu_checks: no NVIDIA GPU here (nvidia-smi missing or finds none); run it on a GPU machine, or" \
             "pass --cpu-dry-run to run the same steps at tiny on CPU" >&2
        exit 2
    fi
    device=(--device cuda)
    check_size=(--preset small --frames 40)
    speed_size=(--preset base --batch-sizes 1,16 --old-prefixes 0.05,0.15)
    memory_size=(--preset base --batch 8)
fi
old=(--no-old-full --old-dtypes float32 --old-batch-sizes 1)
(( skip_old )) && old=(--old-dtypes "")

mkdir -p "$out"
budget_s=${GPU_CHECKS_BUDGET_S:-540}
start_s=$SECONDS
: > "$out/summary.txt"

# step NAME CAP_S COMMAND...: run under `timeout` min(CAP_S, budget left), output in OUT/NAME.txt.
step() {
    local name=$1 cap=$2 left limit began rc
    shift 2
    left=$(( budget_s - (SECONDS - start_s) ))
    limit=$(( cap < left ? cap : left ))
    if (( limit < 10 )); then
        echo "$name: skipped, ${left} s of the budget left" | tee -a "$out/summary.txt"
        return
    fi
    began=$SECONDS
    echo "==> $name (limit ${limit} s)"
    timeout --kill-after=5 "$limit" "$@" 2>&1 | tee "$out/$name.txt"
    rc=${PIPESTATUS[0]}
    local status="ok"
    (( rc == 124 || rc == 137 )) && status="timed out"
    (( rc != 0 && rc != 124 && rc != 137 )) && status="failed"
    echo "$name: $status (exit $rc) after $(( SECONDS - began )) s" | tee -a "$out/summary.txt"
}

if (( ! dry_run )); then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
fi
step decoder_check 60 "$python" benchmarks/cuda_decoder_check.py "${device[@]}" "${check_size[@]}" \
    --patterns delay,flat
step cascade_delay 270 "$python" benchmarks/cascade_speed.py "${device[@]}" "${speed_size[@]}" --patterns delay \
    --dtypes float32,bfloat16,float16 "${old[@]}" --json "$out/cascade_delay.json"
step train_memory 120 "$python" benchmarks/train_memory.py "${device[@]}" "${memory_size[@]}" --pattern delay \
    --json "$out/train_memory.json"
step cascade_flat_fp16 "$budget_s" "$python" benchmarks/cascade_speed.py "${device[@]}" "${speed_size[@]}" \
    --patterns flat --dtypes float16 --old-dtypes "" --json "$out/cascade_flat_fp16.json"
echo "total $(( SECONDS - start_s )) s of a ${budget_s} s budget" | tee -a "$out/summary.txt"
