#!/usr/bin/env bash
# Auto at precision high against highest on the ResNet 3x3 stride-1 layers
# at batch 8, forward and backward, measured in alternation (ROUNDS rounds of
# one run of each, so that the machine's drifts hit both alike); prints per
# layer and pass the median kernel ms of each and their ratio.
# Raw lines: docs/bench/precision.jsonl.
# Usage: tools/precision_bench.sh [ROUNDS]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
out=docs/bench/precision.jsonl
cargo build --release --quiet --bin wgpu-conv2d
bin=target/release/wgpu-conv2d
: > "$out"
for spec in "64,56,56" "128,28,28" "256,14,14" "512,7,7"; do
    c="${spec%%,*}"
    for pass in forward backward; do
        for _ in $(seq "$rounds"); do
            for precision in highest high; do
                "$bin" bench --json --min-time-ms 300 --algorithm auto --pass "$pass" \
                    --precision "$precision" --input-shape "8,$spec" --out-channels "$c" \
                    --kernel-size 3 --padding 1 >> "$out"
            done
        done
    done
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
runs = {}
for d in rows:
    key = (tuple(d["input_shape"]), d["pass"])
    runs.setdefault(key, {}).setdefault(d["precision"], []).append(d)
print(f"adapter: {rows[0]['adapter']}")
print("| layer | pass | highest: ran | ms (median) | high: ran | ms (median) | high / highest |")
print("|---|---|---|---:|---|---:|---:|")
for (shape, p), by in runs.items():
    a = statistics.median(d["kernel_ms"] for d in by["highest"])
    b = statistics.median(d["kernel_ms"] for d in by["high"])
    print(f"| {'×'.join(map(str, shape))}, 3×3 | {p} | {by['highest'][0]['algorithm']} | {a:.2f} "
          f"| {by['high'][0]['algorithm']} | {b:.2f} | {b / a:.2f}× |")
PY
