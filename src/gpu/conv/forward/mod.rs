//! The forward kernels and the pass that runs one of them over a call's
//! chunks. Each kernel lives in its own file with its launch arithmetic:
//! [`direct`], [`implicit_gemm`] (and its 1×1 form), [`blocked`] (the
//! register-blocked kernel behind `blocked`, and `depthwise` where its
//! kernel is too large to unroll), [`depthwise`], [`winograd`].

pub(crate) mod blocked;
pub(crate) mod depthwise;
pub(crate) mod direct;
pub(crate) mod implicit_gemm;
pub(crate) mod winograd;

use blocked::Variant;
use depthwise::DepthwiseVariant;
use winograd::WinogradVariant;

use super::plan::{Chunk, plan_with_held};
use crate::dtype::DType;
use crate::error::Result;
use crate::geometry::Conv2dGeometry;
use crate::gpu::runtime::buffers::{check_buffer_size, check_fits};
use crate::gpu::runtime::{GpuContext, Recorder};
use crate::tensor::checked_numel;

/// The forward kernel that runs, once a request is resolved
/// ([`Algorithm::kernel`](super::select::Algorithm::kernel)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForwardKernel {
    /// One invocation per output.
    Direct,
    /// The tiled implicit GEMM; `pointwise` for its 1×1 form.
    Gemm { pointwise: bool },
    /// The register-blocked kernel (one output channel per invocation for
    /// depthwise kernels too large for [`ForwardKernel::Depthwise`]).
    Blocked(Variant),
    /// Strips of one channel, read straight from the input (depthwise).
    Depthwise(DepthwiseVariant),
    /// Winograd F(m×m, 3×3).
    Winograd(WinogradVariant),
}

/// The layout of the weight as a kernel reads it, when it is not the
/// weight's own: what a cached copy was made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum WeightLayout {
    /// Blocks of this many output channels side by side (the blocked
    /// kernel), holding values as the operands say.
    Packed(usize, blocked::Operands),
    /// The Winograd transform for tiles of this size and GEMM blocks of this
    /// many output channels.
    Winograd { tile: usize, kb: usize },
}

impl ForwardKernel {
    /// Whether `ctx`'s device grants what the kernel needs. Only the tiled
    /// GEMMs need more than a minimal device (256 invocations and 8 KiB of
    /// workgroup memory, within WebGPU's defaults); every other kernel runs
    /// in 64-invocation workgroups without workgroup memory.
    pub(crate) fn fits(self, ctx: &GpuContext) -> bool {
        match self {
            ForwardKernel::Gemm { .. } => {
                ctx.check_fits(&implicit_gemm::IMPLICIT_GEMM.spec()).is_ok()
            }
            _ => true,
        }
    }

    /// A kernel that computes what this one does and is much quicker to
    /// build, for first calls while this one is built ahead
    /// ([`Variant::quick`]): for the blocked kernel's packed variants and
    /// Winograd, where it differs from this one. `None` for the others,
    /// whose build takes a fraction of a second.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn quicker_to_build(self, geometry: &Conv2dGeometry) -> Option<Self> {
        let quick = Variant::quick(geometry);
        let slow = match self {
            ForwardKernel::Blocked(variant) => variant.packs() && variant != quick,
            ForwardKernel::Winograd(_) => true,
            _ => false,
        };
        (slow && quick.unsupported().is_none()).then_some(ForwardKernel::Blocked(quick))
    }

    /// The same kernel reading a `dtype` layer's values in a form that changes
    /// no bit of its result: the blocked kernel on bfloat16 operands for a
    /// bfloat16 layer, whose values rounding to bfloat16 leaves as they are
    /// (the kernel then sums the same products in the same order, reading
    /// half the bytes: about 0.8× its time on lavapipe). Others unchanged.
    pub(crate) fn for_values_of(self, dtype: DType) -> Self {
        match self {
            ForwardKernel::Blocked(variant) if dtype == DType::BF16 => {
                ForwardKernel::Blocked(variant.on_bf16().unwrap_or(variant))
            }
            other => other,
        }
    }

    /// The geometry the kernel runs: a pointwise convolution on the blocked
    /// kernel runs over planes flattened into one row.
    pub(crate) fn kernel_geometry(self, geometry: &Conv2dGeometry) -> Conv2dGeometry {
        match self {
            ForwardKernel::Blocked(variant) => variant.kernel_geometry(geometry),
            _ => *geometry,
        }
    }

    /// Elements of one input plane and of one output plane as the kernel
    /// holds them (a padded copy, a transform), and what to call them in an
    /// error when one does not fit a binding.
    pub(crate) fn held_planes(self, geometry: &Conv2dGeometry) -> [(usize, &'static str); 2] {
        let plain = [
            (geometry.height.input * geometry.width.input, ""),
            (geometry.height.output * geometry.width.output, ""),
        ];
        match self {
            ForwardKernel::Blocked(variant) => [
                (
                    variant.padded_plane(geometry),
                    "one padded input plane (the blocked kernels' aligned copy)",
                ),
                plain[1],
            ],
            ForwardKernel::Winograd(variant) => {
                let (input, output) = variant.held_planes(geometry);
                [
                    (
                        input,
                        "one input plane as Winograd holds it (padded, or transformed)",
                    ),
                    (output, "one output plane in Winograd's transformed domain"),
                ]
            }
            _ => plain,
        }
    }

    /// The weight layout the kernel reads and its elements, when it is not
    /// the weight's own.
    pub(crate) fn weight_layout(self, geometry: &Conv2dGeometry) -> Option<(WeightLayout, usize)> {
        match self {
            ForwardKernel::Blocked(variant) if variant.packs() => Some((
                WeightLayout::Packed(variant.block(), variant.operands()),
                variant.packed_weight_words(geometry),
            )),
            ForwardKernel::Winograd(variant) => Some((
                WeightLayout::Winograd {
                    tile: variant.tile,
                    kb: variant.kb,
                },
                variant.transformed_weight_len(geometry),
            )),
            _ => None,
        }
    }

    /// Elements of the weight layout the kernel reads, when it is not the
    /// weight's own.
    pub(crate) fn packed_weight_len(self, geometry: &Conv2dGeometry) -> Option<usize> {
        self.weight_layout(geometry).map(|(_, len)| len)
    }

    /// Records the packing of `weight` into `packed` (of
    /// [`packed_weight_len`](Self::packed_weight_len) elements), for a kernel
    /// that reads a packed weight, and returns whether it packed. With
    /// `transposed`, `weight` is that of the stride-1 convolution whose
    /// transpose this kernel runs (the input gradient's: channels swapped,
    /// taps flipped), which the blocked and Winograd kernels pack from; other
    /// kernels record nothing and need a transposed copy.
    pub(crate) fn encode_pack(
        self,
        rec: &mut Recorder,
        geometry: &Conv2dGeometry,
        call: &wgpu::Buffer,
        (weight, transposed): (&wgpu::Buffer, bool),
        packed: &wgpu::Buffer,
    ) -> Result<bool> {
        match self {
            ForwardKernel::Blocked(variant) if variant.packs() => {
                blocked::encode_pack(rec, geometry, variant, call, (weight, transposed), packed)?
            }
            ForwardKernel::Winograd(variant) => winograd::encode_weight_transform(
                rec,
                geometry,
                variant,
                call,
                (weight, transposed),
                packed,
            )?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Records one chunk from `buffers.input` into `buffers.output`.
    fn encode_chunk(
        self,
        rec: &mut Recorder,
        geometry: &Conv2dGeometry,
        chunk: &Chunk,
        buffers: &ForwardBuffers,
    ) -> Result<()> {
        match self {
            ForwardKernel::Direct => direct::encode(rec, geometry, chunk, buffers),
            ForwardKernel::Gemm { pointwise } => {
                implicit_gemm::encode(rec, geometry, chunk, pointwise, buffers)
            }
            ForwardKernel::Blocked(variant) => {
                blocked::encode_chunk(rec, geometry, chunk, variant, buffers)
            }
            ForwardKernel::Depthwise(variant) => {
                depthwise::encode_chunk(rec, geometry, chunk, variant, buffers)
            }
            ForwardKernel::Winograd(variant) => {
                winograd::encode_chunk(rec, geometry, chunk, variant, buffers)
            }
        }
    }
}

/// What a forward dispatch binds: the call's uniform block and the tensors.
#[derive(Clone, Copy)]
pub(crate) struct ForwardBuffers<'a> {
    /// The call's `ConvParams`.
    pub call: &'a wgpu::Buffer,
    pub input: &'a wgpu::Buffer,
    /// The blocked kernel's padded copy of `input`, made beforehand for
    /// several passes that pad it alike (see [`ForwardPass::encode_shared_padding`]);
    /// else each pass makes its own.
    pub padded: Option<PaddedInput<'a>>,
    /// The weight as the kernel reads it (packed for the blocked kernel).
    pub weight: &'a wgpu::Buffer,
    pub bias: &'a wgpu::Buffer,
    pub output: &'a wgpu::Buffer,
}

/// A padded, row-aligned copy of a pass's input and its row length.
#[derive(Clone, Copy)]
pub(crate) struct PaddedInput<'a> {
    pub buffer: &'a wgpu::Buffer,
    pub row_len: usize,
}

/// One checked forward call: its kernel and its chunks, made before any GPU work.
#[derive(Debug, Clone)]
pub(crate) struct ForwardPass {
    /// The geometry the kernel runs ([`ForwardKernel::kernel_geometry`]), from
    /// which the call's uniform block is made.
    pub geometry: Conv2dGeometry,
    /// The output's shape, as the call's own geometry gives it.
    pub output_shape: Vec<usize>,
    pub kernel: ForwardKernel,
    /// Output elements.
    pub elements: usize,
    chunks: Vec<Chunk>,
}

impl ForwardPass {
    /// Checks that the call fits the device and cuts it into chunks that
    /// each fit one binding.
    pub(crate) fn new(
        ctx: &GpuContext,
        geometry: Conv2dGeometry,
        kernel: ForwardKernel,
    ) -> Result<Self> {
        let output_shape = geometry.output_shape();
        let geometry = kernel.kernel_geometry(&geometry);
        let elements = checked_numel(&output_shape).unwrap_or(usize::MAX);
        let chunks = if elements == 0 {
            Vec::new()
        } else {
            let input = checked_numel(&geometry.input_shape_4d()).unwrap_or(usize::MAX);
            check_buffer_size(ctx, &[("input", input), ("output", elements)])?;
            // The packed (or transformed) weight is bound whole, never split
            // by chunks: it must fit one binding.
            if let Some(packed) = kernel.packed_weight_len(&geometry) {
                check_fits(ctx, &[("packed weight", packed)])?;
            }
            let max = (ctx.max_binding_bytes() / 4) as usize;
            let [input, output] = kernel.held_planes(&geometry);
            plan_with_held(&geometry, max, input, output).map_err(|e| ctx.name_adapter(e))?
        };
        Ok(Self {
            geometry,
            output_shape,
            kernel,
            elements,
            chunks,
        })
    }

    /// The pass reading and writing packed `dtype` values itself, where its
    /// kernel can and the call is one chunk: the depthwise kernel. Other
    /// passes run on `f32` copies that the caller widens and narrows.
    pub(crate) fn in_storage(&self, dtype: DType) -> Option<ForwardPass> {
        let (ForwardKernel::Depthwise(variant), [chunk]) = (self.kernel, self.chunks.as_slice())
        else {
            return None;
        };
        let variant = variant.stored_as(dtype, &self.geometry)?;
        (!chunk.accumulate).then(|| ForwardPass {
            kernel: ForwardKernel::Depthwise(variant),
            ..self.clone()
        })
    }

    /// Records one padded copy of `input` that every pass of `passes` can
    /// read instead of making its own, when they can share one: each runs the
    /// blocked kernel in one chunk, and they pad alike (the same input and
    /// padding: their calls' `ConvParams` agree on them, and `call` is one of
    /// them). Returns the copy and its row length, or `None`.
    pub(crate) fn encode_shared_padding<'p>(
        rec: &mut Recorder,
        passes: impl Iterator<Item = &'p ForwardPass> + Clone,
        call: &wgpu::Buffer,
        input: &wgpu::Buffer,
    ) -> Result<Option<(wgpu::Buffer, usize)>> {
        let padding = |g: &Conv2dGeometry| {
            let (h, w) = (&g.height, &g.width);
            [h.input, w.input].map(|v| v as i64).into_iter().chain([
                h.pad_before,
                h.pad_after,
                w.pad_before,
                w.pad_after,
            ])
        };
        let Some(first) = passes.clone().next() else {
            return Ok(None);
        };
        let mut row_len = 0;
        for pass in passes.clone() {
            let (ForwardKernel::Blocked(variant), [chunk]) = (pass.kernel, pass.chunks.as_slice())
            else {
                return Ok(None);
            };
            // The shared copy holds float32 values.
            if variant.operands() != blocked::Operands::F32 {
                return Ok(None);
            }
            if !padding(&pass.geometry).eq(padding(&first.geometry))
                || chunk.batch.len() != first.geometry.batch
                || chunk.in_channels.len() != first.geometry.in_channels
            {
                return Ok(None);
            }
            row_len = row_len.max(variant.row_len(&pass.geometry));
        }
        let planes = first.geometry.batch * first.geometry.in_channels;
        let padded_len = planes * first.geometry.height.padded().max(0) as usize;
        if padded_len == 0 || passes.count() < 2 {
            return Ok(None);
        }
        let copy = blocked::encode_padded_copy(
            rec,
            call,
            input,
            &first.geometry.width,
            (padded_len * row_len, row_len),
            blocked::Operands::F32,
        )?;
        Ok(Some((copy, row_len)))
    }

    /// Records the pass from `buffers.input` into `buffers.output` (both whole
    /// tensors). A call in one chunk binds them directly; split calls copy each
    /// chunk's input block into a scratch binding and its finished output
    /// block back.
    pub(crate) fn encode(&self, rec: &mut Recorder, buffers: &ForwardBuffers) -> Result<()> {
        let geometry = &self.geometry;
        if let [chunk] = self.chunks.as_slice() {
            return self.kernel.encode_chunk(rec, geometry, chunk, buffers);
        }
        let mut block: Option<wgpu::Buffer> = None;
        for chunk in &self.chunks {
            let len = chunk.input_len(geometry);
            let input = rec.scratch("input block", len);
            rec.copy(buffers.input, chunk.input_offset(geometry), &input, 0, len);
            // Later blocks of input channels add into the same output block.
            let output = match block.take() {
                Some(output) if chunk.accumulate => output,
                _ => rec.scratch("output block", chunk.output_len(geometry)),
            };
            let chunk_buffers = ForwardBuffers {
                input: &input,
                output: &output,
                // A copy of the whole input is no copy of this block's.
                padded: None,
                ..*buffers
            };
            self.kernel
                .encode_chunk(rec, geometry, chunk, &chunk_buffers)?;
            if chunk.completes {
                let at = chunk.output_offset(geometry);
                rec.copy(&output, 0, buffers.output, at, chunk.output_len(geometry));
            }
            block = Some(output);
        }
        Ok(())
    }
}
