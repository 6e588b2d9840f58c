#!/usr/bin/env bash
# Runs the standard benchmark set through every algorithm that can run each
# layer, `Auto` once more with autotuning on (its line has "tuned": true), and
# PyTorch's CPU forward of the same layer in the same run (tools/torch_bench.py;
# its line has "pass": "torch"; skipped without PyTorch), and the adapter's
# two ceilings at the start and the end (`wgpu-conv2d ceilings --json`: "pass":
# "ceilings"), which the table divides by. One JSON object per line (see
# `wgpu-conv2d bench --json`):
#   ResNet-18/50 layers at batch 1 and 8, MobileNetV2 depthwise 3x3 layers,
#   and a seed-sized conv for latency.
# Usage: tools/bench_suite.sh [OUT.jsonl]   (default docs/bench/results.jsonl)
# Then:  python3 tools/suite_table.py OUT.jsonl   (the markdown table)
#        cargo run --release --example bench_chart -- OUT.jsonl docs/benchmarks.svg
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/bench/results.jsonl}"
min_time_ms="${MIN_TIME_MS:-300}"
mkdir -p "$(dirname "$out")"
cargo build --release --quiet
bin=target/release/wgpu-conv2d
: > "$out"
"$bin" ceilings --json --min-time-ms "$min_time_ms" >> "$out"

run() {
    echo "bench $*" >&2
    "$bin" bench --json --min-time-ms "$min_time_ms" "$@" >> "$out"
    WGPU_CONV2D_AUTOTUNE=1 "$bin" bench --json --min-time-ms "$min_time_ms" --algorithm auto "$@" \
        | sed 's/^{/{"tuned": true, /' >> "$out"
    if python3 -c "import torch" 2>/dev/null; then
        python3 tools/torch_bench.py --min-time-ms "$min_time_ms" "$@" \
            | sed 's/^{/{"pass": "torch", /' >> "$out"
    fi
}

for n in 1 8; do
    run --input-shape "$n,64,56,56"   --out-channels 64  --kernel-size 3 --padding 1
    run --input-shape "$n,128,28,28"  --out-channels 128 --kernel-size 3 --padding 1
    run --input-shape "$n,256,14,14"  --out-channels 256 --kernel-size 3 --padding 1
    run --input-shape "$n,512,7,7"    --out-channels 512 --kernel-size 3 --padding 1
    run --input-shape "$n,3,224,224"  --out-channels 64  --kernel-size 7 --stride 2 --padding 3
    run --input-shape "$n,64,56,56"   --out-channels 256 --kernel-size 1
done
# MobileNetV2 depthwise 3x3 layers (batch 1).
for layer in "32,112,112 1" "96,112,112 2" "144,56,56 1" "192,28,28 1" "384,14,14 1" "960,7,7 1"; do
    set -- $layer
    c="${1%%,*}"
    run --input-shape "1,$1" --out-channels "$c" --kernel-size 3 --stride "$2" --padding 1 --groups "$c"
done
# Latency: the d2l seed example's size.
run --input-shape 1,1,6,8 --out-channels 1 --kernel-size 2
"$bin" ceilings --json --min-time-ms "$min_time_ms" >> "$out"
echo "wrote $out" >&2
