//! The CPU reference: plain, obviously right, and independent of the GPU code.
//!
//! It materialises the padded input for the padding mode ([`pad`]), then
//! cross-correlates it with the weight ([`correlate`]), accumulating in `f64`;
//! gradients ([`backward`](mod@backward)) scatter onto the padded input and add the padding
//! back into the positions it copied. It is the truth the GPU kernels are tested
//! against, and a usable path on machines without a GPU.

pub mod backward;
pub mod correlate;
pub mod pad;

use crate::error::Result;
use crate::geometry::Conv2dGeometry;
use crate::layer::{Conv2d, Conv2dGrads};
use crate::tensor::Tensor;

fn widen(values: &[f32]) -> Vec<f64> {
    values.iter().map(|&v| f64::from(v)).collect()
}

fn narrow(shape: Vec<usize>, values: Vec<f64>) -> Result<Tensor> {
    Tensor::new(shape, values.into_iter().map(|v| v as f32).collect())
}

/// `layer(input)` on the CPU. The input is `(N, C, H, W)` or unbatched `(C, H, W)`;
/// the output has the same rank.
pub fn forward(layer: &Conv2d, input: &Tensor) -> Result<Tensor> {
    let geometry = Conv2dGeometry::new(layer.config(), input.shape())?;
    let bias = layer.bias().map(|b| widen(b.data()));
    let output = forward_f64(
        &geometry,
        &widen(input.data()),
        &widen(layer.weight().data()),
        bias.as_deref(),
    );
    narrow(geometry.output_shape(), output)
}

/// The forward pass entirely in `f64`, for checks that need more than `f32`
/// (finite differences). `input` is the `(N, C, H, W)` data of `geometry`.
pub fn forward_f64(
    geometry: &Conv2dGeometry,
    input: &[f64],
    weight: &[f64],
    bias: Option<&[f64]>,
) -> Vec<f64> {
    let mut output = vec![0.0; geometry.output_shape_4d().iter().product()];
    if !output.is_empty() {
        correlate::correlate(
            &pad::pad(input, geometry),
            weight,
            bias,
            geometry,
            &mut output,
        );
    }
    output
}

/// Gradients of `Σ grad_output · layer(input)` with respect to the input, the
/// weight and the bias, on the CPU. `grad_output` has the output's shape.
pub fn backward(layer: &Conv2d, input: &Tensor, grad_output: &Tensor) -> Result<Conv2dGrads> {
    let geometry = Conv2dGeometry::new(layer.config(), input.shape())?;
    geometry.check_grad_output(grad_output.shape())?;
    let (gx, gw, gb) = backward::backward(
        &geometry,
        &widen(input.data()),
        &widen(layer.weight().data()),
        &widen(grad_output.data()),
    );
    Ok(Conv2dGrads {
        grad_input: narrow(input.shape().to_vec(), gx)?,
        grad_weight: narrow(layer.weight().shape().to_vec(), gw)?,
        grad_bias: match layer.bias() {
            Some(b) => Some(narrow(b.shape().to_vec(), gb)?),
            None => None,
        },
    })
}
