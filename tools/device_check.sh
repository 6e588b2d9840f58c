#!/usr/bin/env bash
# One check of a machine with a real GPU, in under 8 minutes, into one results
# file: the adapter, the GPU test binaries (pass and fail counts), the two
# ceilings, the standard layers' benchmarks (forward through every algorithm,
# Auto autotuned, the backward (Auto and implicit-gemm), Auto at precision high, float16 tensors), and
# PyTorch's figures for the same layers on that GPU where python3 has torch
# with CUDA (else on its CPU).
#
# A GPU machine may have no Rust toolchain, so the binaries travel as a kit:
#   tools/device_check.sh kit        here, with cargo: builds the CLI and the
#                                    GPU test binaries (release, stripped) into
#                                    target/device-kit/ and packs them into
#                                    target/device-kit.tar.xz (7 MB: carry that)
#   tools/device_check.sh [OUT_DIR]  there: runs the kit (building it first
#                                    where cargo is at hand); writes
#                                    OUT_DIR/device_check.jsonl (one JSON
#                                    object per line) and OUT_DIR/device_check.log
#                                    (default OUT_DIR: docs/bench/device)
# Then: python3 tools/suite_table.py OUT_DIR/device_check.jsonl
set -euo pipefail
cd "$(dirname "$0")/.."
kit=target/device-kit

# The test binaries that need a GPU (the CLI's own tests run the CLI by the
# path it was built at, and are left to CI).
# In the order they run there, the conformance checks first.
gpu_tests=(seed_examples golden golden_half loop_limit gpu_vs_cpu half precision autotune gpu_tensor optim
    robustness pipeline_cache)

make_kit() {
    rm -rf "$kit"
    mkdir -p "$kit"
    cargo build --release --quiet --bin wgpu-conv2d
    cp target/release/wgpu-conv2d "$kit/"
    # The library's unit tests and each GPU test target, by the paths cargo reports.
    local targets=(--lib)
    for t in "${gpu_tests[@]}"; do targets+=(--test "$t"); done
    cargo test --release --no-run --message-format=json "${targets[@]}" 2>/dev/null \
        | python3 -c '
import json, shutil, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        name = m["target"]["name"].replace("-", "_")
        shutil.copy(m["executable"], sys.argv[1] + "/test_" + name)
' "$kit"
    if command -v strip >/dev/null; then strip "$kit"/* || true; fi
    tar -cJf "$kit.tar.xz" -C target device-kit
    du -sh "$kit" "$kit.tar.xz" >&2
}

if [[ "${1:-}" == "kit" ]]; then
    make_kit
    exit 0
fi

out_dir="${1:-docs/bench/device}"
mkdir -p "$out_dir"
results="$out_dir/device_check.jsonl"
log="$out_dir/device_check.log"
: > "$results"
: > "$log"
start=$(date +%s)
say() { echo "[$(( $(date +%s) - start ))s] $*" | tee -a "$log" >&2; }

if command -v cargo >/dev/null; then
    say "building the kit"
    make_kit 2>>"$log"
elif [[ -f "$kit.tar.xz" ]]; then
    rm -rf "$kit"
    tar -xJf "$kit.tar.xz" -C target
elif [[ ! -x "$kit/wgpu-conv2d" ]]; then
    echo "no cargo here and no $kit.tar.xz: run 'tools/device_check.sh kit' on a machine with Rust and carry $kit.tar.xz" >&2
    exit 2
fi
bin="$kit/wgpu-conv2d"

say "adapter"
"$bin" info 2>&1 | tee -a "$log" >&2
"$bin" ceilings --json --min-time-ms 300 >> "$results"

# Tests: at most 4 minutes in all; each binary's counts as one line.
# shellcheck source=tools/device_tests.sh
source tools/device_tests.sh
run_test_binaries 240 test_wgpu_conv2d "${gpu_tests[@]/#/test_}"

torch_device=cpu
if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then torch_device=cuda; fi
layer() {
    local left=$(( 450 - ($(date +%s) - start) ))
    if (( left < 5 )); then say "bench $*: skipped, the time budget is spent"; return; fi
    say "bench $*"
    timeout "$left" "$bin" bench --json --min-time-ms 150 "$@" >> "$results" 2>>"$log" || say "bench failed: $*"
    WGPU_CONV2D_AUTOTUNE=1 timeout "$left" "$bin" bench --json --min-time-ms 150 --algorithm auto "$@" 2>>"$log" \
        | sed 's/^{/{"tuned": true, /' >> "$results" || true
    timeout "$left" "$bin" bench --json --min-time-ms 150 --pass backward --algorithm auto "$@" >> "$results" 2>>"$log" || true
    # The weight gradient as a tiled GEMM, for Auto's GPU rule (never yet measured on a GPU),
    # and the backward autotuned (its weight gradient measured per shape class).
    timeout "$left" "$bin" bench --json --min-time-ms 150 --pass backward --algorithm implicit-gemm "$@" >> "$results" 2>>"$log" || true
    WGPU_CONV2D_AUTOTUNE=1 timeout "$left" "$bin" bench --json --min-time-ms 150 --pass backward --algorithm auto "$@" 2>>"$log" \
        | sed 's/^{/{"tuned": true, /' >> "$results" || true
    # Auto at precision high (Winograd allowed), and float16 tensors.
    timeout "$left" "$bin" bench --json --min-time-ms 150 --algorithm auto --precision high "$@" >> "$results" 2>>"$log" || true
    timeout "$left" "$bin" bench --json --min-time-ms 150 --algorithm auto --dtype f16 "$@" >> "$results" 2>>"$log" || true
    if python3 -c "import torch" 2>/dev/null; then
        timeout 60 python3 tools/torch_bench.py --device "$torch_device" --min-time-ms 150 "$@" 2>>"$log" \
            | sed 's/^{/{"pass": "torch", /' >> "$results" || true
    fi
}
layer --input-shape 8,64,56,56 --out-channels 64 --kernel-size 3 --padding 1
layer --input-shape 8,128,28,28 --out-channels 128 --kernel-size 3 --padding 1
layer --input-shape 8,256,14,14 --out-channels 256 --kernel-size 3 --padding 1
layer --input-shape 8,512,7,7 --out-channels 512 --kernel-size 3 --padding 1
layer --input-shape 8,64,56,56 --out-channels 256 --kernel-size 1
layer --input-shape 8,3,224,224 --out-channels 64 --kernel-size 7 --stride 2 --padding 3
layer --input-shape 8,144,56,56 --out-channels 144 --kernel-size 3 --padding 1 --groups 144
layer --input-shape 8,96,112,112 --out-channels 96 --kernel-size 3 --stride 2 --padding 1 --groups 96
layer --input-shape 1,1,6,8 --out-channels 1 --kernel-size 2
"$bin" ceilings --json --min-time-ms 300 >> "$results"
say "done: $results"
