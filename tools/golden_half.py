#!/usr/bin/env python3
"""Generates PyTorch golden data for half tensors: tests/data/golden_half.json.

    python3 -m venv /tmp/torch && /tmp/torch/bin/pip install torch==2.15.0 numpy
    /tmp/torch/bin/python tools/golden_half.py

For float16 and bfloat16: nn.Conv2d forward cases (the edge cases of
tools/golden.py that PyTorch accepts, random configurations, and wide
reductions where the f32 accumulation's rounding shows), autograd cases
(input, weight and bias gradients), the padding's backward alone (its
rounding and order, to be matched bit for bit), and the dtype mismatches
PyTorch refuses, with its messages. Tensors are stored as float32 numbers holding
the dtype's values exactly (bfloat16 has no numpy dtype). CPU, one thread,
deterministic; re-running with the same torch reproduces the file.
"""

import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from golden import MODES, TORCH_VERSION, edge_cases, floats, params, random_cases  # noqa: E402

SEED = 20261204
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "golden_half.json")
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def layer(p, dtype, rng):
    """nn.Conv2d(**p) in `dtype` with uniform(-1, 1) weights (and bias)."""
    conv = nn.Conv2d(**p)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(rng.uniform(-1, 1, tuple(conv.weight.shape)).astype(np.float32)))
        if conv.bias is not None:
            conv.bias.copy_(torch.from_numpy(rng.uniform(-1, 1, tuple(conv.bias.shape)).astype(np.float32)))
    return conv.to(dtype)


def values(t):
    return floats(t.detach().float().numpy())


def describe(name, p, shape, dtype_name, conv, x):
    case = {"name": name, "dtype": dtype_name, "params": p, "input_shape": list(shape),
            "input": values(x), "weight_shape": list(conv.weight.shape), "weight": values(conv.weight)}
    case["bias"] = values(conv.bias) if conv.bias is not None else None
    return case


def forward_case(name, p, shape, dtype_name, rng):
    dtype = DTYPES[dtype_name]
    conv = layer(p, dtype, rng)
    x = torch.from_numpy(rng.standard_normal(shape).astype(np.float32)).to(dtype)
    case = describe(name, p, shape, dtype_name, conv, x)
    with torch.no_grad():
        y = conv(x)
    assert y.dtype == dtype
    case["output_shape"] = list(y.shape)
    case["output"] = values(y)
    return case


def backward_case(name, p, shape, dtype_name, rng):
    dtype = DTYPES[dtype_name]
    conv = layer(p, dtype, rng)
    x = torch.from_numpy(rng.standard_normal(shape).astype(np.float32)).to(dtype).requires_grad_(True)
    case = describe(name, p, shape, dtype_name, conv, x)
    y = conv(x)
    go = torch.from_numpy(rng.standard_normal(tuple(y.shape)).astype(np.float32)).to(dtype)
    y.backward(go)
    case["grad_output_shape"] = list(go.shape)
    case["grad_output"] = values(go)
    case["grad_input"] = values(x.grad)
    case["grad_weight"] = values(conv.weight.grad)
    if conv.bias is not None:
        case["grad_bias"] = values(conv.bias.grad)
    return case


def valid(p, shape):
    try:
        nn.Conv2d(**p)(torch.zeros(shape))
        return True
    except (RuntimeError, ValueError):
        return False


def configurations(rng, count):
    """The valid edge cases, then `count` valid random ones, then wide reductions."""
    for name, p, shape in edge_cases():
        if not name.startswith("err_") and valid(p, shape):
            yield name, p, shape
    produced = 0
    for name, p, shape in random_cases(rng, 10 * count):
        if produced == count:
            break
        if valid(p, shape):
            yield name, p, shape
            produced += 1
    yield "wide_3x3", params(96, 8, 3, padding=1), (1, 96, 9, 9)
    yield "wide_1x1", params(500, 4, 1), (2, 500, 3, 3)
    yield "wide_5x5_reflect", params(32, 6, 5, padding=2, mode="reflect"), (1, 32, 8, 8)


def fold_cases(rng):
    """The padding's backward alone: a 1x1 convolution with weight 1, so that
    the gradient of the padded input is grad_output itself, and the input
    gradient is PyTorch's fold of it in the dtype (its rounding, its order).
    Values spread over many binades, so that the order of the rounded sums
    shows."""
    shapes = [((1, 2, 5, 6), (2, 3)), ((2, 1, 4, 4), (1, 1)), ((1, 1, 3, 5), (2, 4)),
              ((1, 1, 6, 5), (-1, 2)), ((1, 1, 5, 6), (3, -1)), ((1, 1, 2, 3), (5, 7))]
    for dtype_name, dtype in DTYPES.items():
        for mode in MODES[1:]:
            for k, (shape, pad) in enumerate(shapes):
                p = params(shape[1], shape[1], 1, padding=list(pad), groups=shape[1], bias=False, mode=mode)
                try:
                    conv = nn.Conv2d(**p)
                    conv(torch.zeros(shape))
                except (RuntimeError, ValueError):
                    continue
                with torch.no_grad():
                    conv.weight.fill_(1.0)
                conv = conv.to(dtype)
                x = torch.zeros(shape, dtype=dtype, requires_grad=True)
                y = conv(x)
                go = rng.standard_normal(tuple(y.shape)) * np.exp(2.0 * rng.standard_normal(tuple(y.shape)))
                go = torch.from_numpy(go.astype(np.float32)).to(dtype)
                y.backward(go)
                yield {"name": f"fold_{mode}_{k}", "dtype": dtype_name, "params": p,
                       "input_shape": list(shape), "grad_output_shape": list(go.shape),
                       "grad_output": values(go), "grad_input": values(x.grad)}


def mismatches():
    """(name, input dtype, weight dtype, bias dtype, PyTorch's message)."""
    names = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}
    for xi, wi, bi in [(torch.float32, torch.float16, torch.float16),
                       (torch.float16, torch.float32, torch.float32),
                       (torch.bfloat16, torch.float16, torch.float16),
                       (torch.float16, torch.float16, torch.float32),
                       (torch.bfloat16, torch.bfloat16, torch.float32)]:
        x = torch.zeros(1, 2, 5, 5, dtype=xi)
        w = torch.zeros(3, 2, 3, 3, dtype=wi)
        b = torch.zeros(3, dtype=bi)
        try:
            F.conv2d(x, w, b)
        except RuntimeError as e:
            yield {"name": f"mismatch_{names[xi]}_{names[wi]}_{names[bi]}", "input": names[xi],
                   "weight": names[wi], "bias": names[bi], "message": str(e)}
        else:
            sys.exit(f"PyTorch accepted {xi}, {wi}, {bi}")


def main():
    if torch.__version__.split("+")[0] != TORCH_VERSION:
        sys.exit(f"expected torch {TORCH_VERSION}, found {torch.__version__}")
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    rng = np.random.default_rng(SEED)
    forward, backward = [], []
    for dtype_name in DTYPES:
        forward += [forward_case(n, p, s, dtype_name, rng) for n, p, s in configurations(rng, 60)]
        backward += [backward_case(n, p, s, dtype_name, rng) for n, p, s in configurations(rng, 30)]
    doc = {
        "description": "nn.Conv2d in float16 and bfloat16 from PyTorch (CPU), generated by "
                       "tools/golden_half.py. Tensors are flattened row-major float32 numbers "
                       "holding the dtype's values exactly.",
        "torch_version": torch.__version__,
        "seed": SEED,
        "forward": forward,
        "backward": backward,
        "mismatches": list(mismatches()),
        "folds": list(fold_cases(rng)),
    }
    with open(OUT, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(forward)} forward, {len(backward)} backward, {len(doc['folds'])} fold and "
          f"{len(doc['mismatches'])} mismatch cases to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
