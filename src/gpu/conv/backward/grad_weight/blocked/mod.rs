//! The register-blocked weight gradient (`shaders/conv2d_grad_weight_blocked.wgsl`):
//! per invocation, OB output channels × one kernel row's taps of one input
//! channel, summed over a block of positions four columns at a time from a
//! padded, aligned copy of the input and vec4 rows of grad_output. Its variants
//! are generated per OB, kernel width, stride and dilation along the row
//! ([`codegen`]).

mod codegen;

use crate::config::Conv2dConfig;
use crate::error::Result;
use crate::geometry::Conv2dGeometry;
use crate::gpu::conv::backward::reduce::{
    ChunkBuffers, PartialKernel, PositionSplits, encode_partial_sums,
};
use crate::gpu::conv::forward::blocked::encode_padded_copy;
use crate::gpu::conv::params::{ConvParams, DispatchParams};
use crate::gpu::conv::plan::Chunk;
use crate::gpu::runtime::registry::Binding::{ReadOnly, ReadWrite, Uniform};
use crate::gpu::runtime::{KernelSpec, Recorder, ShaderSource};

/// Largest kernel width the generated code unrolls.
const MAX_KERNEL_W: usize = 16;

/// Largest span of one input row (floats) an invocation holds per quad.
const MAX_SPAN: usize = 128;

/// vec4 accumulators per invocation at most (OB × kernel width).
const MAX_ACCUMULATORS: usize = 64;

/// What one generated variant is specialised for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WeightVariant {
    /// Output channels per invocation: 16, 8 or 4.
    pub(super) ob: usize,
    pub(super) kernel_w: usize,
    pub(super) stride_w: usize,
    pub(super) dilation_w: usize,
}

impl WeightVariant {
    /// The variant for `geometry`, or `None` where the generated code cannot
    /// run it (kernel width over 16, or a quad's span over 128 columns): the
    /// most output channels per invocation whose accumulators stay within 64
    /// vec4s.
    pub(crate) fn new(geometry: &Conv2dGeometry) -> Option<Self> {
        let w = &geometry.width;
        let ob = [16, 8, 4]
            .into_iter()
            .find(|ob| ob * w.kernel <= MAX_ACCUMULATORS)?;
        let variant = Self {
            ob,
            kernel_w: w.kernel,
            stride_w: w.stride,
            dilation_w: w.dilation,
        };
        (w.kernel <= MAX_KERNEL_W && variant.span() <= MAX_SPAN).then_some(variant)
    }

    /// Floats of one padded input row that a quad of positions reads.
    fn span(self) -> usize {
        3 * self.stride_w + (self.kernel_w - 1) * self.dilation_w + 1
    }

    /// vec4 loads per quad.
    pub(super) fn span_vecs(self) -> usize {
        self.span().div_ceil(4)
    }

    /// Elements of one plane of the padded input copy and of one plane of
    /// grad_output with aligned rows: what a chunk must fit in a binding.
    pub(crate) fn copy_planes(self, geometry: &Conv2dGeometry) -> (usize, usize) {
        let (h, w) = (&geometry.height, &geometry.width);
        (
            h.padded().max(0) as usize * self.row_len(geometry),
            h.output * w.output.next_multiple_of(4),
        )
    }

    /// Length of one row of the padded input copy: the padded width, or more
    /// where the last quad's aligned loads reach past it; a multiple of 4.
    fn row_len(self, geometry: &Conv2dGeometry) -> usize {
        let quads = geometry.width.output.div_ceil(4).max(1);
        let reach = (quads - 1) * 4 * self.stride_w + 4 * self.span_vecs();
        (geometry.width.padded().max(0) as usize)
            .max(reach)
            .next_multiple_of(4)
    }

    /// The values that identify the variant in its kernel key.
    fn key(self) -> Vec<u32> {
        [self.ob, self.kernel_w, self.stride_w, self.dilation_w]
            .iter()
            .map(|&v| v as u32)
            .collect()
    }

    /// The variant [`key`](Self::key) names.
    pub(super) fn from_key(values: &[u32]) -> Self {
        let v = |k: usize| values[k] as usize;
        Self {
            ob: v(0),
            kernel_w: v(1),
            stride_w: v(2),
            dilation_w: v(3),
        }
    }

    /// The kernel of this variant, its source generated when compiled.
    pub(crate) fn spec(self) -> KernelSpec {
        KernelSpec {
            family: "conv2d_grad_weight_blocked",
            variant: self.key(),
            source: ShaderSource::Generated(codegen::generate),
            entry_point: "main",
            workgroup_size: 64,
            bindings: &[Uniform, Uniform, ReadOnly, ReadOnly, ReadWrite],
            constants: &[],
        }
    }
}

/// Records one chunk's share of the weight gradient, as the direct kernel's
/// `encode_chunk` does: the padded input copy, the
/// grad_output rows padded to whole vec4s (unless they are already), then the
/// blocked kernel pass by pass over blocks of quads of positions, each pass
/// added in order onto what earlier ones (and earlier chunks) stored.
pub(crate) fn encode_chunk(
    rec: &mut Recorder,
    geometry: &Conv2dGeometry,
    chunk: &Chunk,
    variant: WeightVariant,
    buffers: &ChunkBuffers,
    max_elements: usize,
    grad_weight: &wgpu::Buffer,
) -> Result<()> {
    let (h, w) = (&geometry.height, &geometry.width);
    let row_len = variant.row_len(geometry);
    let planes = chunk.batch.len() * chunk.in_channels.len();
    let padded_len = planes * h.padded().max(0) as usize * row_len;
    let input = encode_padded_copy(rec, buffers.call, buffers.input, padded_len, row_len)?;

    let out_row_len = w.output.next_multiple_of(4);
    let grad_output = if out_row_len == w.output {
        buffers.grad_output.clone()
    } else {
        // grad_output as the input of a 1×1 convolution: its planes, unpadded.
        let channels = chunk.out_channels.len();
        let config = Conv2dConfig::new(channels, channels, 1);
        let plain =
            Conv2dGeometry::new(&config, &[chunk.batch.len(), channels, h.output, w.output])?;
        let call = rec.uniform("grad_output rows", &ConvParams::new(&plain, false)?);
        let len = chunk.batch.len() * channels * h.output * out_row_len;
        encode_padded_copy(rec, &call, buffers.grad_output, len, out_row_len)?
    };

    let row = geometry.in_channels_per_group() * h.kernel * w.kernel;
    let block_len = chunk.out_channels.len() * row;
    let quads = chunk.batch.len() * h.output * w.output.div_ceil(4);
    let splits = PositionSplits::new(quads, block_len, chunk.output_len(geometry), max_elements);
    let per_group = geometry.out_channels_per_group();
    let blocks_per_group = per_group.div_ceil(variant.ob);
    let block_of = |o: usize| (o / per_group) * blocks_per_group + (o % per_group) / variant.ob;
    let blocks = block_of(chunk.out_channels.end - 1) - block_of(chunk.out_channels.start) + 1;
    let rows = geometry.in_channels_per_group() * h.kernel;
    // Rows of these output channels were started by an earlier chunk unless
    // this is their first batch item and first input block.
    let started = chunk.batch.start > 0 || chunk.accumulate;
    let base = DispatchParams::for_chunk(chunk)?
        .with_row_len(row_len)?
        .with_out_row_len(out_row_len)?;
    let spec = variant.spec();
    for (k, pass) in splits.passes(quads).iter().enumerate() {
        let params = base
            .with_splits(pass.blocks, splits.split_len())?
            .with_slice(&pass.positions)?;
        encode_partial_sums(
            rec,
            PartialKernel {
                spec: &spec,
                invocations: Some(pass.blocks * blocks * rows),
            },
            buffers.call,
            params,
            &[&input, &grad_output],
            (block_len, chunk.out_channels.start * row),
            started || k > 0,
            grad_weight,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::runtime::registry::tests::validate;

    #[test]
    fn generated_variants_validate_with_naga() {
        for (ob, kernel_w, stride_w, dilation_w) in [
            (16, 3, 1, 1),
            (16, 1, 1, 1),
            (8, 7, 2, 1),
            (4, 16, 1, 1),
            (8, 5, 3, 2),
        ] {
            let variant = WeightVariant {
                ob,
                kernel_w,
                stride_w,
                dilation_w,
            };
            let spec = variant.spec();
            assert_eq!(WeightVariant::from_key(&spec.variant), variant);
            validate(&spec);
            assert!(!spec.source_text().contains("//{"), "{}", spec.label());
        }
    }
}
