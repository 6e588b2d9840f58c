#!/usr/bin/env python3
"""Times PyTorch's CPU Conv2d for one layer, for comparison in the same run as
`wgpu-conv2d bench` (see tools/bench_suite.sh). Prints one JSON object:

    {"input_shape": [...], "out_channels": K, "kernel_size": [kh, kw], "stride": ..., "padding": ...,
     "groups": G, "torch_version": ..., "threads": T,
     "forward_ms": ..., "backward_ms": ..., "forward_backward_ms": ..., "step_ms": ...}

backward_ms is the autograd of the convolution alone (input, weight and bias
gradients), timed as (forward + backward) - forward. step_ms is one training
step as `wgpu-conv2d bench --pass step` times it: forward, backward (input,
weight and bias gradients) and torch.optim.SGD(lr=0.01, momentum=0.9).step(). Each figure is a median
over repeated runs after a warm-up, like the crate's own benchmark.

    pip install torch numpy
    python3 tools/torch_bench.py --input-shape 8,64,56,56 --out-channels 64 --kernel-size 3 --padding 1

With --device cuda (tools/device_check.sh on a GPU machine) the same figures
are PyTorch's on the GPU, each run synchronised before its clock stops; its
line then says "device": "cuda" and the GPU's name.
"""

import argparse
import json
import statistics
import time

import torch
import torch.nn as nn


def pair(text):
    values = [int(v) for v in text.split(",")]
    return values[0] if len(values) == 1 else tuple(values)


def median_ms(run, min_time_s, sync, min_runs=3, max_runs=200):
    run()  # warm-up
    sync()
    times = []
    start = time.perf_counter()
    while len(times) < max_runs and (len(times) < min_runs or time.perf_counter() - start < min_time_s):
        t0 = time.perf_counter()
        run()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--input-shape", required=True)
    p.add_argument("--out-channels", type=int, required=True)
    p.add_argument("--kernel-size", required=True)
    p.add_argument("--stride", default="1")
    p.add_argument("--padding", default="0")
    p.add_argument("--dilation", default="1")
    p.add_argument("--groups", type=int, default=1)
    p.add_argument("--min-time-ms", type=float, default=500)
    p.add_argument("--device", default="cpu", help="cpu, or cuda")
    a = p.parse_args()
    device = torch.device(a.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    torch.manual_seed(0)
    shape = [int(v) for v in a.input_shape.split(",")]
    conv = nn.Conv2d(shape[-3], a.out_channels, pair(a.kernel_size), stride=pair(a.stride),
                     padding=pair(a.padding), dilation=pair(a.dilation), groups=a.groups).to(device)
    x = torch.rand(shape, device=device) * 2 - 1
    xg = x.clone().requires_grad_(True)
    with torch.no_grad():
        gy = torch.rand(conv(x).shape, device=device) * 2 - 1
    min_time = a.min_time_ms / 1e3

    def forward():
        with torch.no_grad():
            conv(x)

    def forward_backward():
        conv.zero_grad(set_to_none=True)
        xg.grad = None
        conv(xg).backward(gy)

    sgd = torch.optim.SGD(conv.parameters(), lr=0.01, momentum=0.9)

    def step():
        sgd.zero_grad(set_to_none=True)
        xg.grad = None
        conv(xg).backward(gy)
        sgd.step()

    forward_ms = median_ms(forward, min_time, sync)
    both_ms = median_ms(forward_backward, min_time, sync)
    step_ms = median_ms(step, min_time, sync)
    print(json.dumps({
        "input_shape": shape,
        "out_channels": a.out_channels,
        "kernel_size": list(pair(a.kernel_size)) if "," in a.kernel_size else [int(a.kernel_size)] * 2,
        "stride": a.stride,
        "padding": a.padding,
        "groups": a.groups,
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": device.type,
        "device_name": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "forward_ms": forward_ms,
        "backward_ms": both_ms - forward_ms,
        "forward_backward_ms": both_ms,
        "step_ms": step_ms,
    }))


if __name__ == "__main__":
    main()
