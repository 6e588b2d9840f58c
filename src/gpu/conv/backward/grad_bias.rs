//! The bias gradient (`shaders/conv2d_grad_bias.wgsl`): one invocation per
//! (block of output positions, output channel) sums `grad_output`; the blocks
//! are added in order (see [`reduce`](super::reduce)).

use super::reduce::{ChunkBuffers, PositionSum, encode_chunk_position_sum};
use crate::error::Result;
use crate::geometry::Conv2dGeometry;
use crate::gpu::conv::conv_source;
use crate::gpu::conv::plan::Chunk;
use crate::gpu::runtime::Recorder;
use crate::gpu::runtime::WrittenKernel;
use crate::gpu::runtime::registry::Binding::{ReadOnly, ReadWrite, Uniform};

/// Bias-gradient partial sums: call, dispatch, grad_output, partials.
pub(crate) const GRAD_BIAS: WrittenKernel = WrittenKernel::new(
    "conv2d_grad_bias",
    conv_source!("conv2d_grad_bias.wgsl"),
    64,
    &[Uniform, Uniform, ReadOnly, ReadWrite],
);

/// Records one chunk's share of the bias gradient, onto what earlier batch
/// items stored. Call it once per (batch, output channel) block: with the
/// block's first input block.
pub(crate) fn encode_chunk(
    rec: &mut Recorder,
    geometry: &Conv2dGeometry,
    chunk: &Chunk,
    buffers: &ChunkBuffers,
    max_elements: usize,
    grad_bias: &wgpu::Buffer,
) -> Result<()> {
    let channels = chunk.out_channels.len();
    let sum = PositionSum {
        kernel: &GRAD_BIAS.spec(),
        invocations_per_block: None,
        sources: &[buffers.grad_output],
        len: channels,
        offset: chunk.out_channels.start,
        started: chunk.batch.start > 0,
        own_layout: None,
    };
    encode_chunk_position_sum(
        rec,
        geometry,
        chunk,
        (buffers.call, max_elements),
        &sum,
        grad_bias,
    )
}
