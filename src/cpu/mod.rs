//! The CPU reference: plain, obviously right, and independent of the GPU code.
//!
//! It materialises the padded input for the padding mode ([`pad`]), then
//! cross-correlates it with the weight ([`correlate`]), accumulating in `f64`.
//! It is the truth the GPU kernels are tested against, and a usable path on
//! machines without a GPU.

pub mod correlate;
pub mod pad;

use crate::error::Result;
use crate::geometry::Conv2dGeometry;
use crate::layer::Conv2d;
use crate::tensor::Tensor;

/// `layer(input)` on the CPU. The input is `(N, C, H, W)` or unbatched `(C, H, W)`;
/// the output has the same rank.
pub fn forward(layer: &Conv2d, input: &Tensor) -> Result<Tensor> {
    let geometry = Conv2dGeometry::new(layer.config(), input.shape())?;
    let mut output = Tensor::zeros(geometry.output_shape())?;
    if output.numel() == 0 {
        return Ok(output);
    }
    let padded = pad::pad(input.data(), &geometry);
    correlate::correlate(
        &padded,
        layer.weight().data(),
        layer.bias().map(Tensor::data),
        &geometry,
        output.data_mut(),
    );
    Ok(output)
}
