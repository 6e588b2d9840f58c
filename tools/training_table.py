#!/usr/bin/env python3
"""Turns tools/bench_training.sh's JSON lines into the markdown tables of
docs/benchmarks.md:

- backward: per layer, the forward (Auto) and each backward algorithm's
  kernel time, the backward/forward ratio, and PyTorch's CPU forward and
  forward + backward from the same run;
- step: per layer, one training step (forward + backward + SGD update, Auto)
  kernel and end to end, and PyTorch's CPU step from the same run.

    python3 tools/training_table.py docs/bench/training.jsonl
"""

import json
import sys


def layer_name(d):
    n, c, h, w = d["input_shape"]
    k = d["kernel_size"]
    stride = d["stride"] if isinstance(d["stride"], str) else d["stride"][0]
    extra = f" s{stride}" if str(stride) not in ("1", "[1, 1]") else ""
    dw = " dw" if d.get("groups", 1) > 1 else ""
    return f"{n}×{c}×{h}×{w} → {d['out_channels']}, {k[0]}×{k[1]}{extra}{dw}"


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    layers = {}
    for d in rows:
        shape = (tuple(d["input_shape"]), d["out_channels"], d.get("groups", 1))
        layers.setdefault(shape, []).append(d)

    print("| layer | forward (auto) ms | backward algorithm | backward ms | GFLOP/s | backward / forward "
          "| torch fwd ms | torch fwd+bwd ms | ours fwd+bwd / torch |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for entries in layers.values():
        forward = next(d for d in entries if d.get("pass") == "forward")
        torch = next((d for d in entries if d.get("pass") == "torch"), None)
        for d in (d for d in entries if d.get("pass") == "backward"):
            name = d["algorithm"] if d["requested"] != "auto" else f"auto ({d['algorithm']})"
            ratio = d["kernel_ms"] / forward["kernel_ms"]
            torch_cells = ["", "", ""]
            if torch:
                ours = forward["kernel_ms"] + d["kernel_ms"]
                torch_cells = [f"{torch['forward_ms']:.1f}", f"{torch['forward_backward_ms']:.1f}",
                               f"{ours / torch['forward_backward_ms']:.2f}×"]
            print(f"| {layer_name(forward)} | {forward['kernel_ms']:.2f} | {name} | {d['kernel_ms']:.2f} "
                  f"| {d['gflops']:.1f} | {ratio:.2f}× | " + " | ".join(torch_cells) + " |")

    steps = [(entries, d) for entries in layers.values() for d in entries if d.get("pass") == "step"]
    if not steps:
        return
    print()
    print("| layer | step kernels (auto) | step kernel ms | GFLOP/s | step end-to-end ms "
          "| torch step ms | ours (kernel) / torch |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for entries, d in steps:
        torch = next((t for t in entries if t.get("pass") == "torch" and "step_ms" in t), None)
        torch_cells = ["", ""]
        if torch:
            torch_cells = [f"{torch['step_ms']:.1f}", f"{d['kernel_ms'] / torch['step_ms']:.2f}×"]
        print(f"| {layer_name(d)} | {d['algorithm']} | {d['kernel_ms']:.2f} | {d['gflops']:.1f} "
              f"| {d['end_to_end_ms']:.2f} | " + " | ".join(torch_cells) + " |")


if __name__ == "__main__":
    main()
