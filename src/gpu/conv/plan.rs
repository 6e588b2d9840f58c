//! Splitting one convolution into dispatches whose buffers each fit one storage
//! binding (128 MiB on lavapipe, WebGPU's default) and 32-bit indexing.
//!
//! The forward pass computes output channels from input channels; the input
//! gradient computes input channels from output channels. Both are the same
//! problem with the roles swapped, so one splitter serves both.

use std::ops::Range;

use crate::error::{Conv2dError, Result};
use crate::geometry::Conv2dGeometry;

/// One dispatch: a block of batch items, output channels and input channels.
///
/// Every chunk's input `x[batch, in_channels]` and output `y[batch, out_channels]`
/// are contiguous in the full NCHW tensors: either the batch block is one item,
/// or the channel ranges are complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chunk {
    /// Batch items.
    pub batch: Range<usize>,
    /// Output channels bound.
    pub out_channels: Range<usize>,
    /// Input channels bound.
    pub in_channels: Range<usize>,
    /// Add to the partial sums of an earlier chunk instead of starting afresh.
    pub accumulate: bool,
    /// The last chunk adding into its block of results.
    pub completes: bool,
}

impl Chunk {
    /// Elements of this chunk's input block.
    pub(crate) fn input_len(&self, geometry: &Conv2dGeometry) -> usize {
        self.batch.len() * self.in_channels.len() * geometry.height.input * geometry.width.input
    }

    /// Elements of this chunk's block of the padded input (the input gradient's scratch).
    pub(crate) fn padded_len(&self, geometry: &Conv2dGeometry) -> usize {
        self.batch.len() * self.in_channels.len() * geometry.padded_plane()
    }

    /// Elements of this chunk's output block.
    pub(crate) fn output_len(&self, geometry: &Conv2dGeometry) -> usize {
        self.batch.len() * self.out_channels.len() * geometry.height.output * geometry.width.output
    }

    /// Offset of the input block in the full input, in elements.
    pub(crate) fn input_offset(&self, geometry: &Conv2dGeometry) -> usize {
        (self.batch.start * geometry.in_channels + self.in_channels.start)
            * geometry.height.input
            * geometry.width.input
    }

    /// Offset of the output block in the full output, in elements.
    pub(crate) fn output_offset(&self, geometry: &Conv2dGeometry) -> usize {
        (self.batch.start * geometry.output_channels() + self.out_channels.start)
            * geometry.height.output
            * geometry.width.output
    }
}

/// One side of a split: channels, elements per channel plane, channels per group.
#[derive(Debug, Clone, Copy)]
struct Side {
    channels: usize,
    plane: usize,
    per_group: usize,
    what: &'static str,
}

/// A split chunk before the sides are named: `dst` channels computed, summing over `src` channels.
struct Block {
    batch: Range<usize>,
    dst: Range<usize>,
    src: Range<usize>,
    accumulate: bool,
    completes: bool,
}

/// The chunks of one forward call when no buffer may exceed `max_elements`.
///
/// One chunk when everything fits; else blocks of whole batch items; else, per
/// batch item, blocks of output channels, each summed over blocks of the input
/// channels its groups need. A single `H×W` plane larger than the limit cannot
/// be split this way and is refused.
#[cfg(test)]
pub(crate) fn plan(geometry: &Conv2dGeometry, max_elements: usize) -> Result<Vec<Chunk>> {
    plan_with_copies(
        geometry,
        max_elements,
        geometry.height.input * geometry.width.input,
        geometry.height.output * geometry.width.output,
    )
}

/// [`plan`] for a kernel that also holds copies of each input block and each
/// output block, with planes of `input_copy` and `output_copy` elements (the
/// blocked weight gradient's padded input and aligned grad_output rows).
pub(crate) fn plan_with_copies(
    geometry: &Conv2dGeometry,
    max_elements: usize,
    input_copy: usize,
    output_copy: usize,
) -> Result<Vec<Chunk>> {
    plan_with_held(
        geometry,
        max_elements,
        (
            input_copy,
            "one padded input plane (the blocked kernels' aligned copy)",
        ),
        (
            output_copy,
            "one output plane with its rows aligned (OH×OW rounded up)",
        ),
    )
}

/// [`plan`], for kernels that hold each input and output plane in a buffer
/// of the given elements (when larger than the plane), named as given in the
/// error when one does not fit.
pub(crate) fn plan_with_held(
    geometry: &Conv2dGeometry,
    max_elements: usize,
    (input_copy, input_what): (usize, &'static str),
    (output_copy, output_what): (usize, &'static str),
) -> Result<Vec<Chunk>> {
    let (input, mut output) = sides(geometry, input_copy, input_what);
    if output_copy > output.plane {
        output.plane = output_copy;
        output.what = output_what;
    }
    let blocks = split(geometry.batch, input, output, max_elements)?;
    Ok(blocks
        .into_iter()
        .map(|b| Chunk {
            batch: b.batch,
            out_channels: b.dst,
            in_channels: b.src,
            accumulate: b.accumulate,
            completes: b.completes,
        })
        .collect())
}

/// The chunks of the input gradient: blocks of input channels, each summed over
/// the blocks of output channels (of the gradient) that read them. Input blocks
/// also hold their padded planes, the larger of the two.
pub(crate) fn plan_grad_input(
    geometry: &Conv2dGeometry,
    max_elements: usize,
) -> Result<Vec<Chunk>> {
    let (input, output) = sides(
        geometry,
        geometry.padded_plane(),
        "one padded input plane (the input gradient's)",
    );
    let blocks = split(geometry.batch, output, input, max_elements)?;
    Ok(blocks
        .into_iter()
        .map(|b| Chunk {
            batch: b.batch,
            out_channels: b.src,
            in_channels: b.dst,
            accumulate: b.accumulate,
            completes: b.completes,
        })
        .collect())
}

/// The two sides of a split; input planes are the larger of the input's own
/// and `copy_plane`, a padded copy some kernels also hold (`copy` names it).
fn sides(geometry: &Conv2dGeometry, copy_plane: usize, copy: &'static str) -> (Side, Side) {
    let input_plane = geometry.height.input * geometry.width.input;
    let (plane, what) = if copy_plane > input_plane {
        (copy_plane, copy)
    } else {
        (input_plane, "one input plane (H×W)")
    };
    (
        Side {
            channels: geometry.in_channels,
            plane,
            per_group: geometry.in_channels_per_group(),
            what,
        },
        Side {
            channels: geometry.output_channels(),
            plane: geometry.height.output * geometry.width.output,
            per_group: geometry.out_channels_per_group(),
            what: "one output plane (OH×OW)",
        },
    )
}

fn split(n: usize, src: Side, dst: Side, max_elements: usize) -> Result<Vec<Block>> {
    let (src_item, dst_item) = (src.channels * src.plane, dst.channels * dst.plane);
    let item = src_item.max(dst_item);
    let whole = |batch: Range<usize>| Block {
        batch,
        dst: 0..dst.channels,
        src: 0..src.channels,
        accumulate: false,
        completes: true,
    };
    if n * item <= max_elements {
        return Ok(vec![whole(0..n)]);
    }
    if item <= max_elements {
        let step = max_elements / item.max(1);
        return Ok((0..n)
            .step_by(step)
            .map(|b| whole(b..(b + step).min(n)))
            .collect());
    }
    for side in [src, dst] {
        if side.plane > max_elements {
            return Err(Conv2dError::TensorTooLarge {
                what: side.what,
                bytes: side.plane as u64 * 4,
                limit: max_elements as u64 * 4,
                adapter: String::new(),
            });
        }
    }
    let dst_step = max_elements / dst.plane.max(1);
    let src_step = max_elements / src.plane.max(1);
    let mut blocks = Vec::new();
    for b in 0..n {
        for d0 in (0..dst.channels).step_by(dst_step) {
            let d1 = (d0 + dst_step).min(dst.channels);
            let needed = (d0 / dst.per_group) * src.per_group
                ..((d1 - 1) / dst.per_group + 1) * src.per_group;
            for s0 in needed.clone().step_by(src_step) {
                let s1 = (s0 + src_step).min(needed.end);
                blocks.push(Block {
                    batch: b..b + 1,
                    dst: d0..d1,
                    src: s0..s1,
                    accumulate: s0 != needed.start,
                    completes: s1 == needed.end,
                });
            }
        }
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Conv2dConfig;

    fn geometry(config: Conv2dConfig, shape: &[usize]) -> Conv2dGeometry {
        Conv2dGeometry::new(&config, shape).unwrap()
    }

    /// Every computed element (an output, or for the input gradient an input)
    /// is started by one chunk, and its chunks sum exactly the channels of its
    /// group on the other side, once each.
    fn assert_sums_group_once(g: &Conv2dGeometry, chunks: &[Chunk], grad_input: bool) {
        let (count, per_group, summed_per_group) = if grad_input {
            let (c, k) = (g.in_channels_per_group(), g.out_channels_per_group());
            (g.in_channels, c, k)
        } else {
            let (k, c) = (g.out_channels_per_group(), g.in_channels_per_group());
            (g.out_channels, k, c)
        };
        let sides = |ch: &Chunk| {
            if grad_input {
                (ch.in_channels.clone(), ch.out_channels.clone())
            } else {
                (ch.out_channels.clone(), ch.in_channels.clone())
            }
        };
        for b in 0..g.batch {
            for x in 0..count {
                let group = x / per_group;
                let want: Vec<usize> =
                    (group * summed_per_group..(group + 1) * summed_per_group).collect();
                let mut seen = Vec::new();
                let mut starts = 0;
                for ch in chunks.iter().filter(|ch| ch.batch.contains(&b)) {
                    let (computed, summed) = sides(ch);
                    if computed.contains(&x) {
                        starts += usize::from(!ch.accumulate);
                        seen.extend(summed.filter(|c| want.contains(c)));
                    }
                }
                assert_eq!(starts, 1, "({b}, {x}) starts once");
                assert_eq!(seen, want, "({b}, {x}) sums its group once");
            }
        }
    }

    /// The forward chunks fit and cover every output.
    fn assert_covers(g: &Conv2dGeometry, chunks: &[Chunk], max: usize) {
        for chunk in chunks {
            assert!(
                chunk.input_len(g) <= max && chunk.output_len(g) <= max,
                "{chunk:?}"
            );
        }
        assert_sums_group_once(g, chunks, false);
    }

    #[test]
    fn everything_fits_in_one_chunk() {
        let g = geometry(Conv2dConfig::new(3, 4, 3), &[2, 3, 8, 8]);
        assert_eq!(plan(&g, 1 << 20).unwrap().len(), 1);
    }

    #[test]
    fn splits_batches_then_channels() {
        let g = geometry(Conv2dConfig::new(6, 4, 3).with_padding(1), &[3, 6, 4, 4]);
        let chunks = plan(&g, 2 * 96).unwrap();
        assert_eq!(chunks.len(), 2, "two batch items per chunk");
        assert_covers(&g, &chunks, 2 * 96);

        let chunks = plan(&g, 40).unwrap();
        assert!(chunks.iter().any(|c| c.accumulate));
        assert_covers(&g, &chunks, 40);
    }

    #[test]
    fn grouped_chunks_sum_only_their_groups() {
        let g = geometry(
            Conv2dConfig::new(6, 9, 3).with_padding(1).with_groups(3),
            &[2, 6, 4, 4],
        );
        for max in [16, 32, 48, 80] {
            let chunks = plan(&g, max).unwrap();
            assert_covers(&g, &chunks, max);
            // Each output block is completed once, by its last chunk.
            for (i, chunk) in chunks.iter().enumerate() {
                let last_of_block = chunks.get(i + 1).is_none_or(|next| {
                    next.batch != chunk.batch || next.out_channels != chunk.out_channels
                });
                assert_eq!(chunk.completes, last_of_block, "{chunk:?}");
            }
        }
    }

    /// The input-gradient chunks fit (padded planes included) and cover every input.
    fn assert_covers_grad_input(g: &Conv2dGeometry, chunks: &[Chunk], max: usize) {
        for chunk in chunks {
            assert!(
                chunk.padded_len(g) <= max
                    && chunk.input_len(g) <= max
                    && chunk.output_len(g) <= max,
                "{chunk:?}"
            );
        }
        assert_sums_group_once(g, chunks, true);
    }

    #[test]
    fn grad_input_chunks_sum_their_groups_outputs() {
        // Padding 2 makes the padded planes (8×8) larger than the input planes (4×4).
        let g = geometry(
            Conv2dConfig::new(6, 9, 3).with_padding(2).with_groups(3),
            &[2, 6, 4, 4],
        );
        for max in [64, 128, 200, 1 << 20] {
            let chunks = plan_grad_input(&g, max).unwrap();
            assert_covers_grad_input(&g, &chunks, max);
        }
        assert!(matches!(
            plan_grad_input(&g, 63),
            Err(Conv2dError::TensorTooLarge { .. })
        ));
    }

    #[test]
    fn a_plane_too_large_is_refused() {
        let g = geometry(Conv2dConfig::new(1, 1, 1), &[1, 1, 8, 8]);
        assert!(matches!(
            plan(&g, 32),
            Err(Conv2dError::TensorTooLarge { .. })
        ));
    }
}
