//! Shared by the integration tests: one GPU context per test binary, and the
//! comparison of a GPU result with the CPU reference under the fp32 error bound.
#![allow(dead_code)]

pub mod winograd;

use std::sync::OnceLock;

use rand::{RngExt, SeedableRng, rngs::StdRng};
use serde_json::Value;
use wgpu_conv2d::{
    Algorithm, Conv2d, Conv2dConfig, Conv2dError, GpuContext, GpuConv2d, Padding, PaddingMode,
    Size2, Tensor,
};

/// The GPU context of this test binary. Without an adapter the calling test
/// fails (it never skips) and says how to get one.
pub fn gpu() -> &'static GpuContext {
    static CTX: OnceLock<Result<GpuContext, String>> = OnceLock::new();
    match CTX.get_or_init(|| GpuContext::new().map_err(|e| e.to_string())) {
        Ok(ctx) => ctx,
        Err(e) => panic!("GPU tests need an adapter and found none: {e}"),
    }
}

/// Element-wise `|t|`.
pub fn abs(t: &Tensor) -> Tensor {
    Tensor::new(t.shape(), t.data().iter().map(|v| v.abs()).collect()).unwrap()
}

/// `Σ|w·x| + |b|` for every output element: the same layer with absolute
/// weights, bias and input, on the CPU reference (padding only copies values,
/// so it commutes with `abs`).
pub fn magnitude(layer: &Conv2d, input: &Tensor) -> Tensor {
    let abs_layer =
        Conv2d::from_weights(*layer.config(), abs(layer.weight()), layer.bias().map(abs)).unwrap();
    abs_layer.forward_cpu(&abs(input)).unwrap()
}

/// Error bound of an fp32 dot product of `terms` products accumulated in any
/// order: `(terms + 2) · 2⁻²³ · Σ|w·x|` (Higham's γ_n with margin for the final
/// rounding of the f64 reference), per output element.
pub fn bound(terms: usize, magnitude: f32) -> f32 {
    (terms as f32 + 2.0) * f32::EPSILON * magnitude
}

/// Number of products summed into one output: `(C_in / groups)·kH·kW`, plus the bias.
pub fn terms(layer: &Conv2d) -> usize {
    layer.config().fan_in() + usize::from(layer.bias().is_some())
}

/// Asserts `got` equals `want` within the fp32 bound, element by element, with
/// NaN matching NaN and infinities matching exactly.
pub fn assert_within_bound(
    what: &str,
    got: &Tensor,
    want: &Tensor,
    magnitude: &Tensor,
    terms: usize,
) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    for (k, ((&g, &w), &m)) in got
        .data()
        .iter()
        .zip(want.data())
        .zip(magnitude.data())
        .enumerate()
    {
        if !w.is_finite() {
            assert!(
                g == w || (g.is_nan() && w.is_nan()),
                "{what}: element {k}: got {g}, want {w}"
            );
            continue;
        }
        let tol = bound(terms, m);
        assert!(
            (g - w).abs() <= tol,
            "{what}: element {k}: got {g}, want {w}, |diff| {} > bound {tol} (Σ|w·x| = {m}, {terms} terms)",
            (g - w).abs()
        );
    }
}

/// Asserts `got` equals `want` within `tolerance`, element by element.
pub fn assert_within(what: &str, got: &Tensor, want: &Tensor, tolerance: &Tensor) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    for (k, ((&g, &w), &tol)) in got
        .data()
        .iter()
        .zip(want.data())
        .zip(tolerance.data())
        .enumerate()
    {
        assert!(
            (g - w).abs() <= tol || (g.is_nan() && w.is_nan()) || g == w,
            "{what}: element {k}: got {g}, want {w}, |diff| {} > bound {tol}",
            (g - w).abs()
        );
    }
}

/// The largest `|got − want|` in units of `2⁻²³ · max Σ|w·x|` (the largest
/// output magnitude of the case): a normwise error, finite where an output's
/// own magnitude is zero.
pub fn normwise_error(got: &Tensor, want: &Tensor, magnitude: &Tensor) -> f64 {
    let scale = magnitude.data().iter().fold(0.0f32, |a, &m| a.max(m));
    let err = got
        .data()
        .iter()
        .zip(want.data())
        .filter(|(_, w)| w.is_finite())
        .map(|(&g, &w)| (g - w).abs())
        .fold(0.0f32, f32::max);
    if scale == 0.0 {
        return 0.0;
    }
    f64::from(err) / (f64::from(f32::EPSILON) * f64::from(scale))
}

/// Runs `layer` on the GPU and checks it against the CPU reference.
pub fn check_gpu_against_cpu(what: &str, layer: &Conv2d, input: &Tensor) -> Tensor {
    check_algorithm(what, layer, input, Algorithm::Auto, gpu())
}

/// Runs `layer` on the GPU with `algorithm` on `ctx` and checks it against the CPU reference.
pub fn check_algorithm(
    what: &str,
    layer: &Conv2d,
    input: &Tensor,
    algorithm: Algorithm,
    ctx: &wgpu_conv2d::GpuContext,
) -> Tensor {
    let what = &format!("{what} [{algorithm}]");
    let gpu_layer = wgpu_conv2d::GpuConv2d::new(ctx, layer)
        .unwrap()
        .with_algorithm(algorithm);
    let got = gpu_layer
        .forward(input)
        .unwrap_or_else(|e| panic!("{what}: GPU forward failed: {e}"));
    let want = layer.forward_cpu(input).unwrap();
    assert_within_bound(what, &got, &want, &magnitude(layer, input), terms(layer));
    got
}

/// `2` or `[2, 1]` from the JSON test data.
pub fn size2(v: &Value) -> Size2 {
    match v {
        Value::Number(n) => Size2::square(n.as_u64().unwrap() as usize),
        Value::Array(a) => Size2::new(
            a[0].as_u64().unwrap() as usize,
            a[1].as_u64().unwrap() as usize,
        ),
        other => panic!("not a size: {other}"),
    }
}

/// `1`, `[1, 2]`, `"same"` or `"valid"` from the JSON test data.
pub fn padding(v: &Value) -> Padding {
    match v {
        Value::String(s) => s.parse().unwrap(),
        Value::Number(n) => Padding::uniform(n.as_i64().unwrap()),
        Value::Array(a) => Padding::from((a[0].as_i64().unwrap(), a[1].as_i64().unwrap())),
        other => panic!("not a padding: {other}"),
    }
}

/// An `nn.Conv2d` parameter object (as the seed examples and golden data write it).
pub fn config(params: &Value) -> Conv2dConfig {
    let int = |k: &str| params[k].as_u64().unwrap_or_else(|| panic!("{k}")) as usize;
    Conv2dConfig::new(
        int("in_channels"),
        int("out_channels"),
        size2(&params["kernel_size"]),
    )
    .with_stride(size2(&params["stride"]))
    .with_padding(padding(&params["padding"]))
    .with_dilation(size2(&params["dilation"]))
    .with_groups(int("groups"))
    .with_bias(params["bias"].as_bool().unwrap())
    .with_padding_mode(
        params["padding_mode"]
            .as_str()
            .unwrap()
            .parse::<PaddingMode>()
            .unwrap(),
    )
}

/// A flat JSON array of numbers as `f32` (`null` where JSON cannot hold NaN/Inf is not used).
pub fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// A shape array.
pub fn shape(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

/// Reads a JSON file of tests/data.
pub fn load(name: &str) -> Value {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// The layer of a seed or golden case: its parameters, weight and bias.
pub fn layer_from_case(case: &Value) -> Result<Conv2d, Conv2dError> {
    let config = config(&case["params"]);
    let weight = Tensor::new(shape(&case["weight_shape"]), floats(&case["weight"]))?;
    let bias = match &case["bias"] {
        Value::Null => None,
        b => Some(Tensor::new([config.out_channels], floats(b))?),
    };
    Conv2d::from_weights(config, weight, bias)
}

/// Checks the CPU reference and the GPU against PyTorch's `expected` output.
pub fn check_both_paths(name: &str, layer: &Conv2d, input: &Tensor, expected: &Tensor) {
    let mag = magnitude(layer, input);
    let cpu = layer
        .forward_cpu(input)
        .unwrap_or_else(|e| panic!("{name} (cpu): {e}"));
    assert_within_bound(&format!("{name} (cpu)"), &cpu, expected, &mag, terms(layer));
    // Every algorithm that can run the case, forced, and Auto's pick.
    let geometry = wgpu_conv2d::Conv2dGeometry::new(layer.config(), input.shape()).unwrap();
    for algorithm in std::iter::once(Algorithm::Auto).chain(Algorithm::KERNELS) {
        if algorithm.check(&geometry).is_err() {
            continue;
        }
        let gpu = GpuConv2d::new(gpu(), layer)
            .and_then(|g| g.with_algorithm(algorithm).forward(input))
            .unwrap_or_else(|e| panic!("{name} (gpu, {algorithm}): {e}"));
        let what = format!("{name} (gpu, {algorithm})");
        if algorithm == Algorithm::Winograd {
            // Its own bound, plus PyTorch's rounding in `expected`.
            let winograd = winograd::winograd_bound(layer, input);
            let tolerance = winograd
                .data()
                .iter()
                .zip(mag.data())
                .map(|(&w, &m)| w + bound(terms(layer), m))
                .collect();
            let tolerance = Tensor::new(expected.shape(), tolerance).unwrap();
            assert_within(&what, &gpu, expected, &tolerance);
        } else {
            assert_within_bound(&what, &gpu, expected, &mag, terms(layer));
        }
    }
}

/// Uniform values in [-1, 1), seeded.
pub fn random_tensor(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = shape.iter().product();
    Tensor::new(shape, (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()).unwrap()
}

/// How many padded positions along `axis` (itself included) fold their
/// gradient back onto one input position: none but itself with zero padding,
/// at most one mirror or wrapped copy per side with reflect (pad < size) and
/// circular (pad ≤ size), and every copy of the edge with replicate.
pub fn folds(mode: PaddingMode, axis: &wgpu_conv2d::Axis) -> usize {
    let (before, after) = (
        axis.pad_before().max(0) as usize,
        axis.pad_after().max(0) as usize,
    );
    match mode {
        PaddingMode::Zeros => 1,
        PaddingMode::Reflect | PaddingMode::Circular => {
            1 + usize::from(before > 0) + usize::from(after > 0)
        }
        PaddingMode::Replicate => 1 + before + after,
    }
}

/// Checks every gradient of `got` against `want` under the fp32 bound. The
/// magnitudes `Σ|a·b|` come from the CPU reference on absolute values; the term
/// counts are upper bounds of the products summed into one element.
pub fn assert_grads_within_bound(
    what: &str,
    got: &wgpu_conv2d::Conv2dGrads,
    want: &wgpu_conv2d::Conv2dGrads,
    layer: &Conv2d,
    input: &Tensor,
    grad_output: &Tensor,
) {
    let abs_layer =
        Conv2d::from_weights(*layer.config(), abs(layer.weight()), layer.bias().map(abs)).unwrap();
    let mag = abs_layer
        .backward_cpu(&abs(input), &abs(grad_output))
        .unwrap();
    let g = wgpu_conv2d::Conv2dGeometry::new(layer.config(), input.shape()).unwrap();
    let reduction = g.batch() * g.height().output() * g.width().output();
    let input_terms = g.out_channels_per_group()
        * g.height().kernel()
        * g.width().kernel()
        * folds(g.padding_mode(), g.height())
        * folds(g.padding_mode(), g.width());
    assert_within_bound(
        &format!("{what}: grad_input"),
        &got.grad_input,
        &want.grad_input,
        &mag.grad_input,
        input_terms,
    );
    assert_within_bound(
        &format!("{what}: grad_weight"),
        &got.grad_weight,
        &want.grad_weight,
        &mag.grad_weight,
        reduction,
    );
    match (&got.grad_bias, &want.grad_bias, &mag.grad_bias) {
        (Some(gb), Some(wb), Some(mb)) => {
            assert_within_bound(&format!("{what}: grad_bias"), gb, wb, mb, reduction)
        }
        (None, None, _) => {}
        _ => panic!("{what}: grad_bias present on one side only"),
    }
}
