//! The register-blocked weight gradient (`shaders/conv2d_grad_weight_blocked.wgsl`):
//! per invocation, OB output channels × RB kernel rows' taps of one input
//! channel, summed over a block of positions four columns at a time from a
//! padded, aligned copy of the input and vec4 rows of grad_output. Its variants
//! are generated per OB, kernel width, stride and dilation along the row
//! ([`codegen`]).

mod codegen;

use crate::config::Conv2dConfig;
use crate::error::Result;
use crate::geometry::{Conv2dGeometry, input_span};
use crate::gpu::conv::backward::reduce::{
    ChunkBuffers, PositionSplits, PositionSum, encode_position_sum,
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

/// vec4 accumulators per invocation at most (OB × RB × kernel width).
const MAX_ACCUMULATORS: usize = 72;

/// What one generated variant is specialised for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WeightVariant {
    /// Output channels per invocation: 16, 8, 4, 2 or 1.
    pub(super) ob: usize,
    /// Kernel rows per invocation.
    pub(super) rb: usize,
    pub(super) kernel_w: usize,
    pub(super) stride_w: usize,
    pub(super) dilation_w: usize,
}

impl WeightVariant {
    /// The variant for `geometry`, or `None` where the generated code cannot
    /// run it (kernel width over 16, or a quad's span over 128 columns). Of
    /// the blockings whose accumulators fit 72 vec4s, the one with the fewest
    /// loads per multiply-add: each quad loads OB vec4s of grad_output and RB
    /// input spans, for OB × RB × KW vec4 multiply-adds.
    pub(crate) fn new(geometry: &Conv2dGeometry) -> Option<Self> {
        let (h, w) = (&geometry.height, &geometry.width);
        let base = Self {
            ob: 4,
            rb: 1,
            kernel_w: w.kernel,
            stride_w: w.stride,
            dilation_w: w.dilation,
        };
        if w.kernel > MAX_KERNEL_W || base.span() > MAX_SPAN {
            return None;
        }
        let loads_per_fma =
            |v: &Self| (v.ob + v.rb * v.span_vecs()) as f64 / (v.ob * v.rb * v.kernel_w) as f64;
        // Never more output channels per invocation than a group has (a
        // depthwise layer's one), so that no accumulator is wasted.
        let per_group = geometry.out_channels_per_group().max(1);
        [16, 8, 4, 2, 1]
            .into_iter()
            .filter(|&ob| ob <= per_group || ob == 1)
            .flat_map(|ob| (1..=h.kernel.min(MAX_ACCUMULATORS)).map(move |rb| (ob, rb)))
            .filter(|&(ob, rb)| ob * rb * w.kernel <= MAX_ACCUMULATORS)
            .map(|(ob, rb)| Self { ob, rb, ..base })
            .min_by(|a, b| loads_per_fma(a).total_cmp(&loads_per_fma(b)))
    }

    /// Floats of one padded input row that a quad of positions reads.
    fn span(self) -> usize {
        input_span(4, self.stride_w, self.kernel_w, self.dilation_w)
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
        [
            self.ob,
            self.rb,
            self.kernel_w,
            self.stride_w,
            self.dilation_w,
        ]
        .iter()
        .map(|&v| v as u32)
        .collect()
    }

    /// The variant [`key`](Self::key) names.
    pub(super) fn from_key(values: &[u32]) -> Self {
        let v = |k: usize| values[k] as usize;
        Self {
            ob: v(0),
            rb: v(1),
            kernel_w: v(2),
            stride_w: v(3),
            dilation_w: v(4),
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
            workgroup_bytes: 0,
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
    let input = encode_padded_copy(rec, buffers.call, buffers.input, w, padded_len, row_len)?;

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
        encode_padded_copy(
            rec,
            &call,
            buffers.grad_output,
            &plain.width,
            len,
            out_row_len,
        )?
    };

    let row = geometry.in_channels_per_group() * h.kernel * w.kernel;
    let block_len = chunk.out_channels.len() * row;
    let quads = chunk.batch.len() * h.output * w.output.div_ceil(4);
    let splits = PositionSplits::new(quads, block_len, chunk.output_len(geometry), max_elements);
    let per_group = geometry.out_channels_per_group();
    let blocks_per_group = per_group.div_ceil(variant.ob);
    let block_of = |o: usize| (o / per_group) * blocks_per_group + (o % per_group) / variant.ob;
    let blocks = block_of(chunk.out_channels.end - 1) - block_of(chunk.out_channels.start) + 1;
    let rows = geometry.in_channels_per_group() * h.kernel.div_ceil(variant.rb);
    let base = DispatchParams::for_chunk(chunk)?
        .with_row_len(row_len)?
        .with_out_row_len(out_row_len)?;
    let sum = PositionSum {
        kernel: &variant.spec(),
        invocations_per_block: Some(blocks * rows),
        sources: &[&input, &grad_output],
        len: block_len,
        offset: chunk.out_channels.start * row,
        // Rows of these output channels were started by an earlier chunk
        // unless this is their first batch item and first input block.
        started: chunk.batch.start > 0 || chunk.accumulate,
    };
    encode_position_sum(rec, buffers.call, base, (quads, &splits), &sum, grad_weight)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::runtime::registry::tests::validate;

    #[test]
    fn generated_variants_validate_with_naga() {
        for (ob, rb, kernel_w, stride_w, dilation_w) in [
            (8, 3, 3, 1, 1),
            (16, 1, 1, 1, 1),
            (8, 1, 7, 2, 1),
            (4, 1, 16, 1, 1),
            (4, 3, 5, 3, 2),
        ] {
            let variant = WeightVariant {
                ob,
                rb,
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

    #[test]
    fn the_blocking_takes_the_fewest_loads_per_multiply_add() {
        let g = |k: usize| {
            let config = crate::config::Conv2dConfig::new(64, 64, k)
                .with_padding(crate::config::Padding::uniform(k as i64 / 2));
            Conv2dGeometry::new(&config, &[1, 64, 20, 20]).unwrap()
        };
        let v = WeightVariant::new(&g(3)).unwrap();
        assert_eq!((v.ob, v.rb), (8, 3), "3x3: every kernel row at once");
        let v = WeightVariant::new(&g(1)).unwrap();
        assert_eq!((v.ob, v.rb), (16, 1));
        let depthwise = crate::config::Conv2dConfig::new(8, 8, 3).with_groups(8);
        let v =
            WeightVariant::new(&Conv2dGeometry::new(&depthwise, &[1, 8, 9, 9]).unwrap()).unwrap();
        assert_eq!(
            (v.ob, v.rb),
            (1, 3),
            "depthwise: one output channel per group"
        );
        for k in [1, 2, 3, 5, 7, 11, 16] {
            let v = WeightVariant::new(&g(k)).unwrap();
            assert!(v.ob * v.rb * v.kernel_w <= MAX_ACCUMULATORS && v.rb <= k);
        }
        let wide = crate::config::Conv2dConfig::new(1, 1, (1, 17));
        assert!(WeightVariant::new(&Conv2dGeometry::new(&wide, &[1, 1, 1, 40]).unwrap()).is_none());
    }
}
