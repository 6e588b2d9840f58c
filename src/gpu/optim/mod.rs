//! Optimisers on the GPU, apart from the operator: `torch.optim.SGD` and
//! `torch.optim.Adam`/`AdamW` with PyTorch's update rules, their state
//! (momentum buffers, moments, step counts) kept on the GPU, per parameter of
//! each layer they step.

mod adam;
mod sgd;

pub use adam::{Adam, AdamConfig};
pub(crate) use sgd::encode_plain_sgd;
pub use sgd::{Sgd, SgdConfig};

use crate::error::{Conv2dError, Result};
use crate::gpu::operator::{GpuConv2d, GpuGrads};
use crate::gpu::tensor::GpuTensor;

/// One parameter of a layer: its identity (the layer's, and 0 for the weight,
/// 1 for the bias), its buffer, and the gradient for it.
pub(crate) struct Parameter<'a> {
    pub key: (u64, u8),
    pub value: &'a wgpu::Buffer,
    pub len: usize,
    pub grad: &'a GpuTensor,
}

/// The parameters of `layer` that `grads` has gradients for (PyTorch skips a
/// parameter whose gradient is `None`), checked against the layer.
pub(crate) fn parameters<'a>(
    layer: &'a GpuConv2d,
    grads: &'a GpuGrads,
) -> Result<Vec<Parameter<'a>>> {
    let (id, [(weight, weight_len), (bias, bias_len)]) = layer.parameter_buffers();
    let mut found = Vec::new();
    for (index, value, len, grad, what) in [
        (0, weight, weight_len, &grads.grad_weight, "grad_weight"),
        (1, bias, bias_len, &grads.grad_bias, "grad_bias"),
    ] {
        let Some(grad) = grad else { continue };
        if !grad.ctx.same_device(layer.context()) {
            return Err(Conv2dError::ContextMismatch {
                tensor: grad.ctx.adapter_info().name.clone(),
                layer: layer.context().adapter_info().name.clone(),
            });
        }
        if grad.numel() != len {
            return Err(Conv2dError::InvalidOptimizer(format!(
                "{what} has {} elements, the layer's parameter {len}",
                grad.numel()
            )));
        }
        found.push(Parameter {
            key: (id, index),
            value,
            len,
            grad,
        });
    }
    Ok(found)
}
