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
use super::kernels::{self, KernelSpec};
use super::loops::{loop_steps, nested_steps, slices};
use super::params::{ConvParams, SgdParams};
use super::plan::{Chunk, plan, plan_grad_input};
use super::recorder::Recorder;
use crate::config::PaddingMode;
use crate::error::Result;
use crate::geometry::{Axis, Conv2dGeometry};
use crate::layer::Conv2dGrads;
use crate::tensor::Tensor;

/// Most blocks one reduction pass adds up (its loop: the driver's limit).
const MAX_SPLITS: usize = 4096;

/// How the weight and bias gradients cut the `positions` output positions of
/// one chunk: blocks of `split_len` positions, each one invocation's loop
/// (under the driver's loop limit), summed `per_pass` blocks at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PositionSplits {
    split_len: usize,
    splits: usize,
    per_pass: usize,
}

impl PositionSplits {
    /// Enough blocks to keep the GPU busy, their partial sums never taking
    /// more memory than the output block holds (or one binding) per pass.
    fn new(positions: usize, block_len: usize, output_len: usize, max_elements: usize) -> Self {
        let block_len = block_len.max(1);
        let memory = output_len.max(block_len).min(max_elements);
        let wanted = (memory / block_len).clamp(1, positions.clamp(1, MAX_SPLITS));
        let split_len = positions.div_ceil(wanted).clamp(1, loop_steps(1, 0));
        let splits = positions.div_ceil(split_len).max(1);
        let per_pass = (max_elements / block_len).clamp(1, MAX_SPLITS).min(splits);
        Self {
            split_len,
            splits,
            per_pass,
        }
    }

    /// The passes: `(first position, end position, blocks)` each.
    fn passes(&self, positions: usize) -> Vec<(usize, usize, usize)> {
        (0..self.splits)
            .step_by(self.per_pass)
            .map(|first| {
                let blocks = self.per_pass.min(self.splits - first);
                let begin = first * self.split_len;
                let end = ((first + blocks) * self.split_len).min(positions);
                (begin, end, blocks)
            })
            .collect()
    }
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
            let out_channels = chunk.out_channels.len();
            let block_len = out_channels * row_len;
            let positions = chunk.batch.len() * geometry.height.output * geometry.width.output;
            let splits = PositionSplits::new(
                positions,
                block_len,
                chunk.output_len(geometry),
                self.max_elements(),
            );
            // Rows of these output channels were started by an earlier chunk
            // unless this is their first batch item and first input block.
            let later_items = chunk.batch.start > 0;
            let base = ConvParams::new(geometry, chunk, self.config.bias);
            for (pass, (begin, end, blocks)) in splits.passes(positions).into_iter().enumerate() {
                let params = ConvParams {
                    splits: blocks as u32,
                    split_len: splits.split_len as u32,
                    slice_begin: begin as u32,
                    slice_end: end as u32,
                    ..base
                };
                self.encode_partial_sums(
                    rec,
                    kernels::GRAD_WEIGHT,
                    params,
                    &[&input, &grad_output],
                    (block_len, chunk.out_channels.start * row_len),
                    later_items || chunk.accumulate || pass > 0,
                    &grad_weight,
                )?;
                // The bias sees each (batch, output channel) block once: with its first input block.
                if let (Some(grad_bias), false) = (&grad_bias, chunk.accumulate) {
                    self.encode_partial_sums(
                        rec,
                        kernels::GRAD_BIAS,
                        params,
                        &[&grad_output],
                        (out_channels, chunk.out_channels.start),
                        later_items || pass > 0,
                        grad_bias,
                    )?;
                }
            }
        }
        Ok(GradBuffers {
            grad_weight,
            grad_bias,
        })
    }

    /// Records one pass of a gradient summed over blocks of positions: `kernel`
    /// writes `params.splits` blocks of `len` partial sums from `sources`, then
    /// they are added in order into `result[offset..offset + len]` (onto what
    /// is there when `accumulate`).
    #[allow(clippy::too_many_arguments)]
    fn encode_partial_sums(
        &self,
        rec: &mut Recorder,
        kernel: KernelSpec,
        params: ConvParams,
        sources: &[&wgpu::Buffer],
        (len, offset): (usize, usize),
        accumulate: bool,
        result: &wgpu::Buffer,
    ) -> Result<()> {
        let partial_len = params.splits as usize * len;
        let partial_params = ConvParams {
            total: partial_len as u32,
            ..params
        };
        let partial_params = rec.uniform(kernel.name, &partial_params);
        let partials = rec.scratch("partials", partial_len);
        let mut buffers = vec![&partial_params];
        buffers.extend_from_slice(sources);
        buffers.push(&partials);
        rec.dispatch(kernel, &buffers, partial_len as u64)?;
        let reduce_params = ConvParams {
            total: len as u32,
            result_offset: offset as u32,
            accumulate: u32::from(accumulate),
            ..params
        };
        let reduce_params = rec.uniform("reduce", &reduce_params);
        rec.dispatch(
            kernels::REDUCE_SPLITS,
            &[&reduce_params, &partials, result],
            len as u64,
        )
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
        let (h, w) = (&geometry.height, &geometry.width);
        let mut grad_padded: Option<wgpu::Buffer> = None;
        for chunk in &plan.input_chunks {
            let grad_output = grad_outputs.get(
                rec,
                chunk.output_offset(geometry),
                chunk.output_len(geometry),
            );
            let base = ConvParams::new(geometry, chunk, self.config.bias);
            let padded = match grad_padded.take() {
                Some(buffer) if chunk.accumulate => buffer,
                _ => rec.scratch("grad_padded", chunk.padded_len(geometry)),
            };
            // Loops: reduction rows (output channel, kernel row), each over
            // kernel columns; later slices add onto the earlier ones, in order.
            let channels = geometry
                .out_channels_per_group()
                .min(chunk.out_channels.len());
            let rows = channels * h.kernel;
            let (row_step, col_step) = nested_steps(rows, w.kernel, 0);
            let mut first = true;
            for slice in slices(rows, row_step) {
                for inner in slices(w.kernel, col_step) {
                    let params = ConvParams {
                        total: chunk.padded_len(geometry) as u32,
                        accumulate: u32::from(chunk.accumulate || !first),
                        slice_begin: slice.start as u32,
                        slice_end: slice.end as u32,
                        inner_begin: inner.start as u32,
                        inner_end: inner.end as u32,
                        ..base
                    };
                    first = false;
                    let params = rec.uniform("grad_padded", &params);
                    rec.dispatch(
                        kernels::GRAD_PADDED,
                        &[&params, &grad_output, &self.weight, &padded],
                        chunk.padded_len(geometry) as u64,
                    )?;
                }
            }
            if chunk.completes {
                let planes = chunk.batch.len() * chunk.in_channels.len();
                let (_, window_w) = w.source_window();
                let columns_len = planes * h.padded().max(0) as usize * window_w.max(0) as usize;
                let columns = rec.scratch("grad_padded columns", columns_len);
                let input_len = chunk.input_len(geometry);
                let grad_input = rec.scratch("grad_input", input_len);
                for (kernel, from, to, len, axis) in [
                    (kernels::FOLD_COLUMNS, &padded, &columns, columns_len, w),
                    (kernels::FOLD_ROWS, &columns, &grad_input, input_len, h),
                ] {
                    let copies = copies_per_position(axis, geometry.padding_mode);
                    for (k, slice) in slices(copies, loop_steps(1, 0)).into_iter().enumerate() {
                        let params = ConvParams {
                            total: len as u32,
                            accumulate: u32::from(k > 0),
                            slice_begin: slice.start as u32,
                            slice_end: slice.end as u32,
                            ..base
                        };
                        let params = rec.uniform(kernel.name, &params);
                        rec.dispatch(kernel, &[&params, from, to], len as u64)?;
                    }
                }
                rec.copy(
                    &grad_input,
                    0,
                    readback,
                    chunk.input_offset(geometry),
                    input_len,
                );
            }
            grad_padded = Some(padded);
        }
        Ok(())
    }
}

/// Most padded positions along `axis` that copy one input position: the
/// interior one, and one per side for reflect and circular (the geometry
/// checks allow one reflection or wrap); replicate copies an edge into its
/// whole side.
fn copies_per_position(axis: &Axis, mode: PaddingMode) -> usize {
    match mode {
        PaddingMode::Zeros => 1,
        PaddingMode::Reflect | PaddingMode::Circular => 3,
        PaddingMode::Replicate => 1 + (axis.pad_before.max(0) + axis.pad_after.max(0)) as usize,
    }
}
