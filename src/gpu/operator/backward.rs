//! The gradients of [`GpuConv2d`] and its SGD step, on the GPU.

use super::GpuConv2d;
use crate::error::Result;
use crate::geometry::Conv2dGeometry;
use crate::gpu::conv::backward::BackwardPass;
use crate::gpu::optim::encode_sgd;
use crate::gpu::runtime::buffers::{Scopes, read_mapped, staging};
use crate::gpu::runtime::{HostSlices, Recorder};
use crate::layer::Conv2dGrads;
use crate::tensor::{Tensor, try_filled};

impl GpuConv2d {
    /// Gradients of `Σ grad_output · self(input)` with respect to the input, the
    /// weight and the bias (blocking). `grad_output` has the output's shape.
    ///
    /// With stride 1 the input gradient runs on the forward kernels (a
    /// convolution of `grad_output` with the flipped, channel-swapped weight);
    /// with other strides it is gathered directly. Large tensors are split into
    /// blocks that each fit one storage binding, as in [`forward`](Self::forward).
    /// Deterministic: the same inputs on the same context give the same bits.
    pub fn backward(&self, input: &Tensor, grad_output: &Tensor) -> Result<Conv2dGrads> {
        pollster::block_on(self.backward_async(input, grad_output))
    }

    /// Gradients of `Σ grad_output · self(input)`; see [`backward`](Self::backward).
    pub async fn backward_async(
        &self,
        input: &Tensor,
        grad_output: &Tensor,
    ) -> Result<Conv2dGrads> {
        self.ctx.check_alive()?;
        let pass = self.backward_pass(input, grad_output)?;
        let weight_len = pass.geometry.weight_len();
        let bias_len = usize::from(self.config.bias) * self.config.out_channels;
        let (gx, gw, gb) = if grad_output.numel() == 0 {
            // N = 0 or C_in = 0: PyTorch's gradients are all zeros.
            (
                try_filled("grad_input", input.numel(), 0.0)?,
                try_filled("grad_weight", weight_len, 0.0)?,
                try_filled("grad_bias", bias_len, 0.0)?,
            )
        } else {
            let scopes = Scopes::push(&self.ctx);
            let mut rec = Recorder::new(&self.ctx);
            let call = self.call_params(&mut rec, &pass.geometry)?;
            let mut inputs = HostSlices::new("input", input.data());
            let mut grad_outputs = HostSlices::new("grad_output", grad_output.data());
            let grads = pass.encode_param_grads(
                &mut rec,
                &call,
                &mut inputs,
                &mut grad_outputs,
                self.config.bias,
            )?;
            // One read-back: grad_input, then grad_weight, then grad_bias.
            let total = input.numel() + weight_len + bias_len;
            let readback = staging(&self.ctx, total);
            pass.encode_grad_input(&mut rec, &call, &self.weight, &mut grad_outputs, &readback)?;
            rec.copy(&grads.grad_weight, 0, &readback, input.numel(), weight_len);
            if let Some(grad_bias) = &grads.grad_bias {
                rec.copy(
                    grad_bias,
                    0,
                    &readback,
                    input.numel() + weight_len,
                    bias_len,
                );
            }
            rec.submit();
            scopes.pop().await?;
            let mut data = read_mapped(&self.ctx, &readback, total).await?;
            let gb = data.split_off(input.numel() + weight_len);
            let gw = data.split_off(input.numel());
            (data, gw, gb)
        };
        Ok(Conv2dGrads {
            grad_input: Tensor::new(input.shape(), gx)?,
            grad_weight: Tensor::new(self.config.weight_shape(), gw)?,
            grad_bias: self
                .config
                .bias
                .then(|| Tensor::new([bias_len], gb))
                .transpose()?,
        })
    }

    /// One step of plain SGD on the GPU: `w -= lr · ∂L/∂w` (and the bias) with
    /// `L = Σ grad_output · self(input)`. Nothing is read back; use
    /// [`to_layer`](Self::to_layer) to fetch the trained weights.
    pub fn sgd_step(&mut self, input: &Tensor, grad_output: &Tensor, lr: f32) -> Result<()> {
        pollster::block_on(self.sgd_step_async(input, grad_output, lr))
    }

    /// One step of plain SGD on the GPU; see [`sgd_step`](Self::sgd_step).
    pub async fn sgd_step_async(
        &mut self,
        input: &Tensor,
        grad_output: &Tensor,
        lr: f32,
    ) -> Result<()> {
        self.ctx.check_alive()?;
        let pass = self.backward_pass(input, grad_output)?;
        if grad_output.numel() == 0 {
            return Ok(());
        }
        let scopes = Scopes::push(&self.ctx);
        let mut rec = Recorder::new(&self.ctx);
        let call = self.call_params(&mut rec, &pass.geometry)?;
        let mut inputs = HostSlices::new("input", input.data());
        let mut grad_outputs = HostSlices::new("grad_output", grad_output.data());
        let grads = pass.encode_param_grads(
            &mut rec,
            &call,
            &mut inputs,
            &mut grad_outputs,
            self.config.bias,
        )?;
        encode_sgd(
            &mut rec,
            &grads.grad_weight,
            &self.weight,
            pass.geometry.weight_len(),
            lr,
        )?;
        if let Some(grad_bias) = &grads.grad_bias {
            encode_sgd(
                &mut rec,
                grad_bias,
                &self.bias,
                self.config.out_channels,
                lr,
            )?;
        }
        rec.submit();
        // The blocked kernel's packed copy is stale now.
        *self
            .packed_weight
            .get_mut()
            .unwrap_or_else(|e| e.into_inner()) = None;
        scopes.pop().await
    }

    /// Checks `grad_output` against the output of `input` and cuts the call into
    /// chunks, or says which tensor is too large, before any GPU work.
    fn backward_pass(&self, input: &Tensor, grad_output: &Tensor) -> Result<BackwardPass> {
        let geometry = Conv2dGeometry::new(&self.config, input.shape())?;
        geometry.check_grad_output(grad_output.shape())?;
        let bias_len = usize::from(self.config.bias) * self.config.out_channels;
        let gradients = input.numel() + geometry.weight_len() + bias_len;
        let kernels = self
            .backward_algorithm
            .kernels(&geometry, self.device_type())?;
        BackwardPass::new(&self.ctx, geometry, gradients, kernels)
    }
}
