#!/bin/bash
# The backward against the forward on the four ResNet 3x3 layers at batch 8, in one run:
#   tools/backward_ratio.sh [BINARY] >> docs/bench/weight_grad_ratio.jsonl
# Kernel ms of the forward and of the backward (blocked), and the median time of the
# weight-gradient pass from WGPU_CONV2D_TRACE_PASSES.
B=${1:-target/release/wgpu-conv2d}
for l in "8,64,56,56 64" "8,128,28,28 128" "8,256,14,14 256" "8,512,7,7 512"; do
  set -- $l
  f=$(NODEVICE_SELECT=1 $B bench --input-shape $1 --out-channels $2 --kernel-size 3 --padding 1 --algorithm blocked --json --min-time-ms 1500 2>/dev/null | python3 -c "import sys,json; print(json.loads(sys.stdin.readline())['kernel_ms'])")
  b=$(NODEVICE_SELECT=1 $B bench --input-shape $1 --out-channels $2 --kernel-size 3 --padding 1 --algorithm blocked --pass backward --json --min-time-ms 1500 2>/dev/null | python3 -c "import sys,json; print(json.loads(sys.stdin.readline())['kernel_ms'])")
  gw=$(NODEVICE_SELECT=1 WGPU_CONV2D_TRACE_PASSES=1 $B bench --input-shape $1 --out-channels $2 --kernel-size 3 --padding 1 --algorithm blocked --pass backward --min-time-ms 300 2>&1 | grep grad_weight_blocked | awk '{print $1}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  python3 -c "
import json,sys
f,b,gw=map(float,sys.argv[2:5])
d=dict(layer=sys.argv[1],forward_kernel_ms=f,backward_kernel_ms=b,grad_weight_pass_ms=gw,backward_over_forward=round(b/f,3),grad_weight_over_forward=round(gw/f,3))
print(json.dumps(d))" "$1->$2 3x3" $f $b $gw
done
