#!/usr/bin/env bash
# Where `Auto` under `Precision::High` should start picking Winograd: the
# blocked kernel against Winograd on 3x3 stride-1 layers at batch 8 of 16 to
# 64 channels (in = out) on planes of 56, 28 and 14, in alternation (ROUNDS
# rounds of one run each); prints per layer the median kernel ms of each and
# their ratio. Raw lines: docs/bench/winograd_rule.jsonl.
# Usage: tools/winograd_rule.sh [ROUNDS]   (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-2}"
out=docs/bench/winograd_rule.jsonl
cargo build --release --quiet --bin wgpu-conv2d
bin=target/release/wgpu-conv2d
: > "$out"
for side in 56 28 14; do
    for c in 16 32 48 64; do
        for _ in $(seq "$rounds"); do
            for algorithm in blocked winograd; do
                "$bin" bench --json --min-time-ms 300 --algorithm "$algorithm" \
                    --input-shape "8,$c,$side,$side" --out-channels "$c" --kernel-size 3 \
                    --padding 1 >> "$out"
            done
        done
    done
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
layers = {}
for d in rows:
    layers.setdefault(tuple(d["input_shape"]), {}).setdefault(d["algorithm"], []).append(d["kernel_ms"])
print("| layer (3×3, padding 1) | blocked ms | winograd ms | winograd / blocked |")
print("|---|---:|---:|---:|")
for shape, by in layers.items():
    b, w = by["blocked"], by["winograd"]
    runs = lambda v: ", ".join(f"{x:.2f}" for x in v)
    ratio = statistics.median(w) / statistics.median(b)
    print(f"| {'×'.join(map(str, shape))} → {shape[1]} | {runs(b)} | {runs(w)} | {ratio:.2f}× |")
PY
