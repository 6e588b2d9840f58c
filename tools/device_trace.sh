#!/usr/bin/env bash
# Where a GPU's time goes, pass by pass: a follow-up to tools/device_check.sh,
# run from the same kit (target/device-kit.tar.xz: `tools/device_check.sh kit`)
# in under 5 minutes. It runs the conformance test binaries, then on the
# standard layers Auto's forward at precision highest, high and medium and
# Auto's backward and the implicit-gemm backward, each once more with
# WGPU_CONV2D_TRACE_PASSES to time every pass, and the blocked kernel forced
# on float32 and on bfloat16 operands. Writes OUT_DIR/device_trace.jsonl:
# the benchmarks' lines, the tests' counts ("pass": "tests") and per run the
# median milliseconds of each pass label ("pass": "trace").
#   tools/device_trace.sh OUT_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
kit=target/device-kit
out_dir="${1:?usage: tools/device_trace.sh OUT_DIR}"
mkdir -p "$out_dir"
results="$out_dir/device_trace.jsonl"
: > "$results"
if [[ ! -x "$kit/wgpu-conv2d" ]]; then
    tar -xJf "$kit.tar.xz" -C target
fi
bin="$kit/wgpu-conv2d"
start=$(date +%s)
say() { echo "[$(( $(date +%s) - start ))s] $*" >&2; }
"$bin" info 2>&1 | head -5 >&2

# shellcheck source=tools/device_tests.sh
source tools/device_tests.sh
run_test_binaries 110 test_wgpu_conv2d test_seed_examples test_loop_limit test_gpu_vs_cpu \
    test_precision test_golden

# One benchmark line, then the same run traced: each pass label's median ms.
traced() {
    local label=$1
    shift
    "$bin" bench --json --min-time-ms 100 "$@" >> "$results" 2>/dev/null || say "failed: $*"
    WGPU_CONV2D_TRACE_PASSES=1 "$bin" bench --json --min-time-ms 50 "$@" 2>&1 >/dev/null \
        | python3 -c '
import json, statistics, sys
times = {}
for line in sys.stdin:
    parts = line.split(None, 2)
    if len(parts) == 3 and parts[1] == "ms":
        times.setdefault(parts[2].strip(), []).append(float(parts[0]))
print(json.dumps({"pass": "trace", "run": sys.argv[1], "args": sys.argv[2:],
                  "median_ms": {k: round(statistics.median(v), 4) for k, v in times.items()},
                  "count": {k: len(v) for k, v in times.items()}}))
' "$label" "$@" >> "$results" || true
}
layers=(
    "--input-shape 8,64,56,56 --out-channels 64 --kernel-size 3 --padding 1"
    "--input-shape 8,128,28,28 --out-channels 128 --kernel-size 3 --padding 1"
    "--input-shape 8,256,14,14 --out-channels 256 --kernel-size 3 --padding 1"
    "--input-shape 8,512,7,7 --out-channels 512 --kernel-size 3 --padding 1"
    "--input-shape 8,64,56,56 --out-channels 256 --kernel-size 1"
    "--input-shape 8,3,224,224 --out-channels 64 --kernel-size 7 --stride 2 --padding 3"
    "--input-shape 8,144,56,56 --out-channels 144 --kernel-size 3 --padding 1 --groups 144"
    "--input-shape 8,96,112,112 --out-channels 96 --kernel-size 3 --stride 2 --padding 1 --groups 96"
)
for layer in "${layers[@]}"; do
    (( $(date +%s) - start < 250 )) || { say "time budget spent"; break; }
    say "$layer"
    # shellcheck disable=SC2086
    {
        traced forward $layer --algorithm auto
        traced forward-high $layer --algorithm auto --precision high
        traced forward-medium $layer --algorithm auto --precision medium
        traced backward-auto $layer --pass backward --algorithm auto
        traced backward-implicit-gemm $layer --pass backward --algorithm implicit-gemm
        # The backward autotuned: which weight gradient the GPU's own measurement keeps.
        WGPU_CONV2D_AUTOTUNE=1 "$bin" bench --json --min-time-ms 100 $layer --pass backward --algorithm auto 2>/dev/null \
            | sed 's/^{/{"tuned": true, /' >> "$results" || true
        # The blocked kernel on float32 and on bfloat16 operands.
        "$bin" bench --json --min-time-ms 100 $layer --algorithm blocked >> "$results" 2>/dev/null || true
        "$bin" bench --json --min-time-ms 100 $layer --algorithm blocked-bf16 >> "$results" 2>/dev/null || true
    }
done
say "done: $results"
