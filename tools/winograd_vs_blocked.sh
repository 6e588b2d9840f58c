#!/usr/bin/env bash
# Winograd against the blocked kernel on 3x3 stride-1 layers at batch 8,
# measured in alternation (ROUNDS rounds of one run each, so that the
# machine's drifts hit both alike); prints per layer the median kernel ms of
# each and their ratio.
#   resnet (default): the four ResNet layers. Raw lines: docs/bench/winograd.jsonl.
#   rule: 16 to 64 channels (in = out) on planes of 56, 28 and 14, where
#         `Auto` under `Precision::High` starts picking Winograd.
#         Raw lines: docs/bench/winograd_rule.jsonl.
# Usage: tools/winograd_vs_blocked.sh [ROUNDS] [resnet|rule]   (default 5 resnet)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
case "${2:-resnet}" in
    resnet)
        out=docs/bench/winograd.jsonl
        layers=("64,56,56" "128,28,28" "256,14,14" "512,7,7")
        ;;
    rule)
        out=docs/bench/winograd_rule.jsonl
        layers=()
        for side in 56 28 14; do
            for c in 16 32 48 64; do layers+=("$c,$side,$side"); done
        done
        ;;
    *) echo "usage: $0 [ROUNDS] [resnet|rule]" >&2; exit 2 ;;
esac
cargo build --release --quiet --bin wgpu-conv2d
bin=target/release/wgpu-conv2d
: > "$out"
for spec in "${layers[@]}"; do
    c="${spec%%,*}"
    for _ in $(seq "$rounds"); do
        for algorithm in blocked winograd; do
            "$bin" bench --json --min-time-ms 300 --algorithm "$algorithm" \
                --input-shape "8,$spec" --out-channels "$c" --kernel-size 3 --padding 1 >> "$out"
        done
    done
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
layers = {}
for d in rows:
    layers.setdefault(tuple(d["input_shape"]), {}).setdefault(d["algorithm"], []).append(d["kernel_ms"])
print("| layer | blocked ms (median) | winograd ms (median) | winograd / blocked |")
print("|---|---:|---:|---:|")
for shape, by in layers.items():
    b, w = statistics.median(by["blocked"]), statistics.median(by["winograd"])
    print(f"| {'×'.join(map(str, shape))} → {shape[1]}, 3×3 | {b:.2f} | {w:.2f} | {w / b:.2f}× |")
PY
