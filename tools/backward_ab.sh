#!/usr/bin/env bash
# The backward against the forward on the four ResNet 3x3 layers at batch 8,
# with the loads a subgroup's lanes can share shared and without
# (WGPU_CONV2D_SUBGROUPS=0), alternating, ROUNDS rounds of one run each.
# Per layer and way: the median kernel ms of the forward and of the backward
# (blocked), their ratio, and the median of each run's least weight-gradient
# pass (WGPU_CONV2D_TRACE_PASSES). Raw lines: docs/bench/backward_ab.jsonl.
# Usage: tools/backward_ab.sh [ROUNDS]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
out=docs/bench/backward_ab.jsonl
cargo build --release --quiet --bin wgpu-conv2d
bin=target/release/wgpu-conv2d
export NODEVICE_SELECT=1
: > "$out"
kernel_ms() {
    "$bin" bench "$@" --json --min-time-ms 1500 2>/dev/null |
        python3 -c "import sys,json; print(json.loads(sys.stdin.readline())['kernel_ms'])"
}
for layer in "8,64,56,56 64" "8,128,28,28 128" "8,256,14,14 256" "8,512,7,7 512"; do
    read -r shape channels <<< "$layer"
    args=(--input-shape "$shape" --out-channels "$channels" --kernel-size 3 --padding 1
        --algorithm blocked)
    for round in $(seq "$rounds"); do
        for shared in 1 0; do
            export WGPU_CONV2D_SUBGROUPS=$shared
            forward=$(kernel_ms "${args[@]}")
            backward=$(kernel_ms "${args[@]}" --pass backward)
            pass=$(WGPU_CONV2D_TRACE_PASSES=1 "$bin" bench "${args[@]}" --pass backward \
                --min-time-ms 300 2>&1 | awk '/conv2d_grad_weight_blocked/ {print $1}' |
                sort -n | head -1)
            echo "{\"layer\": \"$shape->$channels 3x3\", \"round\": $round, \"shared\": $shared, \"forward_kernel_ms\": $forward, \"backward_kernel_ms\": $backward, \"grad_weight_pass_ms\": $pass}" >> "$out"
        done
    done
done
unset WGPU_CONV2D_SUBGROUPS
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print("| layer | way | forward ms | backward ms | backward / forward | weight-gradient pass ms |")
print("|---|---|---:|---:|---:|---:|")
for layer in dict.fromkeys(r["layer"] for r in rows):
    for shared in (1, 0):
        these = [r for r in rows if r["layer"] == layer and r["shared"] == shared]
        med = lambda k: statistics.median(r[k] for r in these)
        f, b, g = med("forward_kernel_ms"), med("backward_kernel_ms"), med("grad_weight_pass_ms")
        way = "shared" if shared else "plain"
        print(f"| {layer} | {way} | {f:.1f} | {b:.1f} | {b / f:.2f}x | {g:.1f} |")
PY
