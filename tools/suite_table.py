#!/usr/bin/env python3
"""Turns tools/bench_suite.sh's JSON lines into the markdown table of
docs/benchmarks.md: per layer, each algorithm's kernel and end-to-end time,
GFLOP/s and speed-up over the direct kernel; Auto by its fixed rules and Auto
tuned (autotuning on); PyTorch's forward from the same run (CPU, or CUDA in
tools/device_check.sh's file from a GPU machine); and per layer
the summary the issues ask for: tuned Auto against the best algorithm Auto may
pick, and Auto against PyTorch. With the run's ceilings (its "pass":
"ceilings" lines, from `wgpu-conv2d ceilings --json`), each row also says
which ceiling binds the layer (compute: its FLOPs at the FMA rate; memory:
its least bytes at the streaming rate) and the kernel's fraction of it (the
floor's time over the kernel time). tools/device_check.sh's file also holds
the test binaries' results ("pass": "tests", listed first), the backward, and
Auto at precision high and in float16 (rows labelled so, left out of the
summary, which compares float32 forwards at the default precision).

    python3 tools/suite_table.py docs/bench/results.jsonl
"""

import json
import sys

AUTO_MAY_PICK = {"direct", "implicit-gemm", "gemm-1x1", "depthwise", "blocked"}


def layer_name(d):
    n, c, h, w = d["input_shape"]
    k = d["kernel_size"]
    stride = d["stride"] if isinstance(d["stride"], str) else d["stride"][0]
    extra = f" s{stride}" if str(stride) not in ("1", "[1, 1]") else ""
    g = d.get("groups", 1)
    dw = f" g{g}" if g > 1 else ""
    return f"{n}×{c}×{h}×{w} → {d['out_channels']}, {k[0]}×{k[1]}{extra}{dw}"


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    tests = [d for d in rows if d.get("pass") == "tests"]
    if tests:
        print("| test binary | status | passed | failed | seconds |")
        print("|---|---:|---:|---:|---:|")
        for d in tests:
            if d.get("skipped"):
                print(f"| {d['binary']} | skipped (time budget spent) | | | |")
            else:
                print(f"| {d['binary']} | {d['status']} | {d['passed']} | {d['failed']} | {d['seconds']} |")
        print()
    ceilings = [d for d in rows if d.get("pass") == "ceilings"]
    rows = [d for d in rows if "input_shape" in d]
    fma = sum(d["fma_gflops"] for d in ceilings) / len(ceilings) if ceilings else None
    stream = sum(d["stream_gbps"] for d in ceilings) / len(ceilings) if ceilings else None
    if ceilings:
        print(f"Ceilings of this run ({ceilings[0]['adapter']}, mean of {len(ceilings)}): "
              f"FMA {fma:.1f} GFLOP/s, streaming {stream:.2f} GB/s.")
        print()

    def ceiling_cells(d):
        if not ceilings or "bytes" not in d:
            return " | "
        compute = d["flops"] / (fma * 1e6)
        memory = d["bytes"] / (stream * 1e6)
        bound, floor = ("compute", compute) if compute >= memory else ("memory", memory)
        return f"{bound} | {100 * floor / d['kernel_ms']:.0f}%"

    layers = {}
    for d in rows:
        shape = (tuple(d["input_shape"]), d["out_channels"], tuple(d["kernel_size"]), d.get("groups", 1))
        layers.setdefault(shape, []).append(d)

    print("| layer | algorithm | kernel ms | end-to-end ms | GFLOP/s | × direct | bound | of ceiling |")
    print("|---|---|---:|---:|---:|---:|---|---:|")
    summary = []
    for entries in layers.values():
        ours = [d for d in entries if d.get("pass") != "torch"]
        torch = next((d for d in entries if d.get("pass") == "torch"), None)
        # The float32 forwards at the default precision: what the summary compares.
        plain = [d for d in ours if d.get("pass", "forward") == "forward"
                 and d.get("precision", "highest") == "highest" and d.get("dtype", "f32") == "f32"]
        direct = next((d for d in plain if d["requested"] == "direct"), None)
        name = layer_name(ours[0])
        for d in ours:
            if d["requested"] == "auto":
                label = f"auto{' tuned' if d.get('tuned') else ''} ({d['algorithm']})"
            else:
                label = d["algorithm"]
            if d.get("pass", "forward") != "forward":
                label = f"{d['pass']}: {label}"
            if d.get("precision", "highest") != "highest":
                label += f" at {d['precision']}"
            if d.get("dtype", "f32") != "f32":
                label += f" in {d['dtype']}"
            speedup = f"{direct['kernel_ms'] / d['kernel_ms']:.1f}×" if direct and d is not direct else ""
            print(f"| {name} | {label} | {d['kernel_ms']:.3f} | {d['end_to_end_ms']:.3f} "
                  f"| {d['gflops']:.2f} | {speedup} | {ceiling_cells(d)} |")
        if torch:
            where = (f"CUDA ({torch['device_name']}; cuDNN, TF32 allowed)" if torch.get("device") == "cuda"
                     else f"CPU ({torch['threads']} threads)")
            print(f"| {name} | PyTorch {torch['torch_version']} {where} "
                  f"| | {torch['forward_ms']:.3f} | {ours[0]['flops'] / torch['forward_ms'] / 1e6:.2f} | | | |")
        fixed = next((d for d in plain if d["requested"] == "auto" and not d.get("tuned")), None)
        tuned = next((d for d in plain if d.get("tuned")), None)
        forced = [d for d in plain if d["requested"] != "auto"]
        best = min((d for d in forced if d["requested"] in AUTO_MAY_PICK), key=lambda d: d["kernel_ms"], default=None)
        best_any = min(forced, key=lambda d: d["kernel_ms"], default=None)
        summary.append((name, fixed, tuned, best, best_any, torch))

    print()
    print("| layer | best algorithm Auto may pick | auto (rules) / best | auto tuned picks | auto tuned / best "
          "| best of all (incl. winograd) | auto tuned / torch fwd |")
    print("|---|---|---:|---|---:|---|---:|")
    for name, fixed, tuned, best, best_any, torch in summary:
        cell = lambda d: f"{d['kernel_ms'] / best['kernel_ms']:.2f}×" if d and best else ""
        torch_cell = f"{tuned['kernel_ms'] / torch['forward_ms']:.1f}×" if tuned and torch else ""
        best_any_cell = f"{best_any['algorithm']} {best_any['kernel_ms']:.2f} ms" if best_any else ""
        picks = tuned["algorithm"] if tuned else ""
        best_cell = f"{best['algorithm']} {best['kernel_ms']:.2f} ms" if best else ""
        print(f"| {name} | {best_cell} | {cell(fixed)} | {picks} | {cell(tuned)} "
              f"| {best_any_cell} | {torch_cell} |")


if __name__ == "__main__":
    main()
