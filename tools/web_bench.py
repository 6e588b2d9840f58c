#!/usr/bin/env python3
"""The same layers on the same driver, web against native: forward kernel
time in headless Chromium's WebGPU on SwiftShader (examples/web/bench.html)
and in the native CLI's `bench` on SwiftShader's Vulkan driver
(VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json), alternating
ROUNDS times; medians. Raw lines are appended to OUT (JSON lines).

Usage: web_bench.py URL CLI OUT [ROUNDS]
"""
import json
import os
import statistics
import subprocess
import sys
import urllib.parse

from webdriver import run_page

SWIFTSHADER_ICD = "/usr/lib/chromium/vk_swiftshader_icd.json"

# A ResNet 3x3 layer at batch 1 (the blocked kernel on both sides) and the
# seed-sized layers of the d2l chapter and the Conv2d walkthrough (the direct
# kernel, which `Auto` runs below 4096 outputs).
LAYERS = [
    {"name": "1x64x56x56 -> 64, 3x3 p1", "input": [1, 64, 56, 56], "out": 64, "kernel": [3, 3],
     "padding": 1, "algorithm": "blocked", "minTimeMs": 2000},
    {"name": "1x1x6x8 -> 1, 1x2 (d2l edge)", "input": [1, 1, 6, 8], "out": 1, "kernel": [1, 2],
     "algorithm": "direct"},
    {"name": "1x3x5x5 -> 2, 3x3 p1", "input": [1, 3, 5, 5], "out": 2, "kernel": [3, 3],
     "padding": 1, "algorithm": "direct"},
    {"name": "1x4x8x8 -> 8, 3x3 s2 p1 reflect", "input": [1, 4, 8, 8], "out": 8, "kernel": [3, 3],
     "stride": 2, "padding": 1, "paddingMode": "reflect", "algorithm": "direct"},
]


def native(cli, layer):
    n, c, h, w = layer["input"]
    command = [cli, "bench", "--json", "--input-shape", f"{n},{c},{h},{w}",
               "--out-channels", str(layer["out"]),
               "--kernel-size", ",".join(map(str, layer["kernel"])),
               "--stride", str(layer.get("stride", 1)), "--padding", str(layer.get("padding", 0)),
               "--padding-mode", layer.get("paddingMode", "zeros"),
               "--algorithm", layer["algorithm"], "--min-time-ms", str(layer.get("minTimeMs", 500))]
    env = dict(os.environ, VK_ICD_FILENAMES=SWIFTSHADER_ICD, NODEVICE_SELECT="1")
    line = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    row = json.loads(line.strip().splitlines()[-1])
    row["name"] = layer["name"]
    return row


def web(url):
    fragment = urllib.parse.quote(json.dumps(LAYERS))
    rows = run_page(f"{url}#{fragment}", "return window.benchDone === true",
                    "return window.benchError ? {error: window.benchError} : window.bench")
    if isinstance(rows, dict):
        sys.exit(f"the web benchmark failed: {rows['error']}")
    return rows


def main():
    url, cli, out = sys.argv[1:4]
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    with open(out, "a") as log:
        for _ in range(rounds):
            for row in web(url):
                log.write(json.dumps({"side": "web", **row}) + "\n")
            for layer in LAYERS:
                log.write(json.dumps({"side": "native", **native(cli, layer)}) + "\n")
            log.flush()
    rows = [json.loads(line) for line in open(out)]
    print("| layer | algorithm | native kernel ms | web kernel ms | web / native | native end-to-end ms | web end-to-end ms |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for layer in LAYERS:
        def med(side, key):
            values = [r[key] for r in rows if r["name"] == layer["name"] and r["side"] == side
                      and r.get(key) is not None]
            return statistics.median(values) if values else float("nan")
        nk, wk = med("native", "kernel_ms"), med("web", "kernel_ms")
        print(f"| {layer['name']} | {layer['algorithm']} | {nk:.3f} | {wk:.3f} | {wk / nk:.2f}× | "
              f"{med('native', 'end_to_end_ms'):.3f} | {med('web', 'end_to_end_ms'):.3f} |")


if __name__ == "__main__":
    main()
