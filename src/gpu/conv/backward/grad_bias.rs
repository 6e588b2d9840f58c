//! The bias gradient (`shaders/conv2d_grad_bias.wgsl`): one invocation per
//! (block of output positions, output channel) sums `grad_output`; the blocks
//! are added in order (see [`reduce`](super::reduce)).

use super::reduce::{ChunkBuffers, PartialKernel, PositionSplits, encode_partial_sums};
use crate::error::Result;
use crate::geometry::Conv2dGeometry;
use crate::gpu::conv::conv_source;
use crate::gpu::conv::params::DispatchParams;
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
    let positions = chunk.batch.len() * geometry.height.output * geometry.width.output;
    let splits = PositionSplits::new(
        positions,
        channels,
        chunk.output_len(geometry),
        max_elements,
    );
    let started = chunk.batch.start > 0;
    let base = DispatchParams::for_chunk(chunk)?;
    for (k, pass) in splits.passes(positions).iter().enumerate() {
        let params = base
            .with_splits(pass.blocks, splits.split_len())?
            .with_slice(&pass.positions)?;
        encode_partial_sums(
            rec,
            PartialKernel {
                spec: &GRAD_BIAS.spec(),
                invocations: None,
            },
            buffers.call,
            params,
            &[buffers.grad_output],
            (channels, chunk.out_channels.start),
            started || k > 0,
            grad_bias,
        )?;
    }
    Ok(())
}
