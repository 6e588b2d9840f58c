//! The fp32 error bounds every comparison uses, and the comparisons: CPU
//! work only, so that the web tests (web/tests) share them.

use super::winograd;
use wgpu_conv2d::{Algorithm, Conv2d, DType, PaddingMode, Tensor};

/// Element-wise `|t|`.
pub fn abs(t: &Tensor) -> Tensor {
    Tensor::new(t.shape(), t.data().iter().map(|v| v.abs()).collect()).unwrap()
}

/// `Σ|w·x| + |b|` for every output element: the same layer with absolute
/// weights, bias and input, on the CPU reference (padding only copies values,
/// so it commutes with `abs`), in `f32` whatever the layer's dtype (a half
/// layer's values are `f32` values).
pub fn magnitude(layer: &Conv2d, input: &Tensor) -> Tensor {
    let f32 = |t: &Tensor| abs(t).to_dtype(DType::F32);
    let abs_layer =
        Conv2d::from_weights(*layer.config(), f32(layer.weight()), layer.bias().map(f32)).unwrap();
    abs_layer.forward_cpu(&f32(input)).unwrap()
}

/// Error bound of an fp32 dot product of `terms` products accumulated in any
/// order: `(terms + 2) · 2⁻²³ · Σ|w·x|` (Higham's γ_n with margin for the final
/// rounding of the f64 reference), per output element.
pub fn bound(terms: usize, magnitude: f32) -> f32 {
    (terms as f32 + 2.0) * f32::EPSILON * magnitude
}

/// What rounding both operands to bfloat16 (blocked-bf16, the kernel of
/// `Precision::Medium`) adds to [`bound`]: with `u_b = 2⁻⁸` each rounded
/// operand is within `u_b·|x|` of its value, so each product within
/// `(2u_b + u_b²)·|w·x|`, and the f32 sum's own bound grows with the rounded
/// terms: `(2u_b + u_b²)(1 + (terms + 2)·2⁻²³)·Σ|w·x|`.
pub fn bf16_operand_bound(terms: usize, magnitude: f32) -> f32 {
    let ub = 1.0 / 256.0;
    let direct = (terms as f64 + 2.0) * f64::from(f32::EPSILON);
    ((2.0 * ub + ub * ub) * (1.0 + direct) * f64::from(magnitude)) as f32
}

/// What a forced algorithm of reduced precision adds to the fp32 bound of
/// each output of `layer` on `input`: Winograd's own bound
/// ([`winograd::winograd_bound`]), blocked-bf16's [`bf16_operand_bound`];
/// `None` for the others.
pub fn own_bound(algorithm: Algorithm, layer: &Conv2d, input: &Tensor) -> Option<Tensor> {
    match algorithm {
        Algorithm::Winograd => Some(winograd::winograd_bound(layer, input)),
        Algorithm::BlockedBf16 => {
            let m = magnitude(layer, input);
            let data = m
                .data()
                .iter()
                .map(|&m| bf16_operand_bound(terms(layer), m));
            Some(Tensor::new(m.shape(), data.collect()).unwrap())
        }
        _ => None,
    }
}

/// Number of products summed into one output: `(C_in / groups)·kH·kW`, plus the bias.
pub fn terms(layer: &Conv2d) -> usize {
    layer.config().fan_in() + usize::from(layer.bias().is_some())
}

/// The bound on a result accumulated in `f32` and rounded once to `dtype`,
/// against the exact sum rounded once to it: the `f32` sum's error `δ`
/// ([`bound`]), then at most one unit in the dtype's last place at the
/// result's magnitude (two values `δ` apart round at most `δ` plus one unit
/// apart); no extra unit for `f32`, whose rounding `bound` already counts.
pub fn rounded_bound(terms: usize, magnitude: f32, want: f32, dtype: DType) -> f32 {
    let delta = bound(terms, magnitude);
    if dtype == DType::F32 {
        delta
    } else {
        delta + dtype.ulp(want.abs() + delta)
    }
}

/// The bound on a half input gradient whose padding's backward adds up to
/// `folds` copies one at a time, rounding each sum to the dtype (as PyTorch
/// does, and the crate after it): two such chains whose copies differ by
/// `δ_p` plus one rounding each stay within `Σ δ_p` plus two units in the
/// last place per copy, at the magnitude every partial sum stays under.
pub fn folded_bound(terms: usize, magnitude: f32, dtype: DType, folds: usize) -> f32 {
    let delta = bound(terms, magnitude);
    delta + 2.0 * folds as f32 * dtype.ulp(magnitude + delta)
}

/// Asserts `got` equals `want` within the fp32 bound, element by element, with
/// NaN matching NaN and infinities matching exactly; for a half dtype (of
/// `want`), within [`rounded_bound`].
pub fn assert_within_bound(
    what: &str,
    got: &Tensor,
    want: &Tensor,
    magnitude: &Tensor,
    terms: usize,
) {
    assert_within_bound_folding(what, got, want, magnitude, terms, 1);
}

/// [`assert_within_bound`], for a half dtype with [`folded_bound`] where
/// `folds` copies are added one rounded sum at a time (`folds > 1`).
pub fn assert_within_bound_folding(
    what: &str,
    got: &Tensor,
    want: &Tensor,
    magnitude: &Tensor,
    terms: usize,
    folds: usize,
) {
    assert_eq!(got.dtype(), want.dtype(), "{what}: dtype");
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
        let tol = if folds > 1 && want.dtype().is_half() {
            folded_bound(terms, m, want.dtype(), folds)
        } else {
            rounded_bound(terms, m, w, want.dtype())
        };
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
    assert_grads_within_scaled_bound(what, got, want, layer, input, grad_output, 1.0);
}

/// [`assert_grads_within_bound`] with the magnitudes scaled by `scale`: 2
/// where both sides accumulate in `f32` (PyTorch's half gradients against
/// the GPU's), each carrying its own error.
pub fn assert_grads_within_scaled_bound(
    what: &str,
    got: &wgpu_conv2d::Conv2dGrads,
    want: &wgpu_conv2d::Conv2dGrads,
    layer: &Conv2d,
    input: &Tensor,
    grad_output: &Tensor,
    scale: f32,
) {
    let f32 = |t: &Tensor| abs(t).to_dtype(DType::F32);
    let abs_layer =
        Conv2d::from_weights(*layer.config(), f32(layer.weight()), layer.bias().map(f32)).unwrap();
    let mag = abs_layer
        .backward_cpu(&f32(input), &f32(grad_output))
        .unwrap();
    let scaled =
        |t: &Tensor| Tensor::new(t.shape(), t.data().iter().map(|m| m * scale).collect()).unwrap();
    let mag = wgpu_conv2d::Conv2dGrads {
        grad_input: scaled(&mag.grad_input),
        grad_weight: scaled(&mag.grad_weight),
        grad_bias: mag.grad_bias.as_ref().map(scaled),
    };
    let g = wgpu_conv2d::Conv2dGeometry::new(layer.config(), input.shape()).unwrap();
    let reduction = g.batch() * g.height().output() * g.width().output();
    let copies = folds(g.padding_mode(), g.height()) * folds(g.padding_mode(), g.width());
    let input_terms =
        g.out_channels_per_group() * g.height().kernel() * g.width().kernel() * copies;
    assert_within_bound_folding(
        &format!("{what}: grad_input"),
        &got.grad_input,
        &want.grad_input,
        &mag.grad_input,
        input_terms,
        copies,
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
