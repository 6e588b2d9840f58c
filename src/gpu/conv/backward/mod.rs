//! The gradient passes: [`grad_input`], [`grad_weight`] and [`grad_bias`],
//! with the fixed-order sums over positions they share ([`reduce`]).
//!
//! Every kernel gathers (no atomics) and sums in a fixed order, so the same
//! inputs give bit-identical gradients run to run. Tensors larger than one
//! storage binding are split as in the forward pass (see `conv/plan.rs`): the
//! weight and bias gradients over the forward's chunks, the input gradient
//! over blocks of input channels summed across blocks of output channels.

pub(crate) mod grad_bias;
pub(crate) mod grad_input;
pub(crate) mod grad_weight;
pub(crate) mod reduce;

use grad_input::Transposed;
use grad_weight::WeightKernel;
use reduce::ChunkBuffers;

use super::forward::{ForwardBuffers, ForwardKernel, ForwardPass, PaddedInput};
use super::params::ConvParams;
use super::plan::{Chunk, plan_grad_input, plan_with_copies};
use crate::dtype::DType;
use crate::error::Result;
use crate::geometry::Conv2dGeometry;
use crate::gpu::runtime::buffers::check_buffer_size;
use crate::gpu::runtime::{Blocks, GpuContext, Recorder};

/// One checked backward call, cut into dispatches before any GPU work.
#[derive(Debug)]
pub(crate) struct BackwardPass {
    pub geometry: Conv2dGeometry,
    /// Chunks of the weight and bias gradients (the forward pass's chunks).
    param_chunks: Vec<Chunk>,
    /// Chunks of the input gradient.
    input_chunks: Vec<Chunk>,
    /// The transposed convolution and its phases' forward passes (`None` for
    /// a phase no tap reaches), when the input gradient runs on the forward
    /// kernels.
    transposed: Option<(Transposed, Vec<Option<ForwardPass>>)>,
    /// The weight gradient's kernel (the blocked one only where its copies fit).
    weight: WeightKernel,
    /// Elements one binding may hold.
    max_elements: usize,
    /// The tensors' dtype: for a half one, the padding's backward rounds as
    /// PyTorch's does.
    dtype: DType,
}

/// The kernels a backward call runs, resolved from a request
/// ([`BackwardAlgorithm::kernels`](super::select::BackwardAlgorithm::kernels)).
#[derive(Debug, Clone)]
pub(crate) struct BackwardKernels {
    /// The transposed convolution and its forward kernel, for the input
    /// gradient; `None`: the direct gather.
    pub input: Option<(Transposed, Vec<Option<ForwardKernel>>)>,
    /// The weight gradient's kernel.
    pub weight: WeightKernel,
    /// Whether the blocked kernels were asked for: then what keeps them from
    /// running (a tensor too large for their copies) is an error, not a
    /// quiet fall back to the direct kernels.
    pub forced: bool,
}

impl BackwardKernels {
    /// Kernels that compute what these do and are much quicker to build,
    /// for first calls while these are built ahead: each phase's
    /// [`ForwardKernel::quicker_to_build`] and the weight gradient's
    /// [`WeightVariant::quick`](grad_weight::blocked::WeightVariant::quick),
    /// read as `dtype` values are ([`ForwardKernel::for_values_of`]).
    /// `None` where none is quicker.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn quicker_to_build(&self, geometry: &Conv2dGeometry, dtype: DType) -> Option<Self> {
        let mut quick = self.clone();
        let mut quicker = false;
        if let Some((transposed, phases)) = quick.input.as_mut() {
            for (phase, kernel) in transposed.phases.iter().zip(phases.iter_mut()) {
                if let (Some(g), Some(k)) = (&phase.geometry, kernel.as_mut())
                    && let Some(q) = k.quicker_to_build(g)
                {
                    *k = q.for_values_of(dtype);
                    quicker = true;
                }
            }
        }
        if let WeightKernel::Blocked(variant) = quick.weight
            && let Some(q) = grad_weight::blocked::WeightVariant::quick(geometry)
            && q.spec().variant != variant.spec().variant
        {
            quick.weight = WeightKernel::Blocked(q);
            quicker = true;
        }
        quicker.then_some(quick)
    }
}

impl BackwardPass {
    /// Checks that the tensors fit the device (the gradients are read back in
    /// one buffer of `gradients` elements) and cuts the call into chunks.
    pub(crate) fn new(
        ctx: &GpuContext,
        geometry: Conv2dGeometry,
        gradients: usize,
        kernels: BackwardKernels,
        dtype: DType,
    ) -> Result<Self> {
        let input = crate::tensor::checked_numel(&geometry.input_shape_4d()).unwrap_or(usize::MAX);
        let output =
            crate::tensor::checked_numel(&geometry.output_shape_4d()).unwrap_or(usize::MAX);
        check_buffer_size(
            ctx,
            &[
                ("input", input),
                ("grad_output", output),
                ("gradients", gradients),
            ],
        )?;
        let max_elements = (ctx.max_binding_bytes() / 4) as usize;
        // The blocked kernels where they fit the device; else the direct ones,
        // unless the blocked ones were asked for.
        let fits = |result: Result<()>| -> Result<bool> {
            match result {
                Ok(()) => Ok(true),
                Err(e) if kernels.forced => Err(ctx.name_adapter(e)),
                Err(_) => Ok(false),
            }
        };
        let mut transposed = None;
        if let (Some((t, kernels)), true) = (kernels.input, output > 0) {
            match Self::phase_passes(ctx, &geometry, &t, &kernels, max_elements) {
                Ok(passes) => transposed = Some((t, passes)),
                Err(e) => {
                    fits(Err(e))?;
                }
            }
        }
        // The weight gradient's chunks also hold the blocked kernel's copies.
        let mut weight = kernels.weight;
        if let WeightKernel::Blocked(v) = weight {
            let (input_copy, output_copy) = v.copy_planes(&geometry);
            let planned = if output == 0 {
                Ok(())
            } else {
                plan_with_copies(&geometry, max_elements, input_copy, output_copy).map(|_| ())
            };
            if !fits(planned)? {
                weight = WeightKernel::Direct;
            }
        }
        let (input_copy, output_copy) = match weight {
            WeightKernel::Blocked(v) => v.copy_planes(&geometry),
            WeightKernel::Direct | WeightKernel::Gemm => (
                geometry.height.input * geometry.width.input,
                geometry.height.output * geometry.width.output,
            ),
        };
        let param_plan =
            |g: &Conv2dGeometry, max: usize| plan_with_copies(g, max, input_copy, output_copy);
        let chunks = |plan: &dyn Fn(&Conv2dGeometry, usize) -> Result<Vec<Chunk>>| {
            if output == 0 {
                Ok(Vec::new())
            } else {
                plan(&geometry, max_elements).map_err(|e| ctx.name_adapter(e))
            }
        };
        Ok(Self {
            param_chunks: chunks(&param_plan)?,
            input_chunks: chunks(&plan_grad_input)?,
            transposed,
            weight,
            geometry,
            max_elements,
            dtype,
        })
    }

    /// The forward passes of the transposed convolution's phases, checked
    /// against the device: several phases also need the whole grid in one
    /// binding, to place their outputs.
    fn phase_passes(
        ctx: &GpuContext,
        geometry: &Conv2dGeometry,
        transposed: &Transposed,
        kernels: &[Option<ForwardKernel>],
        max_elements: usize,
    ) -> Result<Vec<Option<ForwardPass>>> {
        let grid = geometry.batch * geometry.in_channels * transposed.grid[0] * transposed.grid[1];
        if transposed.phases.len() > 1 && grid > max_elements {
            return Err(ctx.name_adapter(crate::error::Conv2dError::TensorTooLarge {
                what: "the input gradient's grid (its phases are placed into one binding)",
                bytes: grid as u64 * 4,
                limit: max_elements as u64 * 4,
                adapter: String::new(),
            }));
        }
        transposed
            .phases
            .iter()
            .zip(kernels)
            .map(|(phase, kernel)| match (phase.geometry, kernel) {
                (Some(g), Some(kernel)) => ForwardPass::new(ctx, g, *kernel).map(Some),
                _ => Ok(None),
            })
            .collect()
    }

    /// Records the weight and bias gradients into `grad_weight` and
    /// `grad_bias` (each only where given), chunk by chunk: each chunk adds its
    /// batch items' share to the rows of its output channels.
    pub(crate) fn encode_param_grads(
        &self,
        rec: &mut Recorder,
        call: &wgpu::Buffer,
        inputs: &mut Blocks,
        grad_outputs: &mut Blocks,
        grad_weight: Option<&wgpu::Buffer>,
        grad_bias: Option<&wgpu::Buffer>,
    ) -> Result<()> {
        let geometry = &self.geometry;
        for chunk in &self.param_chunks {
            let grad_output = grad_outputs.get(
                rec,
                chunk.output_offset(geometry),
                chunk.output_len(geometry),
            );
            // The input is read only for the weight gradient.
            let input = match grad_weight {
                Some(_) => inputs.get(rec, chunk.input_offset(geometry), chunk.input_len(geometry)),
                None => grad_output.clone(),
            };
            let buffers = ChunkBuffers {
                call,
                input: &input,
                grad_output: &grad_output,
            };
            if let Some(grad_weight) = grad_weight {
                match self.weight {
                    WeightKernel::Blocked(variant)
                        if variant.partials_per_block(geometry, chunk) <= self.max_elements =>
                    {
                        grad_weight::blocked::encode_chunk(
                            rec,
                            geometry,
                            chunk,
                            variant,
                            &buffers,
                            self.max_elements,
                            grad_weight,
                        )?
                    }
                    kernel => {
                        // The GEMM, or the direct kernel (also for a chunk
                        // too large for the blocked kernel's partial sums).
                        let encode = if kernel == WeightKernel::Gemm {
                            grad_weight::gemm::encode_chunk
                        } else {
                            grad_weight::encode_chunk
                        };
                        encode(
                            rec,
                            geometry,
                            chunk,
                            &buffers,
                            self.max_elements,
                            grad_weight,
                        )?
                    }
                }
            }
            // The bias sees each (batch, output channel) block once: with its first input block.
            if let (Some(grad_bias), false) = (grad_bias, chunk.accumulate) {
                grad_bias::encode_chunk(
                    rec,
                    geometry,
                    chunk,
                    &buffers,
                    self.max_elements,
                    grad_bias,
                )?;
            }
        }
        Ok(())
    }

    /// Records the input gradient into `destination` (from element 0): the
    /// gradient of the padded input (on the forward kernels, or gathered per
    /// block of input channels summed over blocks of output channels), then the
    /// padding's backward per block of input channels.
    pub(crate) fn encode_grad_input(
        &self,
        rec: &mut Recorder,
        call: &wgpu::Buffer,
        weight: &wgpu::Buffer,
        grad_outputs: &mut Blocks,
        destination: &wgpu::Buffer,
    ) -> Result<()> {
        let geometry = &self.geometry;
        if let Some((transposed, passes)) = &self.transposed {
            let output_len = geometry.output_shape_4d().iter().product();
            let grad_output = grad_outputs.get(rec, 0, output_len);
            let grid =
                self.encode_transposed(rec, call, weight, transposed, passes, &grad_output)?;
            if transposed.gives_input {
                rec.copy(
                    &grid,
                    0,
                    destination,
                    0,
                    geometry.input_shape_4d().iter().product(),
                );
                return Ok(());
            }
            let whole = matches!(self.input_chunks.as_slice(), [_]);
            for chunk in self.input_chunks.iter().filter(|c| c.completes) {
                let padded = if whole {
                    grid.clone()
                } else {
                    let len = chunk.padded_len(geometry);
                    let block = rec.scratch("grad_padded block", len);
                    let at = (chunk.batch.start * geometry.in_channels + chunk.in_channels.start)
                        * geometry.padded_plane();
                    rec.copy(&grid, at, &block, 0, len);
                    block
                };
                self.encode_fold_block(rec, call, chunk, &padded, destination)?;
            }
            return Ok(());
        }
        let mut grad_padded: Option<wgpu::Buffer> = None;
        for chunk in &self.input_chunks {
            let grad_output = grad_outputs.get(
                rec,
                chunk.output_offset(geometry),
                chunk.output_len(geometry),
            );
            let padded = match grad_padded.take() {
                Some(buffer) if chunk.accumulate => buffer,
                _ => rec.scratch("grad_padded", chunk.padded_len(geometry)),
            };
            grad_input::encode_chunk(rec, geometry, chunk, call, [&grad_output, weight], &padded)?;
            if chunk.completes {
                self.encode_fold_block(rec, call, chunk, &padded, destination)?;
            }
            grad_padded = Some(padded);
        }
        Ok(())
    }

    /// Records the transposed convolution of `grad_output` into a new grid
    /// (the input gradient, or the gradient of the padded input): per phase,
    /// its taps of the weight transposed (and packed, for the blocked kernel),
    /// its forward pass, and its output placed into its positions of the grid
    /// (with one phase, the pass writes the grid itself).
    fn encode_transposed(
        &self,
        rec: &mut Recorder,
        call: &wgpu::Buffer,
        weight: &wgpu::Buffer,
        transposed: &Transposed,
        passes: &[Option<ForwardPass>],
        grad_output: &wgpu::Buffer,
    ) -> Result<wgpu::Buffer> {
        let planes = self.geometry.batch * self.geometry.in_channels;
        let grid = rec.scratch(
            "input gradient grid",
            planes * transposed.grid[0] * transposed.grid[1],
        );
        let single = transposed.phases.len() == 1;
        // The phases pad grad_output alike: one copy for all, where they can share it.
        let shared = match transposed
            .phases
            .iter()
            .zip(passes)
            .find_map(|(_, p)| p.as_ref())
        {
            Some(first) => {
                let first_call =
                    rec.uniform("transposed call", &ConvParams::new(&first.geometry, false)?);
                ForwardPass::encode_shared_padding(
                    rec,
                    passes.iter().flatten(),
                    &first_call,
                    grad_output,
                )?
            }
            None => None,
        };
        for (phase, pass) in transposed.phases.iter().zip(passes) {
            let Some(pass) = pass else {
                grad_input::encode_scatter(rec, planes, transposed.grid, phase, None, &grid)?;
                continue;
            };
            let phase_call =
                rec.uniform("transposed call", &ConvParams::new(&pass.geometry, false)?);
            // The phase's taps of the weight, transposed (flipped, channels
            // swapped) as that convolution's weight.
            let transposed_copy = |rec: &mut Recorder| -> Result<wgpu::Buffer> {
                let flipped = rec.scratch("transposed weight", pass.geometry.weight_len());
                grad_input::encode_transpose_weight(
                    rec,
                    &self.geometry,
                    call,
                    phase,
                    weight,
                    &flipped,
                )?;
                Ok(flipped)
            };
            let phase_weight = match pass.kernel.packed_weight_len(&pass.geometry) {
                Some(len) => {
                    let packed = rec.scratch("packed transposed weight", len);
                    // Packed straight from the forward weight where the
                    // phase takes every tap and the kernel can; otherwise
                    // from a transposed copy.
                    let direct = phase.takes_every_tap(&self.geometry)
                        && pass.kernel.encode_pack(
                            rec,
                            &pass.geometry,
                            &phase_call,
                            (weight, true),
                            &packed,
                        )?;
                    if !direct {
                        let flipped = transposed_copy(rec)?;
                        pass.kernel.encode_pack(
                            rec,
                            &pass.geometry,
                            &phase_call,
                            (&flipped, false),
                            &packed,
                        )?;
                    }
                    packed
                }
                None => transposed_copy(rec)?,
            };
            let output = if single {
                grid.clone()
            } else {
                rec.scratch("phase output", pass.elements)
            };
            pass.encode(
                rec,
                &ForwardBuffers {
                    call: &phase_call,
                    input: grad_output,
                    padded: shared.as_ref().map(|(buffer, row_len)| PaddedInput {
                        buffer,
                        row_len: *row_len,
                    }),
                    weight: &phase_weight,
                    // No bias: any buffer fills the binding.
                    bias: weight,
                    output: &output,
                },
            )?;
            if !single {
                grad_input::encode_scatter(
                    rec,
                    planes,
                    transposed.grid,
                    phase,
                    Some(&output),
                    &grid,
                )?;
            }
        }
        Ok(grid)
    }

    /// Records the padding's backward of one block of input channels from its
    /// padded gradient, into its place in `destination`.
    fn encode_fold_block(
        &self,
        rec: &mut Recorder,
        call: &wgpu::Buffer,
        chunk: &Chunk,
        padded: &wgpu::Buffer,
        destination: &wgpu::Buffer,
    ) -> Result<()> {
        let geometry = &self.geometry;
        let len = chunk.input_len(geometry);
        let grad_input = rec.scratch("grad_input", len);
        if self.dtype.is_half() {
            grad_input::encode_fold_half(
                rec,
                geometry,
                chunk,
                call,
                padded,
                &grad_input,
                self.dtype,
            )?;
        } else {
            grad_input::encode_fold(rec, geometry, chunk, call, padded, &grad_input)?;
        }
        rec.copy(
            &grad_input,
            0,
            destination,
            chunk.input_offset(geometry),
            len,
        );
        Ok(())
    }
}
