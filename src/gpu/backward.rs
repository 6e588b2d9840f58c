//! Gradients and the SGD step of [`GpuConv2d`], on the GPU.
//!
//! Every kernel gathers (no atomics) and sums in a fixed order, so the same
//! inputs give bit-identical gradients run to run. Tensors larger than one
//! storage binding are split as in the forward pass (see `plan.rs`): the
//! weight and bias gradients over the forward chunks, the input gradient over
//! blocks of input channels summed across blocks of output channels.

use std::collections::HashMap;

use super::buffers::{Scopes, check_buffer_size, read_mapped, staging};
use super::conv2d::GpuConv2d;
use super::kernels;
use super::params::{ConvParams, SgdParams};
use super::plan::{Chunk, plan, plan_grad_input};
use super::recorder::Recorder;
use crate::error::Result;
use crate::geometry::Conv2dGeometry;
use crate::layer::Conv2dGrads;
use crate::tensor::Tensor;

/// Blocks of output rows the weight gradient sums separately before adding them
/// up: enough to keep the GPU busy, never more extra memory than the output
/// block holds (or one binding). Returns `(splits, rows per split)`.
fn weight_splits(
    rows: usize,
    weight_len: usize,
    output_len: usize,
    max_elements: usize,
) -> (usize, usize) {
    let budget = output_len.max(weight_len).min(max_elements);
    let splits = (budget / weight_len.max(1)).clamp(1, rows.clamp(1, 4096));
    let split_rows = rows.div_ceil(splits).max(1);
    (rows.div_ceil(split_rows).max(1), split_rows)
}

/// How one backward call is cut into dispatches.
struct BackwardPlan {
    geometry: Conv2dGeometry,
    /// Chunks of the weight and bias gradients (the forward pass's chunks).
    param_chunks: Vec<Chunk>,
    /// Chunks of the input gradient.
    input_chunks: Vec<Chunk>,
}

/// Uploads slices of one host tensor, each once, however many passes bind it.
struct SliceUploads<'a> {
    label: &'static str,
    data: &'a [f32],
    uploaded: HashMap<(usize, usize), wgpu::Buffer>,
}

impl<'a> SliceUploads<'a> {
    fn new(label: &'static str, data: &'a [f32]) -> Self {
        Self {
            label,
            data,
            uploaded: HashMap::new(),
        }
    }

    fn get(&mut self, rec: &mut Recorder, offset: usize, len: usize) -> wgpu::Buffer {
        self.uploaded
            .entry((offset, len))
            .or_insert_with(|| rec.upload(self.label, &self.data[offset..offset + len]))
            .clone()
    }
}

/// The GPU buffers of the parameter gradients.
struct GradBuffers {
    grad_weight: wgpu::Buffer,
    grad_bias: Option<wgpu::Buffer>,
}

impl GpuConv2d {
    /// Gradients of `Σ grad_output · self(input)` with respect to the input, the
    /// weight and the bias (blocking). `grad_output` has the output's shape.
    ///
    /// Large tensors are split into blocks that each fit one storage binding,
    /// as in [`forward`](Self::forward); the gradients are the same bits either way.
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
        let plan = self.backward_plan(input, grad_output)?;
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
            let mut rec = Recorder::new(&self.ctx);
            let mut inputs = SliceUploads::new("input", input.data());
            let mut grad_outputs = SliceUploads::new("grad_output", grad_output.data());
            let grads = self.encode_param_grads(&mut rec, &plan, &mut inputs, &mut grad_outputs)?;
            // One read-back: grad_input, then grad_weight, then grad_bias.
            let total = input.numel() + weight_len + bias_len;
            let readback = staging(&self.ctx, total);
            self.encode_grad_input(&mut rec, &plan, &mut grad_outputs, &readback)?;
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
        let plan = self.backward_plan(input, grad_output)?;
        if grad_output.numel() == 0 {
            return Ok(());
        }
        let scopes = Scopes::push(&self.ctx);
        let mut rec = Recorder::new(&self.ctx);
        let mut inputs = SliceUploads::new("input", input.data());
        let mut grad_outputs = SliceUploads::new("grad_output", grad_output.data());
        let grads = self.encode_param_grads(&mut rec, &plan, &mut inputs, &mut grad_outputs)?;
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
            let params = rec.uniform("sgd", &params);
            rec.dispatch(kernels::SGD, &[&params, grad, value], len as u64)?;
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
    fn backward_plan(&self, input: &Tensor, grad_output: &Tensor) -> Result<BackwardPlan> {
        let geometry = Conv2dGeometry::new(&self.config, input.shape())?;
        geometry.check_grad_output(grad_output.shape())?;
        let weight_len: usize = self.config.weight_shape().iter().product();
        let bias_len = usize::from(self.config.bias) * self.config.out_channels;
        check_buffer_size(
            &self.ctx,
            &[
                ("input", input.numel()),
                ("grad_output", grad_output.numel()),
                ("gradients", input.numel() + weight_len + bias_len),
            ],
        )?;
        let max = self.max_elements();
        let chunks = |plan: fn(&Conv2dGeometry, usize) -> Result<Vec<Chunk>>| {
            if grad_output.numel() == 0 {
                Ok(Vec::new())
            } else {
                plan(&geometry, max).map_err(|e| self.ctx.name_adapter(e))
            }
        };
        Ok(BackwardPlan {
            param_chunks: chunks(plan)?,
            input_chunks: chunks(plan_grad_input)?,
            geometry,
        })
    }

    /// Elements one binding may hold.
    fn max_elements(&self) -> usize {
        (self.ctx.max_binding_bytes() / 4) as usize
    }

    /// Records the weight and bias gradients, chunk by chunk: each chunk adds
    /// its batch items' share to the rows of its output channels.
    fn encode_param_grads(
        &self,
        rec: &mut Recorder,
        plan: &BackwardPlan,
        inputs: &mut SliceUploads,
        grad_outputs: &mut SliceUploads,
    ) -> Result<GradBuffers> {
        let geometry = &plan.geometry;
        let weight_len: usize = self.config.weight_shape().iter().product();
        let row_len = weight_len / self.config.out_channels.max(1);
        let grad_weight = rec.scratch("grad_weight", weight_len);
        let grad_bias = self
            .config
            .bias
            .then(|| rec.scratch("grad_bias", self.config.out_channels));
        for chunk in &plan.param_chunks {
            let input = inputs.get(rec, chunk.input_offset(geometry), chunk.input_len(geometry));
            let grad_output = grad_outputs.get(
                rec,
                chunk.output_offset(geometry),
                chunk.output_len(geometry),
            );
            let block_len = chunk.out_channels.len() * row_len;
            let (splits, split_rows) = weight_splits(
                chunk.batch.len() * geometry.height.output,
                block_len,
                chunk.output_len(geometry),
                self.max_elements(),
            );
            let mut params = ConvParams::new(geometry, chunk, self.config.bias);
            params.splits = splits as u32;
            params.split_rows = split_rows as u32;
            params.total = (splits * block_len) as u32;
            let partial_params = rec.uniform("grad_weight", &params);
            let partials = rec.scratch("partials", splits * block_len);
            rec.dispatch(
                kernels::GRAD_WEIGHT,
                &[&partial_params, &input, &grad_output, &partials],
                (splits * block_len) as u64,
            )?;
            // Rows of these output channels were started by an earlier chunk
            // unless this is their first batch item and first input block.
            let later_items = chunk.batch.start > 0;
            params.total = block_len as u32;
            params.accumulate = u32::from(later_items || chunk.accumulate);
            let reduce_params = rec.uniform("reduce", &params);
            rec.dispatch(
                kernels::REDUCE_SPLITS,
                &[&reduce_params, &partials, &grad_weight],
                block_len as u64,
            )?;
            // The bias sees each (batch, output channel) block once: with its first input block.
            if let (Some(grad_bias), false) = (&grad_bias, chunk.accumulate) {
                params.accumulate = u32::from(later_items);
                let bias_params = rec.uniform("grad_bias", &params);
                rec.dispatch(
                    kernels::GRAD_BIAS,
                    &[&bias_params, &grad_output, grad_bias],
                    chunk.out_channels.len() as u64,
                )?;
            }
        }
        Ok(GradBuffers {
            grad_weight,
            grad_bias,
        })
    }

    /// Records the input gradient into the first elements of `readback`: per
    /// block of input channels, onto the padded input (summed over blocks of
    /// output channels), then through the padding's backward.
    fn encode_grad_input(
        &self,
        rec: &mut Recorder,
        plan: &BackwardPlan,
        grad_outputs: &mut SliceUploads,
        readback: &wgpu::Buffer,
    ) -> Result<()> {
        let geometry = &plan.geometry;
        let mut grad_padded: Option<wgpu::Buffer> = None;
        for chunk in &plan.input_chunks {
            let grad_output = grad_outputs.get(
                rec,
                chunk.output_offset(geometry),
                chunk.output_len(geometry),
            );
            let mut params = ConvParams::new(geometry, chunk, self.config.bias);
            params.total = chunk.padded_len(geometry) as u32;
            let padded = match grad_padded.take() {
                Some(buffer) if chunk.accumulate => buffer,
                _ => rec.scratch("grad_padded", chunk.padded_len(geometry)),
            };
            let padded_params = rec.uniform("grad_padded", &params);
            rec.dispatch(
                kernels::GRAD_PADDED,
                &[&padded_params, &grad_output, &self.weight, &padded],
                chunk.padded_len(geometry) as u64,
            )?;
            if chunk.completes {
                let len = chunk.input_len(geometry);
                params.total = len as u32;
                let unpad_params = rec.uniform("pad_backward", &params);
                let grad_input = rec.scratch("grad_input", len);
                rec.dispatch(
                    kernels::PAD_BACKWARD,
                    &[&unpad_params, &padded, &grad_input],
                    len as u64,
                )?;
                rec.copy(&grad_input, 0, readback, chunk.input_offset(geometry), len);
            }
            grad_padded = Some(padded);
        }
        Ok(())
    }
}
