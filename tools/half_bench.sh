#!/usr/bin/env bash
# float16 and bfloat16 tensors against float32 on a depthwise layer
# (8x144x56x56, 3x3, stride 1), a 1x1 layer (8x64x56x56 -> 256) and a ResNet
# 3x3 layer (8x64x56x56), forward, Auto, measured in alternation (ROUNDS
# rounds of one run of each dtype); prints per layer the median kernel ms of
# each and the ratio to float32. Raw lines: docs/bench/half.jsonl.
# Usage: tools/half_bench.sh [ROUNDS]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
out=docs/bench/half.jsonl
cargo build --release --quiet --bin wgpu-conv2d
bin=target/release/wgpu-conv2d
: > "$out"
layers=(
    "8,144,56,56 144 3 1 144"
    "8,64,56,56 256 1 0 1"
    "8,64,56,56 64 3 1 1"
)
for layer in "${layers[@]}"; do
    read -r shape k kernel padding groups <<< "$layer"
    for _ in $(seq "$rounds"); do
        for dtype in f32 f16 bf16; do
            "$bin" bench --json --min-time-ms 300 --algorithm auto --dtype "$dtype" \
                --input-shape "$shape" --out-channels "$k" --kernel-size "$kernel" \
                --padding "$padding" --groups "$groups" >> "$out"
        done
    done
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
layers = {}
for d in rows:
    key = (tuple(d["input_shape"]), d["out_channels"], tuple(d["kernel_size"]), d["groups"])
    layers.setdefault(key, {}).setdefault(d["dtype"], []).append(d)
print(f"adapter: {rows[0]['adapter']}")
print("| layer | ran | f32 ms | f16 ms | bf16 ms | f16 / f32 | bf16 / f32 |")
print("|---|---|---:|---:|---:|---:|---:|")
for (shape, k, kernel, groups), by in layers.items():
    ms = {d: statistics.median(r["kernel_ms"] for r in by[d]) for d in ("f32", "f16", "bf16")}
    name = f"{'×'.join(map(str, shape))} → {k}, {kernel[0]}×{kernel[1]}" + (" dw" if groups > 1 else "")
    print(f"| {name} | {by['f32'][0]['algorithm']} | {ms['f32']:.2f} | {ms['f16']:.2f} | {ms['bf16']:.2f} "
          f"| {ms['f16'] / ms['f32']:.2f}× | {ms['bf16'] / ms['f32']:.2f}× |")
PY
