#!/usr/bin/env bash
# Kernels sharing weight loads across subgroups against the same kernels
# without (WGPU_CONV2D_SUBGROUPS=0), alternating, ROUNDS rounds of one run
# each, on the layers issue 20 measures: the 1x1 layer and the ResNet 3x3
# layers on the blocked kernel, the ResNet 3x3 layers on Winograd, at batch 8.
# Prints per layer the median and least kernel ms of each, their ratio and
# GFLOP/s (effective, for Winograd: a direct convolution's multiply-adds).
# Raw lines: docs/bench/subgroups.jsonl.
# Usage: tools/subgroups_ab.sh [ROUNDS]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
out=docs/bench/subgroups.jsonl
cargo build --release --quiet --bin wgpu-conv2d
bin=target/release/wgpu-conv2d
: > "$out"
layers=(
    "blocked 8,64,56,56 256 1 0"
    "blocked 8,64,56,56 64 3 1"
    "blocked 8,128,28,28 128 3 1"
    "blocked 8,256,14,14 256 3 1"
    "blocked 8,512,7,7 512 3 1"
    "winograd 8,64,56,56 64 3 1"
    "winograd 8,128,28,28 128 3 1"
    "winograd 8,256,14,14 256 3 1"
    "winograd 8,512,7,7 512 3 1"
)
for layer in "${layers[@]}"; do
    read -r algorithm shape k size pad <<< "$layer"
    for _ in $(seq "$rounds"); do
        for shared in 1 0; do
            NODEVICE_SELECT=1 WGPU_CONV2D_SUBGROUPS=$shared "$bin" bench --json --min-time-ms 500 \
                --algorithm "$algorithm" --input-shape "$shape" --out-channels "$k" \
                --kernel-size "$size" --padding "$pad" >> "$out"
        done
    done
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
layers = {}
for d in rows:
    key = (d["algorithm"], tuple(d["input_shape"]), d["out_channels"], d["kernel_size"][0])
    layers.setdefault(key, {}).setdefault(d["subgroup_width"] is not None, []).append(d)
print("| layer | algorithm | shared ms (median, least) | plain ms (median, least) | shared / plain | GFLOP/s shared (median) |")
print("|---|---|---:|---:|---:|---:|")
for (algorithm, shape, k, size), by in layers.items():
    s = [d["kernel_ms"] for d in by[True]]
    p = [d["kernel_ms"] for d in by[False]]
    gflops = by[True][0]["flops"] / statistics.median(s) / 1e6
    print(f"| {'×'.join(map(str, shape))} → {k}, {size}×{size} | {algorithm} | "
          f"{statistics.median(s):.2f}, {min(s):.2f} | {statistics.median(p):.2f}, {min(p):.2f} | "
          f"{statistics.median(s) / statistics.median(p):.2f}× | {gflops:.1f} |")
PY
