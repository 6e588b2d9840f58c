//! Sums over output positions in a fixed order, for the weight and bias
//! gradients: a kernel sums blocks of positions into partial sums (one block
//! per invocation's loop, under the driver's loop limit), then
//! `shaders/reduce_splits.wgsl` adds the blocks in order. No atomics: the same
//! inputs give the same bits, with extra memory bounded per pass.

use crate::error::Result;
use crate::geometry::Conv2dGeometry;
use crate::gpu::conv::conv_source;
use crate::gpu::conv::params::DispatchParams;
use crate::gpu::conv::plan::Chunk;
use crate::gpu::runtime::loops::loop_steps;
use crate::gpu::runtime::registry::Binding::{ReadOnly, ReadWrite, Uniform};
use crate::gpu::runtime::{KernelSpec, Recorder, WrittenKernel};

/// Most blocks one reduction pass adds up (its loop: the driver's limit).
pub(crate) const MAX_SPLITS: usize = 4096;

/// Workgroups a tiled kernel's blocks aim to fill together: several per
/// multiprocessor of a large GPU (an NVIDIA H200 has 132).
const BUSY_WORKGROUPS: usize = 1024;

/// Fewest positions per block of a tiled kernel: its workgroup writes a whole
/// tile of partial sums per block, which this many positions' products outweigh.
const MIN_TILED_SPLIT: usize = 128;

/// Floats of partial sums a tiled kernel may take per pass however small the
/// output block (16 MiB).
const PARTIALS_FLOOR: usize = 1 << 22;

/// Sum of the partial blocks: call, dispatch, partials, result.
pub(crate) const REDUCE_SPLITS: WrittenKernel = WrittenKernel::new(
    "reduce_splits",
    conv_source!("reduce_splits.wgsl"),
    64,
    &[Uniform, Uniform, ReadOnly, ReadWrite],
);

/// What one chunk's gradient pass binds.
pub(crate) struct ChunkBuffers<'a> {
    /// The call's `ConvParams`.
    pub call: &'a wgpu::Buffer,
    /// The chunk's input block.
    pub input: &'a wgpu::Buffer,
    /// The chunk's block of the output gradient.
    pub grad_output: &'a wgpu::Buffer,
}

/// How a gradient cuts the `positions` output positions of one chunk:
/// blocks of `split_len` positions, summed `per_pass` blocks at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PositionSplits {
    split_len: usize,
    splits: usize,
    per_pass: usize,
}

/// One pass: the positions it sums and the blocks they are cut into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pass {
    /// Positions `[begin, end)` of the chunk.
    pub positions: std::ops::Range<usize>,
    /// Blocks of [`PositionSplits::split_len`] positions (the last may be shorter).
    pub blocks: usize,
}

impl PositionSplits {
    /// Enough blocks to keep the GPU busy, but none shorter than the square
    /// root of `positions`, their partial sums (`block_len` each) never
    /// taking more memory than the output block holds, or one binding, per
    /// pass.
    pub(crate) fn new(
        positions: usize,
        block_len: usize,
        output_len: usize,
        max_elements: usize,
    ) -> Self {
        let block_len = block_len.max(1);
        let memory = output_len.max(block_len).min(max_elements);
        let wanted = (memory / block_len).clamp(1, positions.clamp(1, MAX_SPLITS));
        // Blocks at least √positions long: the adding pass then reads no more
        // than √positions per sum, where one long serial loop per sum would
        // leave the GPU idle.
        let split_len = positions
            .div_ceil(wanted)
            .max(positions.isqrt())
            .clamp(1, loop_steps(1, 0));
        Self::of_len(positions, split_len, block_len, max_elements)
    }

    /// Blocks of `split_len` positions, as many per pass as one binding holds
    /// their partial sums (`block_len` each).
    fn of_len(positions: usize, split_len: usize, block_len: usize, max_elements: usize) -> Self {
        let splits = positions.div_ceil(split_len).max(1);
        let per_pass = (max_elements / block_len).clamp(1, MAX_SPLITS).min(splits);
        Self {
            split_len,
            splits,
            per_pass,
        }
    }

    /// Blocks for a kernel that computes each block in `tiles` workgroups:
    /// enough blocks for about [`BUSY_WORKGROUPS`] workgroups in all, none
    /// shorter than [`MIN_TILED_SPLIT`] positions or longer than `max_len`
    /// (the kernel's loop budget), their partial sums (`block_len` each) taking
    /// no more memory than the output block or [`PARTIALS_FLOOR`] floats
    /// hold, and at most one binding per pass.
    pub(crate) fn tiled(
        positions: usize,
        (block_len, tiles, max_len): (usize, usize, usize),
        output_len: usize,
        max_elements: usize,
    ) -> Self {
        let block_len = block_len.max(1);
        let memory = output_len.max(PARTIALS_FLOOR).min(max_elements);
        let wanted = BUSY_WORKGROUPS
            .div_ceil(tiles.max(1))
            .min(memory / block_len)
            .min(positions.div_ceil(MIN_TILED_SPLIT))
            .clamp(1, MAX_SPLITS);
        let split_len = positions.div_ceil(wanted).clamp(1, max_len.max(1));
        Self::of_len(positions, split_len, block_len, max_elements)
    }

    /// These blocks with partial sums of `block_len` each: as many per pass
    /// as one binding holds. The blocks, and so every sum, stay as they are.
    pub(crate) fn holding(self, block_len: usize, max_elements: usize) -> Self {
        Self::of_len(
            self.splits * self.split_len,
            self.split_len,
            block_len.max(1),
            max_elements,
        )
    }

    /// Positions per block.
    pub(crate) fn split_len(&self) -> usize {
        self.split_len
    }

    /// The passes, in order.
    pub(crate) fn passes(&self, positions: usize) -> Vec<Pass> {
        (0..self.splits)
            .step_by(self.per_pass)
            .map(|first| {
                let blocks = self.per_pass.min(self.splits - first);
                let begin = first * self.split_len;
                let end = ((first + blocks) * self.split_len).min(positions);
                Pass {
                    positions: begin..end,
                    blocks,
                }
            })
            .collect()
    }
}

/// A gradient summed over the positions of a chunk: the kernel that writes
/// each pass's partial sums from `sources` (`invocations_per_block` per block
/// of positions, or one per partial sum), and where the `len` sums go.
pub(crate) struct PositionSum<'a> {
    pub kernel: &'a KernelSpec,
    pub invocations_per_block: Option<usize>,
    pub sources: &'a [&'a wgpu::Buffer],
    /// Sums per block, written to `result[offset..offset + len]`.
    pub len: usize,
    pub offset: usize,
    /// Whether an earlier chunk already stored there (the first pass adds too).
    pub started: bool,
    /// Where the kernel lays its partial sums out its own way: the pass that
    /// adds them (bound as reduce_splits is), its invocations, and the floats
    /// the sums take per block of positions. `None`: `len` sums per block in
    /// result order, added by reduce_splits, one invocation per sum.
    pub own_layout: Option<(&'a KernelSpec, usize, usize)>,
}

/// Records `sum` over the output positions of `chunk` (one partial sum per
/// block of positions: a kernel with one invocation per sum), onto what is in
/// `result`, cut into blocks as [`PositionSplits`] chooses for it.
pub(crate) fn encode_chunk_position_sum(
    rec: &mut Recorder,
    geometry: &Conv2dGeometry,
    chunk: &Chunk,
    (call, max_elements): (&wgpu::Buffer, usize),
    sum: &PositionSum,
    result: &wgpu::Buffer,
) -> Result<()> {
    let positions = chunk.batch.len() * geometry.height.output * geometry.width.output;
    let splits = PositionSplits::new(positions, sum.len, chunk.output_len(geometry), max_elements);
    let base = DispatchParams::for_chunk(chunk)?;
    encode_position_sum(rec, call, base, (positions, &splits), sum, result)
}

/// Records `sum` over `positions` cut as `splits` says, pass by pass: the
/// kernel writes each pass's blocks of partial sums (`base` narrowed to the
/// pass), then they are added in order into `result`, onto what is there from
/// earlier passes and chunks.
pub(crate) fn encode_position_sum(
    rec: &mut Recorder,
    call: &wgpu::Buffer,
    base: DispatchParams,
    (positions, splits): (usize, &PositionSplits),
    sum: &PositionSum,
    result: &wgpu::Buffer,
) -> Result<()> {
    for (k, pass) in splits.passes(positions).iter().enumerate() {
        let params = base
            .with_splits(pass.blocks, splits.split_len())?
            .with_slice(&pass.positions)?;
        let reduce = REDUCE_SPLITS.spec();
        let (reduce, reduce_invocations, per_block) =
            sum.own_layout.unwrap_or((&reduce, sum.len, sum.len));
        let partial_len = pass.blocks * per_block;
        let invocations = sum
            .invocations_per_block
            .map_or(partial_len, |n| n * pass.blocks);
        let partial_params = rec.uniform(sum.kernel.family, &params.with_total(invocations)?);
        let partials = rec.scratch("partials", partial_len);
        let mut buffers = vec![call, &partial_params];
        buffers.extend_from_slice(sum.sources);
        buffers.push(&partials);
        rec.dispatch(sum.kernel, &buffers, invocations as u64)?;
        let reduce_params = params
            .with_total(reduce_invocations)?
            .with_result_offset(sum.offset)?
            .with_accumulate(sum.started || k > 0);
        let reduce_params = rec.uniform("reduce", &reduce_params);
        rec.dispatch(
            reduce,
            &[call, &reduce_params, &partials, result],
            reduce_invocations as u64,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_cover_the_positions_once_in_blocks_under_the_budget() {
        for (positions, block_len, output_len, max) in [
            (25_088, 36_864, 1_605_632, 1 << 25),
            (200_704, 432, 3_211_264, 1 << 25),
            (300_000, 1, 300_000, 1 << 25),
            (7, 10, 7, 1 << 25),
            // A tiny binding: one block of partial sums per pass.
            (100_000, 1000, 100_000, 1500),
        ] {
            let tiled =
                |tiles| PositionSplits::tiled(positions, (block_len, tiles, 3000), output_len, max);
            for splits in [
                PositionSplits::new(positions, block_len, output_len, max),
                tiled(1),
                tiled(9),
                tiled(5000),
            ] {
                check_passes(&splits, positions, block_len, max);
            }
        }
        let wide = PositionSplits::tiled(25_088, (36_864, 9, 3000), 1_605_632, 1 << 25);
        // 113 blocks of 223 positions: 1017 workgroups, the partial sums 16 MiB.
        assert_eq!((wide.splits, wide.split_len()), (113, 223), "{wide:?}");
        let capped = PositionSplits::tiled(1_000_000, (36_864, 9, 3000), 1, 1 << 25);
        assert_eq!(
            capped.split_len(),
            3000,
            "{capped:?}: the loop budget caps a block"
        );
    }

    fn check_passes(splits: &PositionSplits, positions: usize, block_len: usize, max: usize) {
        assert!(splits.split_len() < crate::gpu::runtime::loops::LOOP_BUDGET);
        let mut next = 0;
        for pass in &splits.passes(positions) {
            assert_eq!(pass.positions.start, next, "passes follow each other");
            assert!(
                pass.blocks * block_len <= max.max(block_len),
                "partials fit a binding"
            );
            assert!(pass.blocks <= MAX_SPLITS);
            assert!(pass.positions.len() <= pass.blocks * splits.split_len());
            next = pass.positions.end;
        }
        assert_eq!(next, positions, "every position summed");
    }
}
