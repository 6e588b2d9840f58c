//! The register-blocked weight gradient (`shaders/conv2d_grad_weight_blocked.wgsl`):
//! per invocation, the taps of OB output channels × CB input channels × RB
//! kernel rows, one scalar accumulator each, summed over a block of positions
//! a run of quads at a time from a padded, aligned copy of the input and vec4
//! rows of grad_output. Its variants are generated per blocking, kernel width,
//! stride and dilation along the row ([`codegen`]).

mod codegen;

use crate::config::Conv2dConfig;
use crate::error::Result;
use crate::geometry::{Conv2dGeometry, input_span};
use crate::gpu::conv::backward::reduce::{
    ChunkBuffers, PositionSplits, PositionSum, encode_position_sum,
};
use crate::gpu::conv::forward::blocked::{Operands, encode_padded_copy};
use crate::gpu::conv::params::{ConvParams, DispatchParams};
use crate::gpu::conv::plan::Chunk;
use crate::gpu::conv::sharing::shared_load_lanes;
use crate::gpu::runtime::registry::Binding::{ReadOnly, ReadWrite, Uniform};
use crate::gpu::runtime::{KernelSpec, Recorder, ShaderSource};

/// Largest kernel width the generated code unrolls.
const MAX_KERNEL_W: usize = 16;

/// Largest span of one input row (floats) an invocation holds per step.
const MAX_SPAN: usize = 128;

/// Scalar accumulators per invocation at most (OB × CB × RB × kernel width).
/// Measured on llvmpipe (8×64×56×56, 3×3): 16 × 4 × 3 rows (576) took 37 ms,
/// 32 × 4 × 3 and 16 × 8 × 3 (1152) 40–41 ms, 16 × 2 × 3 (288) 42 ms.
///
/// The same where lanes share grad_output loads ([`WeightVariant::sharing`]).
/// Measured there (8 lanes, the four ResNet 3×3 layers at batch 8): 64 × 2 ×
/// 3 rows (1152) took 26–31 ms, 64 × 1 × 3 (576) 29–35, 32 × 2 × 3 (576)
/// 30–34, 16 × 4 × 3 (576) 36–42, 64 × 4 × 3 and 128 × 2 × 3 (2304) 29–39;
/// but 1152 made the first backward of 1×64×56×56 with an empty shader cache
/// 5.6 s where 576 took 3.3 (the kernel's compile), for about 10% of warm
/// speed.
const MAX_ACCUMULATORS: usize = 576;

/// Most accumulators per invocation of [`WeightVariant::quick`].
#[cfg(not(target_arch = "wasm32"))]
const QUICK_ACCUMULATORS: usize = 72;

/// Accumulators up to which a step takes two quads of positions.
const FEW_ACCUMULATORS: usize = 64;

/// What one generated variant is specialised for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WeightVariant {
    /// Output channels per invocation.
    pub(super) ob: usize,
    /// Input channels per invocation.
    pub(super) cb: usize,
    /// Kernel rows per invocation.
    pub(super) rb: usize,
    pub(super) kernel_w: usize,
    pub(super) stride_w: usize,
    pub(super) dilation_w: usize,
    /// Quads of adjacent positions along a row per loop step.
    pub(super) quads: usize,
    /// The subgroup width across which lanes share each step's grad_output
    /// loads; 0 where they do not (see [`sharing`](WeightVariant::sharing)).
    pub(super) lanes: usize,
    /// Most accumulators a blocking of this variant may take, [`sharing`]
    /// included: [`MAX_ACCUMULATORS`], or fewer for [`quick`]. Not part of
    /// the kernel's code.
    ///
    /// [`sharing`]: WeightVariant::sharing
    /// [`quick`]: WeightVariant::quick
    pub(super) cap: usize,
}

impl WeightVariant {
    /// The variant for `geometry`, or `None` where the generated code cannot
    /// run it (kernel width over 16, or a quad's span over 128 columns).
    ///
    /// Of the blockings whose accumulators fit [`MAX_ACCUMULATORS`], the one
    /// with the fewest loads per useful multiply-add ([`blocking`]). A step
    /// takes two quads only where the accumulators are few (a depthwise
    /// layer's): with many, the second quad's grad_output values cost more
    /// than its saved loads (measured on llvmpipe: 16 × 2 × 3 rows of 3×3 at
    /// two quads, 48 ms against 42 at one).
    ///
    /// [`blocking`]: WeightVariant::blocking
    pub(crate) fn new(geometry: &Conv2dGeometry) -> Option<Self> {
        Self::capped(geometry, MAX_ACCUMULATORS)
    }

    /// The variant for `geometry` that is quickest to build, for first
    /// calls while [`new`](Self::new)'s builds elsewhere: at most
    /// [`QUICK_ACCUMULATORS`]. On llvmpipe, with the forward's
    /// `Variant::quick` on the input gradient's phases, the first backward
    /// of 1×64×56×56 3×3 and 1×1 → 256 with an empty Mesa cache took
    /// 0.45–0.50 s against 2.9–3.1 s, the kernels 1.4–1.8× slower (36:
    /// 0.44–0.46 s, 1.5–1.9×).
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn quick(geometry: &Conv2dGeometry) -> Option<Self> {
        Self::capped(geometry, QUICK_ACCUMULATORS)
    }

    /// [`new`](Self::new) with at most `cap` accumulators.
    fn capped(geometry: &Conv2dGeometry, cap: usize) -> Option<Self> {
        let w = &geometry.width;
        let base = Self {
            ob: 1,
            cb: 1,
            rb: 1,
            kernel_w: w.kernel,
            stride_w: w.stride,
            dilation_w: w.dilation,
            quads: 1,
            lanes: 0,
            cap,
        };
        if w.kernel > MAX_KERNEL_W || base.span() > MAX_SPAN {
            return None;
        }
        let best = base.blocking(geometry)?;
        let two = Self { quads: 2, ..best };
        Some(
            if best.accumulators() <= FEW_ACCUMULATORS && two.span() <= MAX_SPAN {
                two
            } else {
                best
            },
        )
    }

    /// Of the blockings of output channels, input channels and kernel rows
    /// (this variant's kernel, quads and lanes) with at most its cap
    /// ([`MAX_ACCUMULATORS`] but for [`quick`](Self::quick)),
    /// the one with the fewest [`loads`](WeightVariant::loads_per_fma) per
    /// useful multiply-add; the fewer accumulators between equals.
    fn blocking(self, geometry: &Conv2dGeometry) -> Option<Self> {
        let (out_per_group, in_per_group) = (
            geometry.out_channels_per_group().max(1),
            geometry.in_channels_per_group().max(1),
        );
        let blocks = |len: usize| {
            [1, 2, 4, 8, 16, 32, 64]
                .into_iter()
                .filter(move |&b| b == 1 || b / 2 < len)
        };
        let cost = |v: &Self| v.loads_per_fma(geometry);
        blocks(out_per_group)
            .flat_map(|ob| blocks(in_per_group).map(move |cb| (ob, cb)))
            .flat_map(|(ob, cb)| {
                (1..=geometry.height.kernel).map(move |rb| Self { ob, cb, rb, ..self })
            })
            .filter(|v| v.accumulators() <= v.cap)
            .min_by(|a, b| {
                cost(a)
                    .total_cmp(&cost(b))
                    .then(a.accumulators().cmp(&b.accumulators()))
            })
    }

    /// vec4 loads per useful multiply-add: a step loads OB × QUADS vec4s of
    /// grad_output (where lanes share them, a lane's share) and CB × RB input
    /// spans, for OB × CB × RB × KW × 4 × QUADS multiply-adds, of which those
    /// of channels and rows past a group's or the kernel's end are wasted,
    /// and where lanes share, those of the padding invocations.
    fn loads_per_fma(self, geometry: &Conv2dGeometry) -> f64 {
        let units = self.ob * self.quads;
        let loads = match self.lanes {
            0 => units,
            lanes => units.div_ceil(lanes),
        } + self.cb * self.rb * self.span_vecs();
        let used = |len: usize, block: usize| {
            let len = len.max(1);
            len as f64 / len.next_multiple_of(block) as f64
        };
        let useful = used(geometry.out_channels_per_group(), self.ob)
            * used(geometry.in_channels_per_group(), self.cb)
            * used(geometry.height.kernel, self.rb)
            * used(self.per_block(geometry), self.lanes.max(1));
        loads as f64 / (self.fmas() as f64 * useful)
    }

    /// The variant to run where subgroups of `width` lanes (`None`: none)
    /// can share each step's grad_output loads. The invocations of one block
    /// of output channels and positions all read the same ones, so one lane
    /// loads each and broadcasts it. Their count is padded to a multiple of
    /// the width, so the variant shares only where that takes fewer loads per
    /// useful multiply-add. It is blocked anew for shared loads (same quads),
    /// up to its cap ([`MAX_ACCUMULATORS`]): with grad_output cheap, more output
    /// channels per invocation pay (3×3, 64 channels: 64 × 1 × 3 rows, 8 + 6
    /// vec4s per step, where the plain kernel's 16 × 4 × 3 loads 16 + 24 for
    /// as many weights). At most 32 lanes.
    pub(crate) fn sharing(self, width: Option<usize>, geometry: &Conv2dGeometry) -> Self {
        let plain = Self { lanes: 0, ..self };
        width
            .filter(|&w| (2..=32).contains(&w))
            .and_then(|lanes| Self { lanes, ..plain }.blocking(geometry))
            .filter(|shared| shared.loads_per_fma(geometry) < plain.loads_per_fma(geometry))
            .unwrap_or(plain)
    }

    /// Invocations per block of output channels and positions: one per
    /// block of input channels and kernel rows, unpadded.
    fn per_block(self, geometry: &Conv2dGeometry) -> usize {
        geometry.in_channels_per_group().div_ceil(self.cb)
            * geometry.height.kernel.div_ceil(self.rb)
    }

    /// Scalar accumulators per invocation: one per weight it sums.
    fn accumulators(self) -> usize {
        self.ob * self.cb * self.rb * self.kernel_w
    }

    /// Floats of partial sums per invocation: its accumulators, padded to
    /// whole vec4s.
    fn accumulators_padded(self) -> usize {
        self.accumulators().next_multiple_of(4)
    }

    /// Invocations per block of positions for `chunk`: blocks of output
    /// channels, times blocks of input channels and kernel rows (padded to a
    /// multiple of the lanes that share loads).
    fn invocations(self, geometry: &Conv2dGeometry, chunk: &Chunk) -> (usize, usize) {
        let per_group = geometry.out_channels_per_group();
        let blocks_per_group = per_group.div_ceil(self.ob);
        let block_of = |o: usize| (o / per_group) * blocks_per_group + (o % per_group) / self.ob;
        let blocks = block_of(chunk.out_channels.end - 1) - block_of(chunk.out_channels.start) + 1;
        let rows = self.per_block(geometry).next_multiple_of(self.lanes.max(1));
        (blocks, rows)
    }

    /// Floats of partial sums one block of positions takes for `chunk`: at
    /// most one binding's worth, or the chunk runs the direct kernel (blocks
    /// past a group's channels can make it more than the chunk's weights).
    pub(crate) fn partials_per_block(self, geometry: &Conv2dGeometry, chunk: &Chunk) -> usize {
        let (blocks, rows) = self.invocations(geometry, chunk);
        blocks * rows * self.accumulators_padded()
    }

    /// vec4s of partial sums per invocation of the reduction: up to 8, as
    /// many as divide an invocation's accumulators, so that the divisions by
    /// uniform values (which llvmpipe does lane by lane) are shared by up to
    /// 32 weights (8×512×7×7 3×3: 9.9 ms at one vec4, 8.5 at four, 6.9 at
    /// 16). Each adds up to [`MAX_SPLITS`](crate::gpu::conv::backward::reduce::MAX_SPLITS)
    /// vec4s: 8 keeps that loop, and
    /// the 8 of its four weights, under the driver's limit.
    pub(super) fn reduce_quads(self) -> usize {
        [8, 4, 2, 1]
            .into_iter()
            .find(|per| (self.accumulators_padded() / 4).is_multiple_of(*per))
            .unwrap_or(1)
    }

    /// Multiply-adds per step.
    fn fmas(self) -> usize {
        self.accumulators() * 4 * self.quads
    }

    /// Floats of one padded input row that a step's positions read.
    fn span(self) -> usize {
        input_span(
            4 * self.quads,
            self.stride_w,
            self.kernel_w,
            self.dilation_w,
        )
    }

    /// vec4 loads per input row and step.
    pub(super) fn span_vecs(self) -> usize {
        self.span().div_ceil(4)
    }

    /// Elements of one plane of the padded input copy and of one plane of
    /// grad_output with aligned rows: what a chunk must fit in a binding.
    pub(crate) fn copy_planes(self, geometry: &Conv2dGeometry) -> (usize, usize) {
        let h = &geometry.height;
        (
            h.padded().max(0) as usize * self.row_len(geometry),
            h.output * self.out_row_len(geometry),
        )
    }

    /// Steps along one output row.
    fn runs_per_row(self, geometry: &Conv2dGeometry) -> usize {
        geometry.width.output.div_ceil(4 * self.quads)
    }

    /// Length of one row of grad_output as the kernel reads it: whole steps.
    fn out_row_len(self, geometry: &Conv2dGeometry) -> usize {
        geometry.width.output.next_multiple_of(4 * self.quads)
    }

    /// Length of one row of the padded input copy: the padded width, or more
    /// where the last quad's aligned loads reach past it; a multiple of 4.
    fn row_len(self, geometry: &Conv2dGeometry) -> usize {
        let runs = self.runs_per_row(geometry).max(1);
        let reach = (runs - 1) * 4 * self.quads * self.stride_w + 4 * self.span_vecs();
        (geometry.width.padded().max(0) as usize)
            .max(reach)
            .next_multiple_of(4)
    }

    /// The values that identify the variant in its kernel key.
    fn key(self) -> Vec<u32> {
        [
            self.ob,
            self.cb,
            self.rb,
            self.kernel_w,
            self.stride_w,
            self.dilation_w,
            self.quads,
            self.lanes,
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
            cb: v(1),
            rb: v(2),
            kernel_w: v(3),
            stride_w: v(4),
            dilation_w: v(5),
            quads: v(6),
            lanes: v(7),
            cap: MAX_ACCUMULATORS,
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

    /// The pass that adds this variant's partial sums: call, dispatch,
    /// partials, result.
    fn reduce_spec(self) -> KernelSpec {
        KernelSpec {
            family: "reduce_weight_blocked",
            variant: self.key(),
            source: ShaderSource::Generated(codegen::generate_reduce),
            entry_point: "main",
            workgroup_size: 64,
            bindings: &[Uniform, Uniform, ReadOnly, ReadWrite],
            constants: &[],
            workgroup_bytes: 0,
        }
    }
}

/// Records one chunk's share of the weight gradient, as the direct kernel's
/// `encode_chunk` does: the padded input copy, the
/// grad_output rows padded to whole vec4s (unless they are already), then the
/// blocked kernel pass by pass over blocks of runs of positions, each pass
/// added in order onto what earlier ones (and earlier chunks) stored.
/// `plain`'s partial sums for one block of positions must fit
/// `max_elements`; where the device's lanes can share loads, the variant
/// [`sharing`](WeightVariant::sharing) them runs instead if its fit too.
pub(crate) fn encode_chunk(
    rec: &mut Recorder,
    geometry: &Conv2dGeometry,
    chunk: &Chunk,
    plain: WeightVariant,
    buffers: &ChunkBuffers,
    max_elements: usize,
    grad_weight: &wgpu::Buffer,
) -> Result<()> {
    let variant = Some(plain.sharing(shared_load_lanes(rec.context()), geometry))
        .filter(|shared| shared.partials_per_block(geometry, chunk) <= max_elements)
        .unwrap_or(plain);
    let (h, w) = (&geometry.height, &geometry.width);
    let row_len = variant.row_len(geometry);
    let planes = chunk.batch.len() * chunk.in_channels.len();
    let padded_len = planes * h.padded().max(0) as usize * row_len;
    let input = encode_padded_copy(
        rec,
        buffers.call,
        buffers.input,
        w,
        (padded_len, row_len),
        Operands::F32,
    )?;

    let out_row_len = variant.out_row_len(geometry);
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
            (len, out_row_len),
            Operands::F32,
        )?
    };

    let row = geometry.in_channels_per_group() * h.kernel * w.kernel;
    let block_len = chunk.out_channels.len() * row;
    let runs = chunk.batch.len() * h.output * variant.runs_per_row(geometry);
    let (blocks, rows) = variant.invocations(geometry, chunk);
    let partials_per_block = variant.partials_per_block(geometry, chunk);
    // Blocks of positions as without shared loads (whose padding takes more
    // partial sums), so that the sums are the same bit for bit.
    let splits = PositionSplits::new(
        runs,
        plain.partials_per_block(geometry, chunk),
        chunk.output_len(geometry),
        max_elements,
    )
    .holding(partials_per_block, max_elements);
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
        // The reduction takes `reduce_quads` vec4s of partial sums per invocation.
        own_layout: Some((
            &variant.reduce_spec(),
            partials_per_block / (4 * variant.reduce_quads()),
            partials_per_block,
        )),
    };
    encode_position_sum(rec, buffers.call, base, (runs, &splits), &sum, grad_weight)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::conv::backward::reduce::MAX_SPLITS;
    use crate::gpu::runtime::registry::tests::validate;

    #[test]
    fn generated_variants_validate_with_naga() {
        for (ob, cb, rb, kernel_w, stride_w, dilation_w, quads, lanes) in [
            (16, 4, 3, 3, 1, 1, 1, 0),
            (16, 4, 3, 3, 1, 1, 1, 8),
            (32, 16, 1, 1, 1, 1, 1, 0),
            (32, 16, 1, 1, 1, 1, 1, 4),
            (8, 1, 1, 7, 2, 1, 1, 0),
            (4, 2, 1, 16, 1, 1, 1, 0),
            (4, 3, 3, 5, 3, 2, 1, 0),
            (4, 3, 3, 5, 3, 2, 2, 8),
            (1, 1, 3, 3, 1, 1, 2, 0),
        ] {
            let variant = WeightVariant {
                ob,
                cb,
                rb,
                kernel_w,
                stride_w,
                dilation_w,
                quads,
                lanes,
                cap: MAX_ACCUMULATORS,
            };
            let spec = variant.spec();
            assert_eq!(WeightVariant::from_key(&spec.variant), variant);
            validate(&spec);
            assert!(!spec.source_text().contains("//{"), "{}", spec.label());
            let reduce = variant.reduce_spec();
            validate(&reduce);
            // Its loops: per vec4, four weights read, every split's vec4
            // added, four stored.
            let steps = variant.reduce_quads() * (4 + MAX_SPLITS + 4);
            assert!(
                steps < crate::gpu::runtime::loops::LOOP_BUDGET,
                "{variant:?}"
            );
            assert!(!reduce.source_text().contains("//{"), "{}", reduce.label());
        }
    }

    #[test]
    fn the_blocking_takes_the_fewest_loads_per_multiply_add() {
        let g = |k: usize, channels: usize| {
            let config = crate::config::Conv2dConfig::new(channels, channels, k)
                .with_padding(crate::config::Padding::uniform(k as i64 / 2));
            Conv2dGeometry::new(&config, &[1, channels, 20, 20]).unwrap()
        };
        let blocking = |v: WeightVariant| (v.ob, v.cb, v.rb, v.quads);
        let v = WeightVariant::new(&g(3, 64)).unwrap();
        assert_eq!(blocking(v), (16, 4, 3, 1), "3x3: every kernel row at once");
        let v = WeightVariant::new(&g(3, 3)).unwrap();
        assert!(
            v.cb <= 4 && v.ob <= 4,
            "no block past twice a group's channels: {v:?}"
        );
        let depthwise = crate::config::Conv2dConfig::new(8, 8, 3).with_groups(8);
        let v =
            WeightVariant::new(&Conv2dGeometry::new(&depthwise, &[1, 8, 9, 9]).unwrap()).unwrap();
        assert_eq!(
            blocking(v),
            (1, 1, 3, 2),
            "depthwise: one channel per group, two quads per step"
        );
        for k in [1, 2, 3, 5, 7, 11, 16] {
            let v = WeightVariant::new(&g(k, 64)).unwrap();
            assert!(v.accumulators() <= MAX_ACCUMULATORS && v.rb <= k, "{v:?}");
            let shared = v.sharing(Some(8), &g(k, 64));
            assert!(
                shared.accumulators() <= MAX_ACCUMULATORS && shared.quads == v.quads,
                "{shared:?}"
            );
        }
        // Shared grad_output loads: more output channels per invocation.
        let shared = WeightVariant::new(&g(3, 64))
            .unwrap()
            .sharing(Some(8), &g(3, 64));
        assert_eq!((blocking(shared), shared.lanes), ((64, 1, 3, 1), 8));
        let v = WeightVariant::new(&g(3, 64)).unwrap();
        assert_eq!(v.sharing(None, &g(3, 64)), v, "no subgroups: as it is");
        assert_eq!(v.sharing(Some(64), &g(3, 64)), v, "over 32 lanes: as it is");
        // One invocation per block of positions (depthwise): padding it to a
        // subgroup would load more, not less.
        let depthwise = Conv2dGeometry::new(&depthwise, &[1, 8, 9, 9]).unwrap();
        let v = WeightVariant::new(&depthwise).unwrap();
        assert_eq!(v.sharing(Some(8), &depthwise).lanes, 0);
        let wide = crate::config::Conv2dConfig::new(1, 1, (1, 17));
        assert!(WeightVariant::new(&Conv2dGeometry::new(&wide, &[1, 1, 1, 40]).unwrap()).is_none());
    }
}
