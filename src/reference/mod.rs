//! The CPU reference: plain, obviously right, and independent of the GPU code.
//!
//! It materialises the padded input for the padding mode ([`pad`]), then
//! cross-correlates it with the weight ([`correlate`]), accumulating in `f64`;
//! gradients ([`backward`](mod@backward)) scatter onto the padded input and add the padding
//! back into the positions it copied. It is the truth the GPU kernels are tested
//! against, and a usable path on machines without a GPU.

mod backward;
mod correlate;
mod pad;

use crate::error::Result;
use crate::geometry::Conv2dGeometry;
use crate::layer::{Conv2d, Conv2dGrads};
use crate::tensor::{Tensor, try_filled, try_with_capacity};

fn widen(what: &'static str, values: &[f32]) -> Result<Vec<f64>> {
    let mut wide = try_with_capacity(what, values.len())?;
    wide.extend(values.iter().map(|&v| f64::from(v)));
    Ok(wide)
}

fn narrow(what: &'static str, shape: Vec<usize>, values: Vec<f64>) -> Result<Tensor> {
    let mut data = try_with_capacity(what, values.len())?;
    data.extend(values.into_iter().map(|v| v as f32));
    Tensor::new(shape, data)
}

impl Conv2d {
    /// `self(input)` on the CPU reference. The input is `(N, C, H, W)` or
    /// unbatched `(C, H, W)`; the output has the same rank.
    ///
    /// Every output is summed in `f64` and rounded to `f32` once (see the
    /// crate's README for where that differs from an `f32` accumulation).
    /// Host buffers are allocated fallibly: a padding or size too large for
    /// this machine gives [`Conv2dError::HostMemory`](crate::Conv2dError::HostMemory)
    /// (or `ValueTooLarge` when the size overflows), never an abort.
    pub fn forward_cpu(&self, input: &Tensor) -> Result<Tensor> {
        forward(self, input)
    }

    /// Gradients of `Σ grad_output · self(input)` with respect to the input,
    /// the weight and the bias, on the CPU reference. `grad_output` has the
    /// output's shape.
    pub fn backward_cpu(&self, input: &Tensor, grad_output: &Tensor) -> Result<Conv2dGrads> {
        backward(self, input, grad_output)
    }
}

/// `layer(input)` on the CPU.
///
/// Every output is summed in `f64` and rounded to `f32` once, so it is the
/// correctly rounded result up to f64's own rounding. Where the exact sum fits
/// `f32` but an `f32` running sum would overflow on the way (terms near
/// ±3.4e38 that cancel), the reference gives the finite sum while PyTorch and
/// the GPU kernels, which accumulate in `f32`, give ±inf or NaN.
///
/// Host buffers are allocated fallibly: a padding or size too large for this
/// machine gives [`Conv2dError::HostMemory`](crate::Conv2dError::HostMemory)
/// (or `ValueTooLarge` when the size overflows), never an abort.
fn forward(layer: &Conv2d, input: &Tensor) -> Result<Tensor> {
    let geometry = Conv2dGeometry::new(layer.config(), input.shape())?;
    let bias = layer.bias().map(|b| widen("bias", b.data())).transpose()?;
    let output = forward_f64(
        &geometry,
        &widen("input (f64)", input.data())?,
        &widen("weight (f64)", layer.weight().data())?,
        bias.as_deref(),
    )?;
    narrow("output", geometry.output_shape(), output)
}

/// The forward pass entirely in `f64`, for checks that need more than `f32`
/// (finite differences). `input` is the `(N, C, H, W)` data of `geometry`.
pub(crate) fn forward_f64(
    geometry: &Conv2dGeometry,
    input: &[f64],
    weight: &[f64],
    bias: Option<&[f64]>,
) -> Result<Vec<f64>> {
    let len = crate::tensor::checked_numel(&geometry.output_shape_4d()).unwrap_or(usize::MAX);
    let mut output = try_filled("output (f64)", len, 0.0)?;
    if !output.is_empty() {
        correlate::correlate(
            &pad::pad(input, geometry)?,
            weight,
            bias,
            geometry,
            &mut output,
        );
    }
    Ok(output)
}

/// Gradients of `Σ grad_output · layer(input)` on the CPU.
fn backward(layer: &Conv2d, input: &Tensor, grad_output: &Tensor) -> Result<Conv2dGrads> {
    let geometry = Conv2dGeometry::new(layer.config(), input.shape())?;
    geometry.check_grad_output(grad_output.shape())?;
    let (gx, gw, gb) = backward::backward(
        &geometry,
        &widen("input (f64)", input.data())?,
        &widen("weight (f64)", layer.weight().data())?,
        &widen("grad_output (f64)", grad_output.data())?,
    )?;
    Ok(Conv2dGrads {
        grad_input: narrow("grad_input", input.shape().to_vec(), gx)?,
        grad_weight: narrow("grad_weight", layer.weight().shape().to_vec(), gw)?,
        grad_bias: match layer.bias() {
            Some(b) => Some(narrow("grad_bias", b.shape().to_vec(), gb)?),
            None => None,
        },
    })
}
