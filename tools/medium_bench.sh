#!/usr/bin/env bash
# Precision::Medium (bfloat16 operands, f32 sums) against Highest, and against
# bfloat16 tensors (packed storage, computed on f32 copies), on the layers
# where lavapipe's rules let Medium differ: padded or unaligned layers the
# blocked kernel runs below Winograd's 64 channels, the stem, and the 1x1 layer
# it reads in place (where Medium keeps float32 operands). Also the blocked
# kernel forced on float32 and on bfloat16 operands over the four ResNet 3x3
# layers (where Auto at Medium runs Winograd, as at High). ROUNDS rounds of
# one run of each, alternating; medians of the kernel time.
# Raw lines: docs/bench/medium.jsonl.
# Usage: tools/medium_bench.sh [ROUNDS]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
out=docs/bench/medium.jsonl
cargo build --release --quiet --bin wgpu-conv2d
bin=target/release/wgpu-conv2d
: > "$out"
auto_layers=(
    "--input-shape 8,32,56,56 --out-channels 32 --kernel-size 3 --padding 1"
    "--input-shape 8,48,28,28 --out-channels 48 --kernel-size 3 --padding 1"
    "--input-shape 8,3,224,224 --out-channels 64 --kernel-size 7 --stride 2 --padding 3"
    "--input-shape 8,64,56,56 --out-channels 256 --kernel-size 1"
)
forced_layers=(
    "--input-shape 8,64,56,56 --out-channels 64 --kernel-size 3 --padding 1"
    "--input-shape 8,128,28,28 --out-channels 128 --kernel-size 3 --padding 1"
    "--input-shape 8,256,14,14 --out-channels 256 --kernel-size 3 --padding 1"
    "--input-shape 8,512,7,7 --out-channels 512 --kernel-size 3 --padding 1"
)
run() { "$bin" bench --json --min-time-ms 300 "$@" >> "$out"; }
for _ in $(seq "$rounds"); do
    for layer in "${auto_layers[@]}"; do
        # shellcheck disable=SC2086
        {
            run $layer --algorithm auto --precision highest
            run $layer --algorithm auto --precision medium
            run $layer --algorithm auto --dtype bf16
        }
    done
    for layer in "${forced_layers[@]}"; do
        # shellcheck disable=SC2086
        {
            run $layer --algorithm blocked
            run $layer --algorithm blocked-bf16
        }
    done
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
runs = {}
for d in rows:
    label = f"{d['requested']} {d['precision']} {d.get('dtype', 'f32')}"
    runs.setdefault(tuple(d["input_shape"]) + (d["out_channels"], d["kernel_size"][1]), {}) \
        .setdefault(label, []).append(d)
print(f"adapter: {rows[0]['adapter']}")
for layer, by in runs.items():
    base = None
    for label, ds in by.items():
        ms = statistics.median(d["kernel_ms"] for d in ds)
        base = base or ms
        print(f"{layer} | {label} | ran {ds[0]['algorithm']} | {ms:.2f} ms | {ms / base:.2f}x")
PY
