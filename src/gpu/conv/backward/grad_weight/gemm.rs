//! The weight gradient as a tiled GEMM (`shaders/conv2d_grad_weight_gemm.wgsl`):
//! per group, grad_output (channels × positions) times the input gathered
//! through the padding index map (positions × weight columns), 64 × 64 tiles
//! of the weight per workgroup over one block of positions, a 4 × 4 register
//! block per invocation. The blocks of positions keep a large GPU busy where
//! the weight has few tiles, and are added in order (see
//! [`reduce`](super::super::reduce)). Every configuration.

use crate::error::Result;
use crate::geometry::Conv2dGeometry;
use crate::gpu::conv::backward::reduce::{
    ChunkBuffers, PositionSplits, PositionSum, encode_position_sum,
};
use crate::gpu::conv::conv_source;
use crate::gpu::conv::params::DispatchParams;
use crate::gpu::conv::plan::Chunk;
use crate::gpu::runtime::loops::loop_steps;
use crate::gpu::runtime::registry::Binding::{ReadOnly, ReadWrite, Uniform};
use crate::gpu::runtime::{Recorder, WrittenKernel};

/// Output channels and weight columns per workgroup (`TILE` in the shader).
const TILE: usize = 64;

/// Positions loaded per step (`BK` in the shader).
const DEPTH_STEP: usize = 16;

/// Invocations per workgroup: (TILE / 4)², each with a 4 × 4 register block.
const WORKGROUP: usize = (TILE / 4) * (TILE / 4);

// The shader loads four values of each tile per invocation and step, into
// rows `lane + r · TILE / 4`: the tiles must hold exactly four per invocation.
const _: () = assert!(TILE * DEPTH_STEP == 4 * WORKGROUP);

/// Workgroup memory: the grad_output and gathered input tiles, TILE × BK f32 each.
const WORKGROUP_BYTES: u32 = (2 * TILE * DEPTH_STEP * 4) as u32;

/// Weight-gradient partial sums by tiles: call, dispatch, input, grad_output, partials.
pub(crate) const GRAD_WEIGHT_GEMM: WrittenKernel = WrittenKernel::new(
    "conv2d_grad_weight_gemm",
    conv_source!("conv2d_grad_weight_gemm.wgsl"),
    WORKGROUP as u32,
    &[Uniform, Uniform, ReadOnly, ReadOnly, ReadWrite],
)
.with_constants(
    "conv2d_grad_weight_gemm",
    &[("TILE", TILE as f64), ("BK", DEPTH_STEP as f64)],
)
.with_workgroup_bytes(WORKGROUP_BYTES);

/// Loop passes of one step over positions: itself, the four loads (4 + 1)
/// and the BK multiply-adds (BK + 1).
const PASSES_PER_STEP: usize = 1 + 5 + DEPTH_STEP + 1;

/// Loop passes outside the steps: the epilogue's 4 × 4 stores.
const FIXED_PASSES: usize = 5 + 4 * 5;

/// Most positions one block may hold: the steps of one invocation's loop
/// budget (the driver's loop limit).
fn max_split_len() -> usize {
    loop_steps(PASSES_PER_STEP, FIXED_PASSES) * DEPTH_STEP
}

/// Workgroups per block of positions for `chunk`: (group, channel tile,
/// column tile), as the shader numbers them.
fn tiles(geometry: &Conv2dGeometry, chunk: &Chunk) -> usize {
    let per_group = geometry.out_channels_per_group();
    let o = &chunk.out_channels;
    let groups = (o.end - 1) / per_group - o.start / per_group + 1;
    let row_len = geometry.in_channels_per_group() * geometry.height.kernel * geometry.width.kernel;
    groups * per_group.min(o.len()).div_ceil(TILE) * row_len.div_ceil(TILE)
}

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
    let block_len = chunk.out_channels.len() * row_len;
    let positions = chunk.batch.len() * geometry.height.output * geometry.width.output;
    let tiles = tiles(geometry, chunk);
    let splits = PositionSplits::tiled(
        positions,
        (block_len, tiles, max_split_len()),
        chunk.output_len(geometry),
        max_elements,
    );
    let sum = PositionSum {
        kernel: &GRAD_WEIGHT_GEMM.spec(),
        invocations_per_block: Some(tiles * WORKGROUP),
        sources: &[buffers.input, buffers.grad_output],
        len: block_len,
        offset: chunk.out_channels.start * row_len,
        // Rows of these output channels were started by an earlier chunk
        // unless this is their first batch item and first input block.
        started: chunk.batch.start > 0 || chunk.accumulate,
        own_layout: None,
    };
    encode_position_sum(
        rec,
        buffers.call,
        DispatchParams::for_chunk(chunk)?,
        (positions, &splits),
        &sum,
        grad_weight,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_fits_the_loop_budget() {
        let steps = max_split_len() / DEPTH_STEP;
        assert!(
            FIXED_PASSES + 1 + steps * PASSES_PER_STEP <= crate::gpu::runtime::loops::LOOP_BUDGET
        );
        let splits =
            PositionSplits::tiled(10_000_000, (36_864, 9, max_split_len()), 1 << 20, 1 << 25);
        assert!(splits.split_len() <= max_split_len());
    }
}
