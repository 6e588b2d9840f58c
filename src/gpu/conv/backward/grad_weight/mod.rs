//! The weight gradient: the direct kernel here (`shaders/conv2d_grad_weight.wgsl`:
//! one invocation per (block of output positions, weight element) sums
//! `grad_output · input` through the padding index map), the
//! register-blocked one in [`blocked`] and the tiled GEMM in [`gemm`]. Each
//! way the blocks are added in order (see [`reduce`](super::reduce)).

pub(crate) mod blocked;
pub(crate) mod gemm;

use super::reduce::{ChunkBuffers, PositionSum, encode_chunk_position_sum};
use crate::error::Result;
use crate::geometry::Conv2dGeometry;
use crate::gpu::conv::conv_source;
use crate::gpu::conv::plan::Chunk;
use crate::gpu::runtime::Recorder;
use crate::gpu::runtime::WrittenKernel;
use crate::gpu::runtime::registry::Binding::{ReadOnly, ReadWrite, Uniform};

/// Which kernel computes the weight gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WeightKernel {
    /// The direct gather: every configuration.
    Direct,
    /// The register-blocked kernel's variant (kernel width up to 16).
    Blocked(blocked::WeightVariant),
    /// The tiled GEMM: every configuration.
    Gemm,
}

/// Weight-gradient partial sums: call, dispatch, input, grad_output, partials.
pub(crate) const GRAD_WEIGHT: WrittenKernel = WrittenKernel::new(
    "conv2d_grad_weight",
    conv_source!("conv2d_grad_weight.wgsl"),
    64,
    &[Uniform, Uniform, ReadOnly, ReadOnly, ReadWrite],
);

/// Records one chunk's share of the weight gradient: the rows of its output
/// channels, summed over its batch items and input channels, pass by pass
/// onto what earlier chunks (earlier batch items, other input blocks) stored.
pub(crate) fn encode_chunk(
    rec: &mut Recorder,
    geometry: &Conv2dGeometry,
    chunk: &Chunk,
    buffers: &ChunkBuffers,
    max_elements: usize,
    grad_weight: &wgpu::Buffer,
) -> Result<()> {
    let row_len = geometry.in_channels_per_group() * geometry.height.kernel * geometry.width.kernel;
    let sum = PositionSum {
        kernel: &GRAD_WEIGHT.spec(),
        invocations_per_block: None,
        sources: &[buffers.input, buffers.grad_output],
        len: chunk.out_channels.len() * row_len,
        offset: chunk.out_channels.start * row_len,
        // Rows of these output channels were started by an earlier chunk
        // unless this is their first batch item and first input block.
        started: chunk.batch.start > 0 || chunk.accumulate,
        own_layout: None,
    };
    encode_chunk_position_sum(
        rec,
        geometry,
        chunk,
        (buffers.call, max_elements),
        &sum,
        grad_weight,
    )
}
