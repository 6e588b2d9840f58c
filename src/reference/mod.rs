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

use half::{bf16, f16};

use crate::dtype::{DType, mismatch};
use crate::error::Result;
use crate::geometry::Conv2dGeometry;
use crate::layer::{Conv2d, Conv2dGrads};
use crate::tensor::{Tensor, try_filled, try_with_capacity};

/// A tensor's values in `f64`, each rounded to the tensor's dtype first (a
/// value written into a half tensor's data is used as the dtype holds it).
fn widen(what: &'static str, tensor: &Tensor) -> Result<Vec<f64>> {
    let dtype = tensor.dtype();
    let mut wide = try_with_capacity(what, tensor.numel())?;
    wide.extend(tensor.data().iter().map(|&v| f64::from(dtype.round(v))));
    Ok(wide)
}

/// `values` rounded once to `dtype` (straight from `f64`: no double rounding
/// through `f32`).
fn narrow(what: &'static str, shape: Vec<usize>, values: Vec<f64>, dtype: DType) -> Result<Tensor> {
    let mut data = try_with_capacity(what, values.len())?;
    data.extend(values.into_iter().map(|v| match dtype {
        DType::F32 => v as f32,
        DType::F16 => f16::from_f64(v).to_f32(),
        DType::BF16 => bf16::from_f64(v).to_f32(),
    }));
    Ok(Tensor::new(shape, data)?.with_dtype_unchecked(dtype))
}

impl Conv2d {
    /// `self(input)` on the CPU reference. The input is `(N, C, H, W)` or
    /// unbatched `(C, H, W)`; the output has the same rank.
    ///
    /// Every output is summed in `f64` and rounded to the layer's dtype once
    /// (see the crate's README for where that differs from an `f32`
    /// accumulation). The input's dtype must be the layer's.
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
    // PyTorch checks the bias's dtype before anything else, the weight's
    // after the shapes.
    if layer.bias().is_some() {
        check_dtypes(layer, input, None)?;
    }
    let geometry = Conv2dGeometry::new(layer.config(), input.shape())?;
    check_dtypes(layer, input, None)?;
    let bias = layer.bias().map(|b| widen("bias", b)).transpose()?;
    let output = forward_f64(
        &geometry,
        &widen("input (f64)", input)?,
        &widen("weight (f64)", layer.weight())?,
        bias.as_deref(),
    )?;
    narrow("output", geometry.output_shape(), output, layer.dtype())
}

/// The input's dtype (and the output gradient's) must be the layer's, as
/// PyTorch requires; like PyTorch, a layer with a bias names the bias.
pub(crate) fn check_dtypes(
    layer: &Conv2d,
    input: &Tensor,
    grad_output: Option<&Tensor>,
) -> Result<()> {
    if input.dtype() != layer.dtype() {
        let what = if layer.bias().is_some() {
            "bias"
        } else {
            "weight"
        };
        return Err(mismatch(input.dtype(), what, layer.dtype()));
    }
    match grad_output {
        Some(g) if g.dtype() != input.dtype() => {
            Err(mismatch(input.dtype(), "grad_output", g.dtype()))
        }
        _ => Ok(()),
    }
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
    check_dtypes(layer, input, Some(grad_output))?;
    let (gx, gw, gb) = backward::backward(
        &geometry,
        &widen("input (f64)", input)?,
        &widen("weight (f64)", layer.weight())?,
        &widen("grad_output (f64)", grad_output)?,
        layer.dtype(),
    )?;
    let dtype = layer.dtype();
    Ok(Conv2dGrads {
        grad_input: narrow("grad_input", input.shape().to_vec(), gx, dtype)?,
        grad_weight: narrow("grad_weight", layer.weight().shape().to_vec(), gw, dtype)?,
        grad_bias: match layer.bias() {
            Some(b) => Some(narrow("grad_bias", b.shape().to_vec(), gb, dtype)?),
            None => None,
        },
    })
}
