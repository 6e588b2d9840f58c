#!/usr/bin/env bash
# Cold starts: for the standard layers and each forward algorithm that can run
# them, the wall time of the first call in a new process (`first_call_ms` of
# `wgpu-conv2d bench --json`: the kernel plus creating its pipelines), once
# with an empty Mesa shader cache (every kernel compiled: a new machine) and
# once more with the cache that run filled (a later process). One JSON object
# per line, with "cache": "cold" or "warm". For `auto` on lavapipe the lines
# also give `built_ahead_ms` and `takeover_call_ms` (kernels built ahead on a
# second device while the first call runs a quicker one).
# Usage: tools/cold_start.sh [OUT.jsonl [ALGORITHM...]]
#   (default docs/bench/cold_start.jsonl, every forward algorithm)
# COLD_START_BATCH=8 runs the layers at batch 8 instead of 1;
# COLD_START_FLAGS adds flags to every `bench` (e.g. "--precision high").
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/bench/cold_start.jsonl}"
shift $(( $# > 0 ? 1 : 0 ))
algorithms=("${@:-direct implicit-gemm gemm-1x1 depthwise blocked winograd}")
batch="${COLD_START_BATCH:-1}"
read -r -a flags <<< "${COLD_START_FLAGS:-}"
mkdir -p "$(dirname "$out")"
cargo build --release --quiet --bin wgpu-conv2d
bin=target/release/wgpu-conv2d
: > "$out"

layer() {
    # shellcheck disable=SC2068 # one word per algorithm
    for algorithm in ${algorithms[@]}; do
        cache=$(mktemp -d)
        for state in cold warm; do
            if line=$(MESA_SHADER_CACHE_DIR="$cache" "$bin" bench --json --min-time-ms 1 \
                    --algorithm "$algorithm" ${flags[@]+"${flags[@]}"} "$@" 2>/dev/null); then
                echo "${line/#\{/{\"cache\": \"$state\", }" >> "$out"
            fi
        done
        rm -rf "$cache"
    done
    echo "layer $*" >&2
}

layer --input-shape $batch,64,56,56  --out-channels 64  --kernel-size 3 --padding 1
layer --input-shape $batch,256,14,14 --out-channels 256 --kernel-size 3 --padding 1
layer --input-shape $batch,3,224,224 --out-channels 64  --kernel-size 7 --stride 2 --padding 3
layer --input-shape $batch,64,56,56  --out-channels 256 --kernel-size 1
layer --input-shape $batch,144,56,56 --out-channels 144 --kernel-size 3 --padding 1 --groups 144
layer --input-shape $batch,1,6,8     --out-channels 1   --kernel-size 2
echo "wrote $out" >&2
