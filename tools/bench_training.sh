#!/usr/bin/env bash
# The training benchmark: for the standard layers, the forward (Auto), the
# backward (every backward algorithm that can run the layer) and the training
# step (forward + backward + SGD update, Auto) through `wgpu-conv2d bench
# --json`, and PyTorch's CPU forward, forward + backward and step
# (tools/torch_bench.py) in the same run. One JSON object per line.
# Usage: tools/bench_training.sh [OUT.jsonl]   (default docs/bench/training.jsonl)
# Then:  python3 tools/training_table.py OUT.jsonl   (the markdown tables)
# Needs PyTorch (pip install torch numpy); without it the torch rows are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/bench/training.jsonl}"
min_time_ms="${MIN_TIME_MS:-500}"
mkdir -p "$(dirname "$out")"
cargo build --release --quiet --bin wgpu-conv2d
bin=target/release/wgpu-conv2d
: > "$out"

layer() {
    echo "layer $*" >&2
    "$bin" bench --json --min-time-ms "$min_time_ms" --pass forward --algorithm auto "$@" >> "$out"
    "$bin" bench --json --min-time-ms "$min_time_ms" --pass backward --algorithm all "$@" >> "$out"
    "$bin" bench --json --min-time-ms "$min_time_ms" --pass step --algorithm auto "$@" >> "$out"
    if python3 -c "import torch" 2>/dev/null; then
        python3 tools/torch_bench.py --min-time-ms "$min_time_ms" "$@" \
            | sed 's/^{/{"pass": "torch", /' >> "$out"
    fi
}

# ResNet 3x3 layers and the 7x7 stride-2 stem at batch 8.
layer --input-shape 8,64,56,56  --out-channels 64  --kernel-size 3 --padding 1
layer --input-shape 8,128,28,28 --out-channels 128 --kernel-size 3 --padding 1
layer --input-shape 8,256,14,14 --out-channels 256 --kernel-size 3 --padding 1
layer --input-shape 8,3,224,224 --out-channels 64  --kernel-size 7 --stride 2 --padding 3
# MobileNetV2 depthwise 3x3 layers (batch 1).
for spec in "32,112,112 1" "96,112,112 2" "144,56,56 1" "192,28,28 1" "384,14,14 1" "960,7,7 1"; do
    set -- $spec
    c="${1%%,*}"
    layer --input-shape "1,$1" --out-channels "$c" --kernel-size 3 --stride "$2" --padding 1 --groups "$c"
done
echo "wrote $out" >&2
