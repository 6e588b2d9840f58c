#!/bin/bash
# Times the same layers with two builds of the CLI, alternating, twice each, in one run:
#   tools/compare_builds.sh BASE_BINARY NEW_BINARY [RAW.jsonl] [LAYERS]
# With RAW, every run's JSON line is appended to it with "build": "base" or "new".
# LAYERS: a file of `bench` argument lines to time instead of the standard four.
# (build the base with: git worktree add /tmp/base REV && cargo build --release --bin wgpu-conv2d).
set -euo pipefail
BASE=${1:?usage: compare_builds.sh BASE_BINARY NEW_BINARY [RAW]}
NEW=${2:?usage: compare_builds.sh BASE_BINARY NEW_BINARY [RAW]}
RAW=${3:-/dev/null}
LAYERS=${4:-}
run() {
  local build=$1; shift
  "$1" bench "${@:2}" --json --min-time-ms 1500 2>/dev/null | python3 -c "
import sys, json
for d in map(json.loads, sys.stdin):
    d['build'] = sys.argv[1]
    open(sys.argv[2], 'a').write(json.dumps(d) + '\n')
    print('%-14s kernel %8.3f ms  e2e %8.3f ms  %6.2f GFLOP/s' % (d['algorithm'], d['kernel_ms'], d['end_to_end_ms'], d['gflops']))
" "$build" "$RAW"
}
while read -r line; do
  echo "== $line"
  for round in 1 2; do
    echo -n "base: "; run base "$BASE" $line
    echo -n "new:  "; run new "$NEW" $line
  done
done < <(if [[ -n "$LAYERS" ]]; then cat "$LAYERS"; else cat <<'CFG'
--input-shape 8,64,56,56 --out-channels 64 --kernel-size 3 --padding 1 --algorithm blocked
--input-shape 8,64,56,56 --out-channels 64 --kernel-size 3 --padding 1 --algorithm implicit-gemm
--input-shape 1,64,56,56 --out-channels 256 --kernel-size 1 --algorithm gemm-1x1
--input-shape 1,144,56,56 --out-channels 144 --kernel-size 3 --padding 1 --groups 144 --algorithm depthwise
--input-shape 1,3,224,224 --out-channels 64 --kernel-size 7 --stride 2 --padding 3 --algorithm blocked
--input-shape 1,64,56,56 --out-channels 64 --kernel-size 3 --padding 1 --algorithm direct
--input-shape 1,1,6,8 --out-channels 1 --kernel-size 1,2 --algorithm direct
CFG
fi)
