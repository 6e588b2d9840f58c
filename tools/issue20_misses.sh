#!/usr/bin/env bash
# Where issue 20's two missed targets on llvmpipe go, measured with timing-only
# switches (docs/bench/issue20_timing_only.patch: environment variables that
# change what a kernel loads or stores, or how a first call is built; some
# make results wrong, so the patch is never part of the crate):
#   1. Winograd's product on 8×64×56×56 (the layer under 100 effective
#      GFLOP/s): as it is, with one store per invocation instead of 64
#      (XX_W_STORE1), without its loads of tiles (XX_W_NOLOAD) or of weights
#      (XX_W_NOWLOAD). Product pass ms (median of the traced calls) and the
#      forward's kernel ms, three rounds alternating.
#   2. The 7×7 stride-2 stem's first backward at batch 8, empty Mesa cache:
#      every kernel built on the main device's queue (XX_NO_ALONGSIDE), traced
#      per pass with an empty cache and again with the cache it filled (the
#      difference is each kernel's build), with the time spent creating the
#      pipelines before submitting (XX_REC); then as it runs (builds shared
#      with the second device), and with the padded copy made by its border
#      kernel alone (XX_BORDER, one kernel fewer to build).
#   3. Quick kernels of other sizes for first calls (XX_QB output channels,
#      XX_QV vec4s; XX_NOSHARE: weights not shared across lanes): first-call
#      ms, empty cache, two rounds.
#   4. Whether a pass's run takes both cores: the blocked forward of
#      8×64×56×56 3×3, kernel ms, on both and on one (taskset -c 0).
# Usage: tools/issue20_misses.sh [OUT.txt]   (default docs/bench/issue20_misses.txt)
# SECTIONS="2 4" runs only those, appending to OUT.
# Builds the patched CLI in a worktree under target/ (about 6 minutes the
# first time); BIN=path uses an already patched binary instead.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/bench/issue20_misses.txt}"
if [[ -z "${BIN:-}" ]]; then
    tree=target/issue20-timing-only
    rm -rf "$tree"
    git worktree prune
    git worktree add --detach "$tree" HEAD >/dev/null
    git -C "$tree" apply "$PWD/docs/bench/issue20_timing_only.patch"
    (cd "$tree" && CARGO_TARGET_DIR="$PWD/../timing-only-build" cargo build --release --quiet --bin wgpu-conv2d)
    git worktree remove --force "$tree"
    BIN=target/timing-only-build/release/wgpu-conv2d
fi
sections=" ${SECTIONS:-1 2 3 4} "
[[ -n "${SECTIONS:-}" ]] || : > "$out"
section() { [[ "$sections" == *" $1 "* ]]; }
say() { echo "$*" | tee -a "$out" >&2; }
bench() { "$BIN" bench --json "$@"; }
stem=(--pass backward --input-shape 8,3,224,224 --out-channels 64 --kernel-size 7 --stride 2 --padding 3 --algorithm auto)
first_call() {
    local cache
    cache=$(mktemp -d)
    MESA_SHADER_CACHE_DIR="$cache" bench --min-time-ms 1 "$@" 2>/dev/null \
        | grep -o '"first_call_ms":[0-9.]*' | head -1
    rm -rf "$cache"
}

say "# adapter: $("$BIN" bench --json --min-time-ms 1 --input-shape 1,1,4,4 --out-channels 1 --kernel-size 1 --algorithm direct 2>/dev/null | grep -o '"adapter":"[^"]*"')"
if section 1; then
say "## 1. Winograd's product, 8x64x56x56 -> 64, 3x3 (product pass ms, median of traced calls; forward kernel ms)"
for round in 1 2 3; do
    for switch in NONE XX_W_STORE1 XX_W_NOLOAD XX_W_NOWLOAD XX_W_STORE1,XX_W_NOLOAD; do
        # shellcheck disable=SC2046 # one assignment per switch
        trace=$(env $(tr , '\n' <<< "$switch" | sed 's/$/=1/') WGPU_CONV2D_TRACE_PASSES=1 "$BIN" bench --json --min-time-ms 3000 \
            --algorithm winograd --input-shape 8,64,56,56 --out-channels 64 --kernel-size 3 --padding 1 2>&1)
        product=$(grep winograd_gemm <<< "$trace" | awk '{print $1}' | sort -n \
            | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
        say "round $round $switch product_ms $product $(grep -o '"kernel_ms":[0-9.]*' <<< "$trace")"
    done
done

fi

if section 2; then
say "## 2. Stem backward, batch 8: every build on the main queue (per pass: cold, then warm)"
cache=$(mktemp -d)
for state in cold warm; do
    say "### $state"
    # The first call: its pipelines, its recording, the passes it timed (up
    # to the next submission's recording), then its wall time.
    MESA_SHADER_CACHE_DIR="$cache" XX_NO_ALONGSIDE=1 XX_REC=1 WGPU_CONV2D_TRACE_PASSES=1 \
        bench --min-time-ms 1 "${stem[@]}" > "$cache.log" 2>&1
    awk '/^recorded/ && seen++ {exit} {sub(/constants: .*}/, "}"); print}' "$cache.log" \
        | tee -a "$out" >&2
    say "$(grep -o '"first_call_ms":[0-9.]*' "$cache.log")"
    rm -f "$cache.log"
done
rm -rf "$cache"
say "## 2b. Stem backward, batch 8, first call: as it runs / padded copy by the border kernel alone"
for round in 1 2; do
    say "round $round shared $(first_call "${stem[@]}")"
    say "round $round border_alone $(XX_BORDER=1 first_call "${stem[@]}")"
done

fi

if section 3; then
say "## 3. Quick kernels of other sizes: first call ms, empty cache"
layers=(
    "--pass backward --input-shape 8,64,56,56 --out-channels 256 --kernel-size 1"
    "--pass backward --input-shape 1,64,56,56 --out-channels 256 --kernel-size 1"
    "--pass forward --input-shape 1,64,56,56 --out-channels 256 --kernel-size 1"
    "--pass forward --input-shape 1,64,56,56 --out-channels 64 --kernel-size 3 --padding 1"
)
for round in 1 2; do
    for quick in "8 1 0" "16 2 0" "8 1 1"; do
        read -r block vecs noshare <<< "$quick"
        for layer in "${layers[@]}"; do
            # shellcheck disable=SC2086 # one word per argument
            if [[ $noshare == 1 ]]; then
                line=$(XX_NOSHARE=1 XX_QB=$block XX_QV=$vecs first_call --algorithm auto $layer)
            else
                line=$(XX_QB=$block XX_QV=$vecs first_call --algorithm auto $layer)
            fi
            say "round $round block $block vecs $vecs noshare $noshare | $layer | $line"
        done
    done
done
fi

if section 4; then
say "## 4. Blocked forward 8x64x56x56 3x3, kernel ms: both cores / one core (taskset -c 0)"
forward=(--min-time-ms 1000 --algorithm blocked --input-shape 8,64,56,56 --out-channels 64 --kernel-size 3 --padding 1)
for round in 1 2; do
    say "round $round both $(bench "${forward[@]}" 2>/dev/null | grep -o '"kernel_ms":[0-9.]*')"
    say "round $round one $(taskset -c 0 "$BIN" bench --json "${forward[@]}" 2>/dev/null | grep -o '"kernel_ms":[0-9.]*')"
done
fi
say "wrote $out"
