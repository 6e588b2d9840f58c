#!/usr/bin/env python3
"""Generates PyTorch golden data for the test suite: tests/data/golden_forward.json
(forward values and errors) and tests/data/golden_backward.json (autograd gradients).

    python3 -m venv /tmp/torch && /tmp/torch/bin/pip install torch==2.15.0 numpy
    /tmp/torch/bin/python tools/golden.py

Each case is an nn.Conv2d configuration with its input, weight and bias, and
either PyTorch's float32 output (CPU) or the kind of error PyTorch raises.
The output is committed, so CI never needs PyTorch. Re-running with the same
torch version reproduces the file byte for byte (fixed seeds).
"""

import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn

TORCH_VERSION = "2.15.0"
SEED = 20261121
DATA = os.path.join(os.path.dirname(__file__), "..", "tests", "data")
OUT = os.path.join(DATA, "golden_forward.json")
OUT_BACKWARD = os.path.join(DATA, "golden_backward.json")
MODES = ["zeros", "reflect", "replicate", "circular"]

# PyTorch message fragment -> the error kind the Rust tests map their errors to.
ERROR_KINDS = [
    ("to have", "channel_mismatch"),
    ("Kernel size can't be greater than actual input size", "kernel_too_large"),
    ("Padding size should be less than the corresponding input dimension", "reflect_pad_too_large"),
    ("wrapping around more than once", "circular_pad_too_large"),
    ("not supported for strided convolutions", "same_with_stride"),
    ("in_channels must be divisible by groups", "in_channels_not_divisible"),
    ("out_channels must be divisible by groups", "out_channels_not_divisible"),
    ("Only zero batch or zero channel inputs are supported", "empty_spatial"),
    ("possibly 0 batch size and other non-zero dimensions", "pad_empty_input"),
    ("negative padding is not supported", "negative_padding"),
    ("Expected 3D (unbatched) or 4D (batched) input", "input_rank"),
    ("non-positive stride is not supported", "non_positive_stride"),
    ("expected weight to be at least", "too_few_out_channels"),
    ("Negative padding value is resulting in an empty dimension", "crop_empties"),
    ("must be >= 1 in every dimension", "pad_output_empty"),
    ("groups must be a positive integer", "non_positive_groups"),
]


def error_kind(message):
    for fragment, kind in ERROR_KINDS:
        if fragment in message:
            return kind
    raise SystemExit(f"unclassified PyTorch error: {message}")


def floats(a):
    """Shortest float32 text of each value, so the JSON stays compact and exact."""
    return [float(repr(np.float32(v)).replace("np.float32(", "").rstrip(")")) for v in a.ravel()]


def run_case(name, params, input_shape, rng):
    """Builds nn.Conv2d(**params) with random weights, runs it, and records the result."""
    case = {"name": name, "params": params, "input_shape": list(input_shape)}
    x = rng.standard_normal(input_shape).astype(np.float32)
    case["input"] = floats(x)
    try:
        conv = nn.Conv2d(**params)
    except ValueError as e:
        case["weight_shape"] = None
        case["error"] = error_kind(str(e))
        case["message"] = str(e)
        return case
    with torch.no_grad():
        w = rng.uniform(-1, 1, tuple(conv.weight.shape)).astype(np.float32)
        conv.weight.copy_(torch.from_numpy(w))
        case["weight_shape"] = list(w.shape)
        case["weight"] = floats(w)
        if conv.bias is not None:
            b = rng.uniform(-1, 1, tuple(conv.bias.shape)).astype(np.float32)
            conv.bias.copy_(torch.from_numpy(b))
            case["bias"] = floats(b)
        try:
            y = conv(torch.from_numpy(x)).numpy()
        except (RuntimeError, ValueError, NotImplementedError) as e:
            case["error"] = error_kind(str(e))
            case["message"] = str(e).split("\n")[0]
            return case
    case["output_shape"] = list(y.shape)
    case["output"] = floats(y)
    return case


def run_backward_case(name, params, input_shape, rng):
    """nn.Conv2d(**params) forward, then autograd with a random grad_output."""
    conv = nn.Conv2d(**params)
    x = rng.standard_normal(input_shape).astype(np.float32)
    w = rng.uniform(-1, 1, tuple(conv.weight.shape)).astype(np.float32)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(w))
    case = {"name": name, "params": params, "input_shape": list(input_shape), "input": floats(x),
            "weight_shape": list(w.shape), "weight": floats(w)}
    if conv.bias is not None:
        b = rng.uniform(-1, 1, tuple(conv.bias.shape)).astype(np.float32)
        with torch.no_grad():
            conv.bias.copy_(torch.from_numpy(b))
        case["bias"] = floats(b)
    xt = torch.from_numpy(x).requires_grad_(True)
    y = conv(xt)
    go = rng.standard_normal(tuple(y.shape)).astype(np.float32)
    y.backward(torch.from_numpy(go))
    case["grad_output_shape"] = list(go.shape)
    case["grad_output"] = floats(go)
    case["grad_input"] = floats(xt.grad.numpy())
    case["grad_weight"] = floats(conv.weight.grad.numpy())
    if conv.bias is not None:
        case["grad_bias"] = floats(conv.bias.grad.numpy())
    return case


def backward_cases():
    """Edge cases of the gradient rules, then random valid configurations."""
    yield "batch_zero", params(3, 4, 3, padding=1), (0, 3, 5, 5)
    yield "in_channels_zero", params(0, 3, 3, stride=2), (2, 0, 7, 8)
    yield "same_even_kernel_dilated", params(2, 2, (2, 4), padding="same", dilation=(3, 1)), (1, 2, 7, 6)
    yield "rows_dropped_by_stride", params(1, 2, 3, stride=(3, 2)), (1, 1, 8, 9)
    for mode in MODES[1:]:
        yield f"same_{mode}", params(2, 2, (3, 4), padding="same", mode=mode), (2, 2, 5, 6)
        yield f"unbatched_{mode}", params(2, 4, 3, padding=(2, 1), groups=2, mode=mode), (2, 5, 6)
        yield f"negative_padding_{mode}", params(1, 1, 2, padding=(-1, 1), mode=mode), (1, 1, 6, 5)
    yield "reflect_wide_pad", params(1, 1, 3, padding=(2, 4), mode="reflect"), (1, 1, 3, 5)
    yield "replicate_pad_beyond_size", params(1, 1, 3, padding=4, mode="replicate"), (1, 1, 3, 3)
    yield "circular_pad_equals_size", params(1, 1, 3, padding=3, mode="circular"), (1, 1, 3, 3)
    yield "depthwise_multiplier", params(3, 6, 3, padding=1, groups=3, bias=False), (2, 3, 6, 6)
    rng = np.random.default_rng(SEED + 1)
    produced = 0
    while produced < 150:
        p, shape = next(random_cases(rng, 1))[1:]
        try:
            nn.Conv2d(**p)(torch.zeros(shape))
        except (RuntimeError, ValueError):
            continue
        yield f"random_{produced:03d}", p, shape
        produced += 1


def params(cin, cout, k, stride=1, padding=0, dilation=1, groups=1, bias=True, mode="zeros"):
    return {
        "in_channels": cin, "out_channels": cout, "kernel_size": k, "stride": stride,
        "padding": padding, "dilation": dilation, "groups": groups, "bias": bias,
        "padding_mode": mode,
    }


def edge_cases():
    """Named cases for each rule of the semantics reference."""
    yield "batch_zero", params(3, 6, 3, padding=1), (0, 3, 5, 5)
    yield "batch_zero_reflect", params(3, 6, 3, padding=1, mode="reflect"), (0, 3, 5, 5)
    yield "batch_zero_zero_height_padded", params(3, 6, 3, padding=2), (0, 3, 0, 5)
    yield "in_channels_zero", params(0, 33, 3, stride=2), (2, 0, 10, 12)
    yield "in_channels_zero_circular", params(0, 4, 3, padding=1, mode="circular"), (1, 0, 6, 6)
    yield "same_even_kernel", params(2, 3, 4, padding="same"), (1, 2, 6, 7)
    yield "same_even_kernel_dilated_odd", params(2, 3, (2, 4), padding="same", dilation=(3, 1)), (1, 2, 7, 6)
    yield "same_kernel_larger_than_input", params(1, 2, 5, padding="same"), (1, 1, 2, 2)
    for mode in MODES[1:]:
        yield f"same_{mode}_k34", params(2, 2, (3, 4), padding="same", mode=mode), (1, 2, 5, 6)
        yield f"unbatched_{mode}", params(2, 3, 3, padding=(1, 2), mode=mode), (2, 5, 6)
        yield f"negative_padding_{mode}", params(1, 1, 3, padding=-1, mode=mode), (1, 1, 6, 6)
        yield f"negative_padding_h_only_{mode}", params(1, 2, 2, padding=(-1, 1), mode=mode), (1, 1, 6, 5)
    yield "reflect_pad_size_minus_one", params(1, 1, 3, padding=2, mode="reflect"), (1, 1, 3, 3)
    yield "circular_pad_equals_size", params(1, 1, 3, padding=3, mode="circular"), (1, 1, 3, 3)
    yield "replicate_pad_beyond_size", params(1, 1, 3, padding=4, mode="replicate"), (1, 1, 3, 3)
    yield "replicate_one_by_one", params(1, 1, 3, padding=1, mode="replicate"), (1, 1, 1, 1)
    yield "depthwise_multiplier", params(4, 8, 3, padding=1, groups=4), (2, 4, 5, 5)
    yield "pointwise_strided", params(6, 4, 1, stride=2), (1, 6, 7, 7)
    yield "stride_beyond_kernel", params(2, 2, 2, stride=(4, 3)), (1, 2, 9, 10)
    yield "dilated_strided_grouped", params(4, 6, (3, 2), stride=(2, 1), dilation=(1, 3), groups=2), (1, 4, 9, 9)
    yield "height_one", params(2, 2, (1, 3), padding=(0, 1)), (1, 2, 1, 8)
    yield "no_bias_unbatched_same", params(3, 2, 3, padding="same", bias=False), (3, 4, 4)
    # Errors, one per rule.
    yield "err_channel_mismatch", params(3, 6, 3), (1, 4, 5, 5)
    yield "err_kernel_too_large", params(1, 1, 3), (1, 1, 2, 2)
    yield "err_kernel_too_large_dilated", params(1, 1, 3, dilation=2), (1, 1, 4, 4)
    yield "err_kernel_too_large_batch_zero", params(1, 1, 3), (0, 1, 2, 2)
    yield "err_reflect_pad_equals_size", params(1, 1, 3, padding=3, mode="reflect"), (1, 1, 3, 3)
    yield "err_reflect_size_one", params(1, 1, 1, padding=1, mode="reflect"), (1, 1, 1, 4)
    yield "err_reflect_same_kernel_larger", params(1, 1, 7, padding="same", mode="reflect"), (1, 1, 3, 3)
    yield "err_circular_pad_beyond_size", params(1, 1, 3, padding=4, mode="circular"), (1, 1, 3, 3)
    yield "err_same_strided", params(1, 1, 3, padding="same", stride=2), (1, 1, 5, 5)
    yield "err_in_not_divisible", params(3, 4, 3, groups=2), (1, 3, 5, 5)
    yield "err_out_not_divisible", params(4, 3, 3, groups=2), (1, 4, 5, 5)
    yield "err_empty_height", params(3, 2, 1, padding=1), (1, 3, 0, 5)
    yield "err_reflect_zero_channels", params(0, 2, 3, padding=1, mode="reflect"), (1, 0, 5, 5)
    yield "err_negative_padding_zeros", params(1, 1, 3, padding=-1), (1, 1, 6, 6)
    yield "err_input_rank_5d", params(2, 2, 3), (1, 2, 3, 5, 5)
    yield "err_input_rank_2d", params(1, 1, 3), (5, 5)
    yield "err_stride_zero", params(1, 1, 3, stride=0), (1, 1, 5, 5)
    yield "err_out_channels_zero", params(3, 0, 3), (1, 3, 5, 5)
    yield "err_groups_zero", params(3, 3, 3, groups=0), (1, 3, 5, 5)
    yield "err_circular_crop_to_zero", params(1, 1, 1, padding=(0, -3), mode="circular"), (1, 1, 4, 6)
    yield "err_circular_crop_empties", params(1, 1, 1, padding=(0, -4), mode="circular"), (1, 1, 4, 6)
    yield "err_reflect_crop_empties", params(1, 1, 1, padding=(-2, 0), mode="reflect"), (1, 1, 4, 6)
    yield "err_replicate_crop_empties", params(1, 1, 1, padding=(0, -3), mode="replicate"), (1, 1, 4, 6)


def random_cases(rng, count):
    """Random configurations over the whole parameter space, mostly valid."""
    for i in range(count):
        groups = int(rng.choice([1, 1, 1, 2, 3, 4]))
        cin = groups * int(rng.integers(1, 4))
        depthwise = groups > 1 and rng.random() < 0.3
        if depthwise:
            cin = groups
        cout = groups * int(rng.integers(1, 4))
        k = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
        mode = str(rng.choice(MODES))
        same = rng.random() < 0.2
        stride = (1, 1) if same else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        dilation = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        if same:
            padding = "same"
        elif rng.random() < 0.15:
            padding = "valid"
        else:
            padding = [int(rng.integers(0, 4)), int(rng.integers(0, 4))]
        # Mostly inputs the dilated kernel fits, sometimes anything (errors).
        def size(axis):
            if rng.random() < 0.1:
                return int(rng.integers(1, 10))
            pad = 0 if padding in ("same", "valid") else padding[axis]
            span = dilation[axis] * (k[axis] - 1) + 1 - 2 * pad
            return max(1, span) + int(rng.integers(0, 7))
        h, w = size(0), size(1)
        unbatched = rng.random() < 0.2
        shape = (cin, h, w) if unbatched else (int(rng.integers(1, 3)), cin, h, w)
        p = params(cin, cout, list(k), list(stride), padding, list(dilation), groups,
                   bool(rng.random() < 0.7), mode)
        yield f"random_{i:03d}", p, shape


def main():
    if torch.__version__.split("+")[0] != TORCH_VERSION:
        sys.exit(f"expected torch {TORCH_VERSION}, found {torch.__version__}")
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    rng = np.random.default_rng(SEED)
    cases = [run_case(n, p, s, rng) for n, p, s in edge_cases()]
    cases += [run_case(n, p, s, rng) for n, p, s in random_cases(rng, 300)]
    errors = sum("error" in c for c in cases)
    doc = {
        "description": "nn.Conv2d forward from PyTorch (CPU, float32), generated by tools/golden.py. "
                       "Tensors are flattened row-major. 'error' is the kind of error PyTorch raised.",
        "torch_version": torch.__version__,
        "seed": SEED,
        "cases": cases,
    }
    with open(OUT, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(cases)} cases ({errors} errors) to {os.path.normpath(OUT)}")

    rng = np.random.default_rng(SEED + 2)
    cases = [run_backward_case(n, p, s, rng) for n, p, s in backward_cases()]
    doc = {
        "description": "nn.Conv2d gradients from PyTorch autograd (CPU, float32): y = conv(x), "
                       "y.backward(grad_output), generated by tools/golden.py.",
        "torch_version": torch.__version__,
        "seed": SEED,
        "cases": cases,
    }
    with open(OUT_BACKWARD, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(cases)} gradient cases to {os.path.normpath(OUT_BACKWARD)}")


if __name__ == "__main__":
    main()
