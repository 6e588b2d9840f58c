#!/usr/bin/env python3
"""Loads the browser demo (examples/web) in headless Chromium and checks what
it computed on WebGPU against the crate's CPU reference, run by the native CLI
(`wgpu-conv2d forward --backend cpu`): the Sobel output element by element
under the fp32 bound (K + 2)·2⁻²³·Σ|w·x| (K = 9 products; Σ|w·x| from the CLI
on |x| and |w|), the edge pixels it drew (each within 1 of the reference's
rounding), and the d2l example's exact values.

Usage: web_demo_check.py URL CLI [CHROMEDRIVER]
Standard library only: WebDriver over HTTP (tools/webdriver.py), .npy by hand.
"""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

from webdriver import run_page

SOBEL = [-1, 0, 1, -2, 0, 2, -1, 0, 1, -1, -2, -1, 0, 0, 0, 1, 2, 1]
EPS = 2.0 ** -23


def write_npy(path, shape, values):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % (
        "".join(f"{d}, " for d in shape))
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(struct.pack(f"<{len(values)}f", *values))


def read_npy(path):
    with open(path, "rb") as f:
        raw = f.read()
    (length,) = struct.unpack("<H", raw[8:10])
    header = raw[10:10 + length].decode()
    assert "'<f4'" in header and "False" in header, header
    body = raw[10 + length:]
    return list(struct.unpack(f"<{len(body) // 4}f", body))


def cpu_forward(cli, tmp, name, shape, x, w):
    xin, win, out = (os.path.join(tmp, f"{name}-{k}.npy") for k in ("x", "w", "y"))
    write_npy(xin, shape, x)
    write_npy(win, [2, 1, 3, 3], w)
    subprocess.run([cli, "forward", "--input", xin, "--weight", win, "--padding", "1",
                    "--padding-mode", "replicate", "--backend", "cpu", "--output", out],
                   check=True)
    return read_npy(out)


def main():
    url, cli = sys.argv[1], sys.argv[2]
    chromedriver = sys.argv[3] if len(sys.argv) > 3 else "/usr/bin/chromedriver"
    result = run_page(
        url, "return window.demoDone === true",
        "return window.demoError ? {error: window.demoError} : "
        "JSON.stringify({input: {data: Array.from(demo.input.data), shape: demo.input.shape},"
        " output: {data: Array.from(demo.output.data), shape: demo.output.shape},"
        " edges: demo.edges, d2l: demo.d2l, adapter: demo.adapter,"
        " endToEndMs: demo.endToEndMs, kernelMs: demo.kernelMs,"
        " status: document.getElementById('status').textContent})",
        chromedriver, timeout_s=300)
    if isinstance(result, dict):
        sys.exit(f"the demo failed: {result['error']}")
    demo = json.loads(result)
    x, shape = demo["input"]["data"], demo["input"]["shape"]
    got = demo["output"]["data"]
    assert demo["output"]["shape"] == [2] + shape[1:], demo["output"]["shape"]

    with tempfile.TemporaryDirectory() as tmp:
        want = cpu_forward(cli, tmp, "sobel", shape, x, SOBEL)
        magnitude = cpu_forward(cli, tmp, "abs", shape, [abs(v) for v in x], [abs(v) for v in SOBEL])
    assert len(want) == len(got), (len(want), len(got))
    worst = 0.0
    for k, (g, w, m) in enumerate(zip(got, want, magnitude)):
        bound = (9 + 2) * EPS * m
        if not abs(g - w) <= bound:
            sys.exit(f"output {k}: WebGPU {g}, CPU reference {w}, |diff| {abs(g - w)} > bound {bound}")
        if m > 0:
            worst = max(worst, abs(g - w) / (EPS * m))
    plane = len(x)
    mags = [math.hypot(want[i], want[plane + i]) for i in range(plane)]
    peak = max(mags)
    off = [i for i, e in enumerate(demo["edges"])
           if abs(e - (round(255 * mags[i] / peak) if peak > 0 else 0)) > 1]
    if off:
        sys.exit(f"{len(off)} edge pixels differ from the reference by more than 1, first at {off[0]}")
    d2l = [0, 1, 0, 0, 0, -1, 0] * 6
    if demo["d2l"] != d2l:
        sys.exit(f"d2l example: {demo['d2l']}, want {d2l}")
    print(f"demo on {demo['adapter']}: {shape[2]}x{shape[1]} image, {len(got)} outputs within the fp32 "
          f"bound of the CPU reference (largest error {worst:.2f}·2^-23·Σ|w·x|), {plane} edge pixels "
          f"within 1, d2l exact; page says: {demo['status']}")


if __name__ == "__main__":
    main()
