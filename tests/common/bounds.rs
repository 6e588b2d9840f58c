//! The fp32 error bounds every comparison uses, and the comparisons: CPU
//! work only, so that the web tests (web/tests) share them.

use wgpu_conv2d::{Conv2d, PaddingMode, Tensor};

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
