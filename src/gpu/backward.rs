//! Gradients and the SGD step of [`GpuConv2d`], on the GPU.
//!
//! Every kernel gathers (no atomics) and sums in a fixed order, so the same
//! inputs give bit-identical gradients run to run.

use super::buffers::{Scopes, check_fits, output, read_mapped, staging, uniform, upload};
use super::conv2d::GpuConv2d;
use super::kernels::{self, dispatch};
use super::params::{ConvParams, SgdParams};
use super::plan::Chunk;
use crate::error::Result;
use crate::geometry::Conv2dGeometry;
use crate::layer::Conv2dGrads;
use crate::tensor::Tensor;

/// Blocks of output rows the weight gradient sums separately before adding them
/// up: enough to keep the GPU busy, never more extra memory than the output holds.
fn weight_splits(geometry: &Conv2dGeometry, max_elements: usize) -> (usize, usize) {
    let rows = geometry.batch * geometry.height.output;
    let weight_len = geometry.out_channels
        * geometry.in_channels_per_group()
        * geometry.height.kernel
        * geometry.width.kernel;
    let output_len: usize = geometry.output_shape_4d().iter().product();
    let budget = output_len.max(weight_len).min(max_elements);
    let splits = (budget / weight_len.max(1)).clamp(1, rows.clamp(1, 4096));
    let split_rows = rows.div_ceil(splits).max(1);
    (rows.div_ceil(split_rows).max(1), split_rows)
}

/// The GPU buffers of one backward pass.
struct GradBuffers {
    grad_weight: wgpu::Buffer,
    grad_bias: Option<wgpu::Buffer>,
}

impl GpuConv2d {
    /// Gradients of `Σ grad_output · self(input)` with respect to the input, the
    /// weight and the bias (blocking). `grad_output` has the output's shape.
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
        let geometry = self.checked_geometry(input, grad_output)?;
        let weight_len: usize = self.config.weight_shape().iter().product();
        let bias_len = if self.config.bias {
            self.config.out_channels
        } else {
            0
        };
        let zeros = |n: usize| vec![0.0; n];
        let (gx, gw, gb) = if grad_output.numel() == 0 {
            // N = 0 or C_in = 0: PyTorch's gradients are all zeros.
            (zeros(input.numel()), zeros(weight_len), zeros(bias_len))
        } else {
            let scopes = Scopes::push(&self.ctx);
            let mut encoder = self
                .ctx
                .device()
                .create_command_encoder(&Default::default());
            let input_buffer = upload(&self.ctx, "input", input.data());
            let grad_output_buffer = upload(&self.ctx, "grad_output", grad_output.data());
            let grads = self.encode_param_grads(
                &mut encoder,
                &geometry,
                &input_buffer,
                &grad_output_buffer,
            )?;
            let grad_input =
                self.encode_grad_input(&mut encoder, &geometry, &grad_output_buffer)?;
            // One read-back: grad_input, then grad_weight, then grad_bias.
            let total = input.numel() + weight_len + bias_len;
            let readback = staging(&self.ctx, total);
            let mut at = 0u64;
            for (buffer, len) in [
                (Some(&grad_input), input.numel()),
                (Some(&grads.grad_weight), weight_len),
                (grads.grad_bias.as_ref(), bias_len),
            ] {
                if let Some(buffer) = buffer {
                    encoder.copy_buffer_to_buffer(buffer, 0, &readback, at, len as u64 * 4);
                }
                at += len as u64 * 4;
            }
            self.ctx.queue().submit([encoder.finish()]);
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
        let geometry = self.checked_geometry(input, grad_output)?;
        if grad_output.numel() == 0 {
            return Ok(());
        }
        let scopes = Scopes::push(&self.ctx);
        let mut encoder = self
            .ctx
            .device()
            .create_command_encoder(&Default::default());
        let input_buffer = upload(&self.ctx, "input", input.data());
        let grad_output_buffer = upload(&self.ctx, "grad_output", grad_output.data());
        let grads =
            self.encode_param_grads(&mut encoder, &geometry, &input_buffer, &grad_output_buffer)?;
        let weight_len: usize = self.config.weight_shape().iter().product();
        let mut updates = vec![(&grads.grad_weight, &self.weight, weight_len)];
        if let Some(grad_bias) = &grads.grad_bias {
            updates.push((grad_bias, &self.bias, self.config.out_channels));
        }
        for (grad, value, len) in updates {
            let params = SgdParams {
                lr,
                len: len as u32,
                _pad0: 0,
                _pad1: 0,
            };
            let params = uniform(&self.ctx, "sgd", &params);
            dispatch(
                &self.ctx,
                &mut encoder,
                kernels::SGD,
                &[&params, grad, value],
                len as u64,
            )?;
        }
        self.ctx.queue().submit([encoder.finish()]);
        scopes.pop().await
    }

    /// The geometry of `input`, with `grad_output` checked against its output and
    /// every buffer of the backward pass against the binding limit.
    fn checked_geometry(&self, input: &Tensor, grad_output: &Tensor) -> Result<Conv2dGeometry> {
        let geometry = Conv2dGeometry::new(&self.config, input.shape())?;
        geometry.check_grad_output(grad_output.shape())?;
        let padded = geometry.batch
            * geometry.in_channels
            * geometry.height.padded().max(0) as usize
            * geometry.width.padded().max(0) as usize;
        let (splits, _) = weight_splits(&geometry, (self.ctx.max_binding_bytes() / 4) as usize);
        let weight_len: usize = self.config.weight_shape().iter().product();
        check_fits(
            &self.ctx,
            &[
                ("input", input.numel()),
                ("grad_output", grad_output.numel()),
                ("padded input gradient", padded),
                ("weight-gradient partial sums", splits * weight_len),
            ],
        )?;
        Ok(geometry)
    }

    /// Records the weight and bias gradients.
    fn encode_param_grads(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        geometry: &Conv2dGeometry,
        input: &wgpu::Buffer,
        grad_output: &wgpu::Buffer,
    ) -> Result<GradBuffers> {
        let weight_len: usize = self.config.weight_shape().iter().product();
        let (splits, split_rows) =
            weight_splits(geometry, (self.ctx.max_binding_bytes() / 4) as usize);
        let mut params = ConvParams::new(geometry, &Chunk::whole(geometry), self.config.bias);
        params.splits = splits as u32;
        params.split_rows = split_rows as u32;
        params.total = (splits * weight_len) as u32;
        let partial_params = uniform(&self.ctx, "grad_weight", &params);
        let partials = output(&self.ctx, "partials", splits * weight_len);
        dispatch(
            &self.ctx,
            encoder,
            kernels::GRAD_WEIGHT,
            &[&partial_params, input, grad_output, &partials],
            (splits * weight_len) as u64,
        )?;
        params.total = weight_len as u32;
        let reduce_params = uniform(&self.ctx, "reduce", &params);
        let grad_weight = output(&self.ctx, "grad_weight", weight_len);
        dispatch(
            &self.ctx,
            encoder,
            kernels::REDUCE_SPLITS,
            &[&reduce_params, &partials, &grad_weight],
            weight_len as u64,
        )?;
        let grad_bias = if self.config.bias {
            let grad_bias = output(&self.ctx, "grad_bias", self.config.out_channels);
            dispatch(
                &self.ctx,
                encoder,
                kernels::GRAD_BIAS,
                &[&reduce_params, grad_output, &grad_bias],
                self.config.out_channels as u64,
            )?;
            Some(grad_bias)
        } else {
            None
        };
        Ok(GradBuffers {
            grad_weight,
            grad_bias,
        })
    }

    /// Records the input gradient: onto the padded input, then through the padding's backward.
    fn encode_grad_input(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        geometry: &Conv2dGeometry,
        grad_output: &wgpu::Buffer,
    ) -> Result<wgpu::Buffer> {
        let mut params = ConvParams::new(geometry, &Chunk::whole(geometry), self.config.bias);
        let padded = geometry.batch
            * geometry.in_channels
            * params.padded_h as usize
            * params.padded_w as usize;
        params.total = padded as u32;
        let padded_params = uniform(&self.ctx, "grad_padded", &params);
        let grad_padded = output(&self.ctx, "grad_padded", padded);
        dispatch(
            &self.ctx,
            encoder,
            kernels::GRAD_PADDED,
            &[&padded_params, grad_output, &self.weight, &grad_padded],
            padded as u64,
        )?;
        let [n, c, h, w] = geometry.input_shape_4d();
        params.total = (n * c * h * w) as u32;
        let unpad_params = uniform(&self.ctx, "pad_backward", &params);
        let grad_input = output(&self.ctx, "grad_input", n * c * h * w);
        dispatch(
            &self.ctx,
            encoder,
            kernels::PAD_BACKWARD,
            &[&unpad_params, &grad_padded, &grad_input],
            params.total as u64,
        )?;
        Ok(grad_input)
    }
}
