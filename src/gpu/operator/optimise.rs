//! Stepping a layer's parameters with an optimiser.

use super::{GpuConv2d, GpuGrads};
use crate::error::{Conv2dError, Result};
use crate::gpu::optim::{Adam, Parameter, Sgd};

impl GpuConv2d {
    /// The parameters that `grads` has gradients for (PyTorch skips a
    /// parameter whose gradient is `None`), checked against the layer.
    fn parameters_for<'a>(&'a self, grads: &'a GpuGrads) -> Result<Vec<Parameter<'a>>> {
        let (id, [(weight, weight_len), (bias, bias_len)]) = self.parameter_buffers();
        let mut found = Vec::new();
        for (index, value, len, grad, what) in [
            (0, weight, weight_len, &grads.grad_weight, "grad_weight"),
            (1, bias, bias_len, &grads.grad_bias, "grad_bias"),
        ] {
            let Some(grad) = grad else { continue };
            if !grad.ctx.same_device(&self.ctx) {
                return Err(Conv2dError::ContextMismatch {
                    tensor: grad.ctx.adapter_info().name.clone(),
                    layer: self.ctx.adapter_info().name.clone(),
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
                grad: &grad.buffer,
            });
        }
        Ok(found)
    }
}

impl Sgd {
    /// One step on `layer`'s weight and bias with `grads` (parameters without
    /// a gradient are left alone, as in PyTorch), on the GPU, one submission.
    pub fn step(&mut self, layer: &mut GpuConv2d, grads: &GpuGrads) -> Result<()> {
        self.update(&layer.ctx, &layer.parameters_for(grads)?)?;
        layer.parameters_changed();
        Ok(())
    }
}

impl Adam {
    /// One step on `layer`'s weight and bias with `grads` (parameters without
    /// a gradient are left alone, as in PyTorch), on the GPU, one submission.
    pub fn step(&mut self, layer: &mut GpuConv2d, grads: &GpuGrads) -> Result<()> {
        self.update(&layer.ctx, &layer.parameters_for(grads)?)?;
        layer.parameters_changed();
        Ok(())
    }
}
