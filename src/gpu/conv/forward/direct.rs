//! The direct kernel (`shaders/conv2d_direct.wgsl`): one invocation per output
//! element, every parameter from the uniform blocks, the padding modes as
//! index maps. The always-correct baseline.

use super::ForwardBuffers;
use crate::error::Result;
use crate::geometry::Conv2dGeometry;
use crate::gpu::conv::conv_source;
use crate::gpu::conv::params::DispatchParams;
use crate::gpu::conv::plan::Chunk;
use crate::gpu::conv::slicing::dispatch_nested_slices;
use crate::gpu::runtime::registry::Binding::{ReadOnly, ReadWrite, Uniform};
use crate::gpu::runtime::{Recorder, WrittenKernel};

/// Invocations per workgroup.
const WORKGROUP_SIZE: u32 = 64;

/// The direct forward kernel: call, dispatch, input, weight, bias, output.
pub(crate) const DIRECT: WrittenKernel = WrittenKernel::new(
    "conv2d_direct",
    conv_source!("conv2d_direct.wgsl"),
    WORKGROUP_SIZE,
    &[Uniform, Uniform, ReadOnly, ReadOnly, ReadOnly, ReadWrite],
);

/// Records one chunk: one dispatch per slice of the reduction. Its loops run
/// over reduction rows (input channel, kernel row), each over the kernel
/// columns; the slices keep them under the driver's loop limit, and later
/// slices add onto the earlier ones in order.
pub(crate) fn encode(
    rec: &mut Recorder,
    geometry: &Conv2dGeometry,
    chunk: &Chunk,
    buffers: &ForwardBuffers,
) -> Result<()> {
    let channels = geometry
        .in_channels_per_group()
        .min(chunk.in_channels.len());
    let rows = channels * geometry.height.kernel;
    let columns = geometry.width.kernel;
    let total = chunk.output_len(geometry);
    let base = DispatchParams::for_chunk(chunk)?.with_total(total)?;
    dispatch_nested_slices(
        rec,
        &DIRECT.spec(),
        (rows, columns),
        base,
        chunk.accumulate,
        buffers.call,
        &[buffers.input, buffers.weight, buffers.bias, buffers.output],
    )
}
