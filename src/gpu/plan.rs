//! Splitting one convolution into dispatches whose buffers each fit one storage
//! binding (128 MiB on lavapipe, WebGPU's default) and 32-bit indexing.

use std::ops::Range;

use crate::error::{Conv2dError, Result};
use crate::geometry::Conv2dGeometry;

/// One dispatch: a block of batch items, output channels and input channels.
///
/// Every chunk's input `x[batch, in_channels]` and output `y[batch, out_channels]`
/// are contiguous in the full NCHW tensors: either the batch block is one item,
/// or the channel ranges are complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Batch items.
    pub batch: Range<usize>,
    /// Output channels computed.
    pub out_channels: Range<usize>,
    /// Input channels bound; outputs sum only over the ones in their group.
    pub in_channels: Range<usize>,
    /// Add to the partial sums of an earlier chunk instead of starting from the bias.
    pub accumulate: bool,
}

impl Chunk {
    /// The whole call in one chunk.
    pub fn whole(geometry: &Conv2dGeometry) -> Self {
        Self {
            batch: 0..geometry.batch,
            out_channels: 0..geometry.output_channels(),
            in_channels: 0..geometry.in_channels,
            accumulate: false,
        }
    }

    /// Elements of this chunk's input block.
    pub fn input_len(&self, geometry: &Conv2dGeometry) -> usize {
        self.batch.len() * self.in_channels.len() * geometry.height.input * geometry.width.input
    }

    /// Elements of this chunk's output block.
    pub fn output_len(&self, geometry: &Conv2dGeometry) -> usize {
        self.batch.len() * self.out_channels.len() * geometry.height.output * geometry.width.output
    }

    /// Offset of the input block in the full input, in elements.
    pub fn input_offset(&self, geometry: &Conv2dGeometry) -> usize {
        (self.batch.start * geometry.in_channels + self.in_channels.start)
            * geometry.height.input
            * geometry.width.input
    }

    /// Offset of the output block in the full output, in elements.
    pub fn output_offset(&self, geometry: &Conv2dGeometry) -> usize {
        (self.batch.start * geometry.output_channels() + self.out_channels.start)
            * geometry.height.output
            * geometry.width.output
    }

    /// Whether this is the last chunk adding into its output block.
    pub fn completes_output(&self, geometry: &Conv2dGeometry) -> bool {
        let last_group = (self.out_channels.end - 1) / geometry.out_channels_per_group();
        self.in_channels.end == (last_group + 1) * geometry.in_channels_per_group()
    }
}

/// The chunks of one forward call when no buffer may exceed `max_elements`.
///
/// One chunk when everything fits; else blocks of whole batch items; else, per
/// batch item, blocks of output channels, each summed over blocks of the input
/// channels its groups need. A single `H×W` plane larger than the limit cannot
/// be split this way and is refused.
pub fn plan(geometry: &Conv2dGeometry, max_elements: usize) -> Result<Vec<Chunk>> {
    let [n, c, h, w] = geometry.input_shape_4d();
    let [_, k, oh, ow] = geometry.output_shape_4d();
    let (in_item, out_item) = (c * h * w, k * oh * ow);
    let whole = |batch: Range<usize>| Chunk {
        batch,
        ..Chunk::whole(geometry)
    };
    if n * in_item.max(out_item) <= max_elements {
        return Ok(vec![whole(0..n)]);
    }
    if in_item.max(out_item) <= max_elements {
        let step = max_elements / in_item.max(out_item).max(1);
        return Ok((0..n)
            .step_by(step)
            .map(|b| whole(b..(b + step).min(n)))
            .collect());
    }
    for (what, plane) in [
        ("one input plane (H×W)", h * w),
        ("one output plane (OH×OW)", oh * ow),
    ] {
        if plane > max_elements {
            return Err(Conv2dError::TensorTooLarge {
                what,
                bytes: plane as u64 * 4,
                limit: max_elements as u64 * 4,
                adapter: String::new(),
            });
        }
    }
    let out_step = max_elements / (oh * ow);
    let in_step = max_elements / (h * w);
    let (cg_in, cg_out) = (
        geometry.in_channels_per_group(),
        geometry.out_channels_per_group(),
    );
    let mut chunks = Vec::new();
    for b in 0..n {
        for o0 in (0..k).step_by(out_step) {
            let o1 = (o0 + out_step).min(k);
            let needed = (o0 / cg_out) * cg_in..((o1 - 1) / cg_out + 1) * cg_in;
            for c0 in needed.clone().step_by(in_step) {
                chunks.push(Chunk {
                    batch: b..b + 1,
                    out_channels: o0..o1,
                    in_channels: c0..(c0 + in_step).min(needed.end),
                    accumulate: c0 != needed.start,
                });
            }
        }
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Conv2dConfig;

    fn geometry(config: Conv2dConfig, shape: &[usize]) -> Conv2dGeometry {
        Conv2dGeometry::new(&config, shape).unwrap()
    }

    /// Every output element is covered by chunks that together sum over exactly its group's inputs.
    fn assert_covers(g: &Conv2dGeometry, chunks: &[Chunk], max: usize) {
        let [n, _, _, _] = g.input_shape_4d();
        for chunk in chunks {
            assert!(
                chunk.input_len(g) <= max && chunk.output_len(g) <= max,
                "{chunk:?}"
            );
        }
        for b in 0..n {
            for o in 0..g.out_channels {
                let group = o / g.out_channels_per_group();
                let want: Vec<usize> = (group * g.in_channels_per_group()
                    ..(group + 1) * g.in_channels_per_group())
                    .collect();
                let mut seen = Vec::new();
                let mut starts = 0;
                for ch in chunks
                    .iter()
                    .filter(|ch| ch.batch.contains(&b) && ch.out_channels.contains(&o))
                {
                    starts += usize::from(!ch.accumulate);
                    seen.extend(ch.in_channels.clone().filter(|c| want.contains(c)));
                }
                assert_eq!(starts, 1, "output ({b}, {o}) starts once");
                assert_eq!(seen, want, "output ({b}, {o}) sums its group's inputs once");
            }
        }
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
                assert_eq!(chunk.completes_output(&g), last_of_block, "{chunk:?}");
            }
        }
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
