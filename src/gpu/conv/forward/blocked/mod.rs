//! The register-blocked kernel (`shaders/conv2d_blocked.wgsl`) behind the
//! `blocked` and `depthwise` algorithms: its variants, generated per kernel
//! width, stride and dilation along the row ([`codegen`]), and the two passes
//! that prepare what it reads: a padded, row-aligned copy of the input
//! (`shaders/pad_input.wgsl`) and a packed weight (`shaders/pack_weight.wgsl`).

mod codegen;

use super::ForwardBuffers;
use crate::error::Result;
use crate::geometry::{Axis, Conv2dGeometry, input_span};
use crate::gpu::conv::conv_source;
use crate::gpu::conv::params::DispatchParams;
use crate::gpu::conv::plan::Chunk;
use crate::gpu::conv::sharing::shared_load_lanes;
use crate::gpu::runtime::loops::{loop_steps, slices};
use crate::gpu::runtime::registry::Binding::{ReadOnly, ReadWrite, Uniform};
use crate::gpu::runtime::{KernelSpec, Recorder, ShaderSource, WrittenKernel};

/// Output channels per invocation (and per packed weight block) of the blocked
/// algorithm, when a group has more than 8; the depthwise algorithm computes one.
pub(crate) const BLOCK: usize = 16;

/// Output channels per invocation of pointwise convolutions on CPU adapters
/// (see [`Variant::on_cpu`]).
pub(crate) const WIDE_BLOCK: usize = 32;

/// The narrower blocks, for groups of at most 8 and at most 4 output channels
/// (the input gradient's phases of a layer with 3 input channels, say), where a
/// 16-wide block would compute mostly nothing.
const NARROW_BLOCKS: [usize; 2] = [4, 8];

/// Output channels per invocation of [`Variant::quick`].
#[cfg(not(target_arch = "wasm32"))]
const QUICK_BLOCK: usize = 8;

/// Most vec4s of outputs along a row per invocation, by output channels per
/// invocation and stride along the row. With 16 channels, more than three
/// took seconds to compile on llvmpipe while every output was its own store
/// (a loop over the lanes each); with vec4 stores six compile in under a
/// second and run faster (8×64×56×56 3×3: 51.4 → 42.2 ms; 1×1 → 256: 31.2 →
/// 27.0 ms). Seven, where the stride is 1, cover rows of 28 and 56 outputs
/// without a partial run (8×128×28×28: 48.3 → 33.6 ms, 8×64×56×56: 43.1 →
/// 36.2 ms), at a slower first compile (3×3: 1.05 → 1.61 s); at stride 2
/// the wider input span made the stem slower (43.1 → 47.7 ms).
fn max_vecs(block: usize, stride_w: usize) -> usize {
    match block {
        WIDE_BLOCK => 3,
        8 => 4,
        BLOCK if stride_w == 1 => 7,
        _ => 6,
    }
}

/// Output channels per invocation of the blocked algorithm for groups of
/// `out_per_group` output channels: the narrowest block that holds them, up to
/// [`BLOCK`].
pub(crate) fn block_for(out_per_group: usize) -> usize {
    NARROW_BLOCKS
        .into_iter()
        .find(|&b| out_per_group <= b)
        .unwrap_or(BLOCK)
}

/// Reduction rows per loop step where the kernel is one column wide, so that
/// an accumulator takes more than one multiply-add between its spills: 1×1
/// 8×64×56×56 → 256 on llvmpipe, 34.3 ms at one row, 31.4 at two, 31.3 at
/// four. Wider kernels gain nothing (3×3: 51.7 ms at one and at two).
const ROWS_ONE_TAP: usize = 2;

/// Largest kernel width the generated code unrolls.
const MAX_KERNEL_W: usize = 16;

/// Largest span of one row (floats) an invocation holds in registers.
const MAX_SPAN: usize = 256;

/// Invocations per workgroup of the three kernels.
const WORKGROUP_SIZE: u32 = 64;

/// Interior vec4s of the padded copy per invocation (each run of them costs
/// one load more than it stores).
const PAD_RUN: usize = 4;

/// What the blocked kernel multiplies: the values themselves, or the values
/// rounded to bfloat16 (`Precision::Medium`, PyTorch's `medium`: bfloat16
/// products, exact in f32, summed in f32). Its padded input copy and packed
/// weight hold what it multiplies, as four floats per vec4 or, rounded, as
/// two words (`shaders/quad_f32.wgsl`, `shaders/quad_bf16.wgsl`): half the
/// bytes and, on llvmpipe, where every load is a loop over the lanes,
/// 0.74–0.80× the kernel time on the ResNet 3×3 layers (docs/benchmarks.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Operands {
    F32,
    Bf16,
}

/// bfloat16's unit roundoff: 8 significant bits.
const BF16_UNIT_ROUNDOFF: f64 = 1.0 / 256.0;

/// The bound on one output of the kernel on bfloat16 operands
/// (`Precision::Medium`), for a sum of `terms` products (the bias counted
/// as one) whose absolute values add up to `abs_sum`: each product of
/// rounded operands within `(2u_b + u_b²)` of its own, the f32 sum within
/// `(terms + 2)·u` of the rounded terms' (see `Precision`).
pub(crate) fn bf16_operand_bound(terms: usize, abs_sum: f64) -> f64 {
    let (ub, u) = (BF16_UNIT_ROUNDOFF, f64::from(f32::EPSILON));
    let direct = (terms as f64 + 2.0) * u;
    ((2.0 * ub + ub * ub) * (1.0 + direct) + direct) * abs_sum
}

impl Operands {
    /// 4-byte words per value held.
    fn words(self, values: usize) -> usize {
        match self {
            Operands::F32 => values,
            Operands::Bf16 => values.div_ceil(2),
        }
    }
}

/// The padded input copy of the columns inside the source window: call,
/// dispatch, input, padded, input (as vec4s).
pub(crate) const PAD_INPUT: WrittenKernel = WrittenKernel::new(
    "pad_input",
    conv_source!("pad_input.wgsl", "quad_f32.wgsl"),
    WORKGROUP_SIZE,
    &[Uniform, Uniform, ReadOnly, ReadWrite, ReadOnly],
)
.entry("pad_input_interior", "main_interior")
.with_constants("pad_input_interior", &[("RUN", PAD_RUN as f64)]);

/// The padded input copy of the other columns, through the index map.
pub(crate) const PAD_INPUT_BORDER: WrittenKernel =
    PAD_INPUT.entry("pad_input_border", "main_border");

/// [`PAD_INPUT`] rounding to bfloat16.
pub(crate) const PAD_INPUT_BF16: WrittenKernel = WrittenKernel::new(
    "pad_input_bf16",
    conv_source!("pad_input.wgsl", "half_bits.wgsl", "quad_bf16.wgsl"),
    WORKGROUP_SIZE,
    &[Uniform, Uniform, ReadOnly, ReadWrite, ReadOnly],
)
.entry("pad_input_interior_bf16", "main_interior")
.with_constants(
    "pad_input_interior_bf16",
    &[("RUN", PAD_RUN as f64), ("BFLOAT", 1.0)],
);

/// [`PAD_INPUT_BORDER`] rounding to bfloat16.
pub(crate) const PAD_INPUT_BORDER_BF16: WrittenKernel =
    PAD_INPUT_BF16.entry("pad_input_border_bf16", "main_border");

/// The packed weight, in blocks of the `BLOCK` output channels `constants`
/// sets: call, dispatch, weight, packed.
const fn pack_weight(constants: &'static [(&'static str, f64)]) -> WrittenKernel {
    WrittenKernel::new(
        "pack_weight",
        conv_source!("pack_weight.wgsl", "quad_f32.wgsl"),
        WORKGROUP_SIZE,
        &[Uniform, Uniform, ReadOnly, ReadWrite],
    )
    .with_constants("pack_weight", constants)
}

/// [`pack_weight`] rounding to bfloat16.
const fn pack_weight_bf16(constants: &'static [(&'static str, f64)]) -> WrittenKernel {
    WrittenKernel::new(
        "pack_weight_bf16",
        conv_source!("pack_weight.wgsl", "half_bits.wgsl", "quad_bf16.wgsl"),
        WORKGROUP_SIZE,
        &[Uniform, Uniform, ReadOnly, ReadWrite],
    )
    .with_constants("pack_weight_bf16", constants)
}

/// The packing kernels, one per operand type and block width: of the weight
/// as it is, and of the transposed convolution's weight from the forward one
/// (see `shaders/pack_weight.wgsl`).
pub(crate) const PACK_WEIGHT: [(Operands, usize, [WrittenKernel; 2]); 7] = [
    (
        Operands::F32,
        WIDE_BLOCK,
        [
            pack_weight(&[("BLOCK", WIDE_BLOCK as f64), ("TRANSPOSED", 0.0)]),
            pack_weight(&[("BLOCK", WIDE_BLOCK as f64), ("TRANSPOSED", 1.0)]),
        ],
    ),
    (
        Operands::F32,
        4,
        [
            pack_weight(&[("BLOCK", 4.0), ("TRANSPOSED", 0.0)]),
            pack_weight(&[("BLOCK", 4.0), ("TRANSPOSED", 1.0)]),
        ],
    ),
    (
        Operands::F32,
        8,
        [
            pack_weight(&[("BLOCK", 8.0), ("TRANSPOSED", 0.0)]),
            pack_weight(&[("BLOCK", 8.0), ("TRANSPOSED", 1.0)]),
        ],
    ),
    (
        Operands::F32,
        BLOCK,
        [
            pack_weight(&[("BLOCK", BLOCK as f64), ("TRANSPOSED", 0.0)]),
            pack_weight(&[("BLOCK", BLOCK as f64), ("TRANSPOSED", 1.0)]),
        ],
    ),
    (
        Operands::Bf16,
        4,
        [
            pack_weight_bf16(&[("BLOCK", 4.0), ("BFLOAT", 1.0), ("TRANSPOSED", 0.0)]),
            pack_weight_bf16(&[("BLOCK", 4.0), ("BFLOAT", 1.0), ("TRANSPOSED", 1.0)]),
        ],
    ),
    (
        Operands::Bf16,
        8,
        [
            pack_weight_bf16(&[("BLOCK", 8.0), ("BFLOAT", 1.0), ("TRANSPOSED", 0.0)]),
            pack_weight_bf16(&[("BLOCK", 8.0), ("BFLOAT", 1.0), ("TRANSPOSED", 1.0)]),
        ],
    ),
    (
        Operands::Bf16,
        BLOCK,
        [
            pack_weight_bf16(&[
                ("BLOCK", BLOCK as f64),
                ("BFLOAT", 1.0),
                ("TRANSPOSED", 0.0),
            ]),
            pack_weight_bf16(&[
                ("BLOCK", BLOCK as f64),
                ("BFLOAT", 1.0),
                ("TRANSPOSED", 1.0),
            ]),
        ],
    ),
];

/// What one generated variant is specialised for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Variant {
    /// Output channels per invocation: [`WIDE_BLOCK`], [`BLOCK`], 8, 4 or 1.
    block: usize,
    kernel_w: usize,
    stride_w: usize,
    dilation_w: usize,
    /// vec4s of outputs along the row per invocation.
    vecs: usize,
    /// A pointwise convolution run over planes flattened into one row
    /// ([`Conv2dGeometry::flattened`]): long rows, few partial runs.
    flat: bool,
    /// Reduction rows (input channel, kernel row) per loop step.
    rows: usize,
    /// Whether outputs are stored as vec4s: rows a whole number of them.
    /// Each store is a loop over the lanes on llvmpipe, a vec4 costing about
    /// what one float does (1×1 8×64×56×56 → 256: 40.0 → 35.0 ms).
    vec_store: bool,
    /// What it multiplies: see [`Operands`].
    operands: Operands,
    /// The subgroup width across which lanes share each step's weight loads;
    /// 0 where they do not (see [`sharing`](Variant::sharing)).
    lanes: usize,
}

impl Variant {
    /// The variant for `geometry`. The number of vec4s per invocation trades
    /// outputs computed past the row's end against the per-run cost of loading
    /// weights (about two vec4s' worth of work): `runs * (vecs + 2)` is least.
    pub(crate) fn new(geometry: &Conv2dGeometry, block: usize) -> Self {
        let flat = geometry.is_pointwise();
        let geometry = if flat {
            geometry.flattened()
        } else {
            *geometry
        };
        let w = &geometry.width;
        let cost = |vecs: usize| w.output.div_ceil(4 * vecs) * (vecs + 2);
        // Only as many vec4s as keep the input span within MAX_SPAN, where
        // one vec4 does.
        let fits = |vecs: usize| input_span(4 * vecs, w.stride, w.kernel, w.dilation) <= MAX_SPAN;
        let most = (1..=max_vecs(block, w.stride))
            .rev()
            .find(|&v| fits(v))
            .unwrap_or(1);
        let vecs = (1..=most).rev().min_by_key(|&v| cost(v)).unwrap_or(1);
        Self {
            block,
            kernel_w: w.kernel,
            stride_w: w.stride,
            dilation_w: w.dilation,
            vecs,
            flat,
            rows: if w.kernel == 1 { ROWS_ONE_TAP } else { 1 },
            vec_store: w.output.is_multiple_of(4),
            operands: Operands::F32,
            lanes: 0,
        }
    }

    /// This variant with each step's weights loaded once per subgroup of
    /// `width` lanes (`None`: by every invocation) and broadcast: an
    /// invocation of a 3×3 kernel with 16 channels then loads one or two
    /// vec4s of weights per reduction row instead of twelve. A block's
    /// invocations are padded to a multiple of the width. Only where it
    /// packs float32 weights (one channel per invocation loads one float
    /// per tap; bfloat16 weights come in pairs) and the width is at most 32.
    pub(crate) fn sharing(self, width: Option<usize>) -> Self {
        let lanes = width
            .filter(|&w| w <= 32 && self.packs() && self.operands == Operands::F32)
            .unwrap_or(0);
        Self { lanes, ..self }
    }

    /// This variant multiplying operands rounded to bfloat16, where it packs
    /// its weight (bfloat16 values come in pairs: four output channels or
    /// more per invocation) in blocks of at most [`BLOCK`] (none of
    /// [`WIDE_BLOCK`]: a CPU's pointwise kernel stays on float32).
    pub(crate) fn on_bf16(self) -> Option<Self> {
        (self.packs() && self.block <= BLOCK).then_some(Self {
            operands: Operands::Bf16,
            ..self
        })
    }

    /// The variant for `geometry` that is quickest to build, for first
    /// calls while a faster one builds elsewhere: blocks of at most
    /// [`QUICK_BLOCK`] output channels and one vec4 of outputs per
    /// invocation, on float32 operands. On llvmpipe, first calls with an
    /// empty Mesa cache at batch 1 (1×64×56×56 3×3 and 1×1 → 256,
    /// 1×256×14×14 3×3, the 7×7 stem): 0.17–0.32 s against 1.5–2.6 s, the
    /// kernel 1.5–2.2× slower (4 channels: 0.14–0.26 s, 2.4–4.4× slower;
    /// 16: 0.26–0.5 s).
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn quick(geometry: &Conv2dGeometry) -> Self {
        let block = block_for(geometry.out_channels_per_group()).min(QUICK_BLOCK);
        Self {
            vecs: 1,
            ..Self::new(geometry, block)
        }
    }

    /// What it multiplies.
    pub(crate) fn operands(self) -> Operands {
        self.operands
    }

    /// Whether, on float32 operands, it reads the input of `geometry` (the
    /// call's) where it lies, with no padded copy: nothing to pad and rows
    /// (planes, for a pointwise convolution) a whole number of vec4s.
    pub(crate) fn reads_input_in_place(self, geometry: &Conv2dGeometry) -> bool {
        self.operands == Operands::F32 && in_place(&self.kernel_geometry(geometry))
    }

    /// The variant of the blocked algorithm for `geometry`: blocks of as
    /// many output channels as [`block_for`] gives its groups.
    pub(crate) fn blocked(geometry: &Conv2dGeometry) -> Self {
        Self::new(geometry, block_for(geometry.out_channels_per_group()))
    }

    /// This variant as it runs on a CPU adapter: a pointwise convolution of
    /// at least [`WIDE_BLOCK`] output channels per group takes that many per
    /// invocation, three vec4s of outputs each, so that each input vec4 it
    /// loads (most of its loads, once weights are shared across subgroups)
    /// serves twice the output channels. On llvmpipe, 1×1 8×64×56×56 → 256:
    /// 20.3 ms against 27.8 at 16 channels and seven vec4s (two and four
    /// vec4s: 21.8–22.0, 22.3–23.4 ms); without shared weight loads 35.3
    /// against 34.8. Not on GPUs, whose registers it would exceed; float32
    /// operands only (the bfloat16 kernel keeps 16).
    pub(crate) fn on_cpu(self, geometry: &Conv2dGeometry) -> Self {
        if self.flat
            && self.block == BLOCK
            && self.operands == Operands::F32
            && geometry.out_channels_per_group() >= WIDE_BLOCK
        {
            Self::new(geometry, WIDE_BLOCK)
        } else {
            self
        }
    }

    /// The geometry the kernel runs: flattened for a pointwise convolution.
    pub(crate) fn kernel_geometry(self, geometry: &Conv2dGeometry) -> Conv2dGeometry {
        if self.flat {
            geometry.flattened()
        } else {
            *geometry
        }
    }

    /// Output channels per invocation.
    pub(crate) fn block(self) -> usize {
        self.block
    }

    /// Outputs along the row per invocation.
    fn outs(self) -> usize {
        4 * self.vecs
    }

    /// Floats of one padded input row that one invocation's outputs read.
    fn span(self) -> usize {
        input_span(self.outs(), self.stride_w, self.kernel_w, self.dilation_w)
    }

    /// vec4 loads per input row.
    fn span_vecs(self) -> usize {
        self.span().div_ceil(4)
    }

    /// Whether the kernel reads a packed weight; with one output channel per
    /// invocation the packed layout is the weight's own.
    pub(crate) fn packs(self) -> bool {
        self.block > 1
    }

    /// Why the generated code cannot run this variant, if it cannot.
    pub(crate) fn unsupported(self) -> Option<String> {
        (self.kernel_w > MAX_KERNEL_W || self.span() > MAX_SPAN).then(|| {
            format!(
                "it needs a kernel width of at most {MAX_KERNEL_W} and at most {MAX_SPAN} input columns per {} outputs, got kernel_size[1]={}, stride[1]={}, dilation[1]={} ({} columns)",
                self.outs(),
                self.kernel_w,
                self.stride_w,
                self.dilation_w,
                self.span()
            )
        })
    }

    /// Length of one row of the padded input copy: the padded width, or more
    /// where the last run's aligned loads reach past it; a multiple of 4, of 8
    /// on bfloat16 operands (read eight at a time from even quads).
    pub(crate) fn row_len(self, geometry: &Conv2dGeometry) -> usize {
        let runs = geometry.width.output.div_ceil(self.outs()).max(1);
        let reach = (runs - 1) * self.outs() * self.stride_w + 4 * self.span_vecs();
        let align = match self.operands {
            Operands::F32 => 4,
            Operands::Bf16 => 8,
        };
        (geometry.width.padded().max(0) as usize)
            .max(reach)
            .next_multiple_of(align)
    }

    /// Elements of one plane of the padded input copy.
    pub(crate) fn padded_plane(self, geometry: &Conv2dGeometry) -> usize {
        geometry.height.padded().max(0) as usize * self.row_len(geometry)
    }

    /// 4-byte words of the packed weight of `geometry` (its [`packed_len`]
    /// values, as the variant holds them).
    pub(crate) fn packed_weight_words(self, geometry: &Conv2dGeometry) -> usize {
        self.operands.words(packed_len(geometry, self.block))
    }

    /// The values that identify the variant in its kernel key.
    fn key(self) -> Vec<u32> {
        [
            self.block,
            self.kernel_w,
            self.stride_w,
            self.dilation_w,
            self.vecs,
            usize::from(self.flat),
            self.rows,
            usize::from(self.vec_store),
            usize::from(self.operands == Operands::Bf16),
            self.lanes,
        ]
        .iter()
        .map(|&v| v as u32)
        .collect()
    }

    /// The variant [`key`](Self::key) names.
    fn from_key(values: &[u32]) -> Self {
        let v = |k: usize| values[k] as usize;
        Self {
            block: v(0),
            kernel_w: v(1),
            stride_w: v(2),
            dilation_w: v(3),
            vecs: v(4),
            flat: v(5) != 0,
            rows: v(6),
            vec_store: v(7) != 0,
            operands: if v(8) != 0 {
                Operands::Bf16
            } else {
                Operands::F32
            },
            lanes: v(9),
        }
    }

    /// The kernel of this variant that stores onto the bias, or that adds
    /// onto what an earlier dispatch stored (`accumulate`: a later slice of
    /// the reduction, a later block of input channels). The two are
    /// generated apart: llvmpipe runs both arms of a branch, so one kernel
    /// for both read the output before every store (8% of the 1×1 layer
    /// 8×64×56×56 → 256). Its source is generated only when the registry
    /// compiles it (once per context), and owned, never leaked.
    pub(crate) fn spec(self, accumulate: bool) -> KernelSpec {
        let mut key = self.key();
        key.push(u32::from(accumulate));
        KernelSpec {
            family: "conv2d_blocked",
            variant: key,
            source: ShaderSource::Generated(codegen::generate),
            entry_point: "main",
            workgroup_size: WORKGROUP_SIZE,
            bindings: &[Uniform, Uniform, ReadOnly, ReadOnly, ReadOnly, ReadWrite],
            constants: &[],
            workgroup_bytes: 0,
        }
    }
}

/// Whether the kernel can read the input of `geometry` (its own, flattened
/// for a pointwise convolution) in place: rows already aligned and nothing to
/// pad. The last run's loads may reach past a row's end (into the next row,
/// or past the buffer, which WGSL bounds): those columns feed only outputs
/// past the row's end, which are never stored.
fn in_place(geometry: &Conv2dGeometry) -> bool {
    let (h, w) = (&geometry.height, &geometry.width);
    [h, w].iter().all(|a| a.pad_before == 0 && a.pad_after == 0) && w.input.is_multiple_of(4)
}

/// Elements of the packed weight of `geometry` in blocks of `block` channels.
pub(crate) fn packed_len(geometry: &Conv2dGeometry, block: usize) -> usize {
    let blocks = geometry.groups * geometry.out_channels_per_group().div_ceil(block);
    blocks
        * block
        * geometry.in_channels_per_group()
        * geometry.height.kernel
        * geometry.width.kernel
}

/// Records the packing of `weight` into `packed` (of
/// [`Variant::packed_weight_words`] words) for `variant`: one invocation per
/// tap of a block of output channels.
pub(crate) fn encode_pack(
    rec: &mut Recorder,
    geometry: &Conv2dGeometry,
    variant: Variant,
    call: &wgpu::Buffer,
    (weight, transposed): (&wgpu::Buffer, bool),
    packed: &wgpu::Buffer,
) -> Result<()> {
    let taps = packed_len(geometry, variant.block) / variant.block;
    let params = rec.uniform(
        "pack dispatch",
        &DispatchParams::default().with_total(taps)?,
    );
    let (_, _, kernels) = PACK_WEIGHT
        .iter()
        .find(|(operands, block, _)| *operands == variant.operands && *block == variant.block)
        .expect("a packing kernel for every packed block width");
    rec.dispatch(
        &kernels[usize::from(transposed)].spec(),
        &[call, &params, weight, packed],
        taps as u64,
    )
}

/// Records a padded copy of `input`, the planes of the call `call` describes
/// (its input's, padded as its geometry says, `width` its axis along rows),
/// with rows `row_len` long (a multiple of 4) and `padded_len` elements in
/// all, held as `operands` says: one invocation per vec4, the vec4s inside
/// the source window and the others in a dispatch each.
pub(crate) fn encode_padded_copy(
    rec: &mut Recorder,
    call: &wgpu::Buffer,
    input: &wgpu::Buffer,
    width: &Axis,
    (padded_len, row_len): (usize, usize),
    operands: Operands,
) -> Result<wgpu::Buffer> {
    let quads = row_len / 4;
    let rows = padded_len / row_len.max(1);
    // The vec4s whose four columns all lie inside the source window.
    let interior = width.interior_strips(4, 4, quads);
    let padded = rec.scratch("padded copy", operands.words(padded_len));
    let [border, inside] = match operands {
        Operands::F32 => [&PAD_INPUT_BORDER, &PAD_INPUT],
        Operands::Bf16 => [&PAD_INPUT_BORDER_BF16, &PAD_INPUT_BF16],
    };
    for (kernel, count) in [
        (border, quads - interior.len()),
        (inside, interior.len().div_ceil(PAD_RUN)),
    ] {
        if rows * count == 0 {
            continue;
        }
        let params = DispatchParams::default()
            .with_row_len(row_len)?
            .with_total(rows * count)?
            .with_slice(&interior)?;
        let params = rec.uniform("pad dispatch", &params);
        rec.dispatch(
            &kernel.spec(),
            &[call, &params, input, &padded, input],
            (rows * count) as u64,
        )?;
    }
    Ok(padded)
}

/// Records one chunk: its padded input copy (one invocation per vec4; or the
/// shared one in `buffers.padded`, whose rows are at least as long), then
/// the blocked kernel, one dispatch per slice of its one loop, over reduction
/// rows (input channel, kernel row); the kernel columns are unrolled. Later
/// slices add onto the earlier ones.
pub(crate) fn encode_chunk(
    rec: &mut Recorder,
    geometry: &Conv2dGeometry,
    chunk: &Chunk,
    variant: Variant,
    buffers: &ForwardBuffers,
) -> Result<()> {
    let w = &geometry.width;
    let (padded, row_len) = match buffers.padded {
        Some(shared) => (shared.buffer.clone(), shared.row_len),
        // The input is its own padded copy (see `in_place`); operands rounded
        // to bfloat16 always take the rounding copy.
        None if variant.operands == Operands::F32 && in_place(geometry) => {
            (buffers.input.clone(), w.input)
        }
        None => {
            let row_len = variant.row_len(geometry);
            let planes = chunk.batch.len() * chunk.in_channels.len();
            let padded_len = planes * variant.padded_plane(geometry);
            let copy = encode_padded_copy(
                rec,
                buffers.call,
                buffers.input,
                w,
                (padded_len, row_len),
                variant.operands,
            )?;
            (copy, row_len)
        }
    };
    let base = DispatchParams::for_chunk(chunk)?.with_row_len(row_len)?;

    let per_group = geometry.out_channels_per_group();
    let blocks_per_group = per_group.div_ceil(variant.block);
    let block_of = |o: usize| (o / per_group) * blocks_per_group + (o % per_group) / variant.block;
    let blocks = block_of(chunk.out_channels.end - 1) - block_of(chunk.out_channels.start) + 1;
    let variant = variant.sharing(shared_load_lanes(rec.context()));
    let runs = geometry.width.output.div_ceil(variant.outs());
    // A block's invocations, padded where lanes share weights (see the kernel).
    let per_block =
        (chunk.batch.len() * geometry.height.output * runs).next_multiple_of(variant.lanes.max(1));
    let total = per_block * blocks;
    let channels = geometry
        .in_channels_per_group()
        .min(chunk.in_channels.len());
    let rows = channels * geometry.height.kernel;
    for (k, slice) in slices(rows, loop_steps(1, 0)).iter().enumerate() {
        let accumulate = chunk.accumulate || k > 0;
        let spec = variant.spec(accumulate);
        let params = base
            .with_total(total)?
            .with_accumulate(accumulate)
            .with_slice(slice)?;
        let params = rec.uniform("blocked dispatch", &params);
        rec.dispatch(
            &spec,
            &[
                buffers.call,
                &params,
                &padded,
                buffers.weight,
                buffers.bias,
                buffers.output,
            ],
            total as u64,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Conv2dConfig, Padding};
    use crate::gpu::runtime::registry::tests::validate;

    /// Seven vec4s of outputs with 16 channels at stride 1, where they
    /// cover the row with fewer runs; six at most at stride 2; and never so
    /// many that the input span passes `MAX_SPAN`, where fewer fit.
    /// On CPU adapters, pointwise layers of 32 or more output channels per
    /// group take 32 per invocation, three vec4s of outputs each; nothing
    /// else changes.
    #[test]
    fn pointwise_layers_take_wide_blocks_on_cpus() {
        let on_cpu = |config: Conv2dConfig, shape: &[usize]| {
            let g = Conv2dGeometry::new(&config, shape).unwrap();
            let v = Variant::blocked(&g);
            (v, v.on_cpu(&g))
        };
        let (_, wide) = on_cpu(Conv2dConfig::new(64, 256, 1), &[8, 64, 56, 56]);
        assert_eq!((wide.block, wide.vecs, wide.flat), (WIDE_BLOCK, 3, true));
        for (config, shape) in [
            (
                Conv2dConfig::new(64, 64, 3).with_padding(1),
                [1, 64, 56, 56],
            ),
            (Conv2dConfig::new(64, 16, 1), [1, 64, 56, 56]),
            (Conv2dConfig::new(64, 64, 1).with_groups(4), [1, 64, 56, 56]),
        ] {
            let (plain, cpu) = on_cpu(config, &shape);
            assert_eq!(plain, cpu, "{config:?}");
        }
        let g = Conv2dGeometry::new(&Conv2dConfig::new(64, 256, 1), &[8, 64, 56, 56]).unwrap();
        let bf16 = Variant::blocked(&g).on_bf16().unwrap();
        assert_eq!(bf16.on_cpu(&g), bf16, "bfloat16 operands keep 16 channels");
        assert_eq!(wide.on_bf16(), None, "no bfloat16 kernel of 32 channels");
    }

    #[test]
    fn vec4s_per_invocation_follow_the_stride_and_the_span() {
        let variant = |config: Conv2dConfig, shape: &[usize]| {
            let g = Conv2dGeometry::new(&config, shape).unwrap();
            Variant::blocked(&g)
        };
        let row56 = variant(
            Conv2dConfig::new(64, 64, 3).with_padding(1),
            &[1, 64, 56, 56],
        );
        assert_eq!((row56.block, row56.vecs), (BLOCK, 7));
        let row28 = variant(
            Conv2dConfig::new(128, 128, 3).with_padding(1),
            &[1, 128, 28, 28],
        );
        assert_eq!(row28.vecs, 7);
        let stem = variant(
            Conv2dConfig::new(3, 64, 7).with_stride(2).with_padding(3),
            &[1, 3, 224, 224],
        );
        assert_eq!(stem.vecs, 6);
        let narrow = variant(Conv2dConfig::new(8, 8, 3).with_padding(1), &[1, 8, 56, 56]);
        assert_eq!((narrow.block, narrow.vecs), (8, 4));
        // A dilated kernel whose span at seven vec4s (258 columns) does not
        // fit: of the others, five cover the 56 outputs at the least cost.
        let dilated = variant(
            Conv2dConfig::new(16, 16, (1, 3)).with_dilation((1, 115)),
            &[1, 16, 1, 230 + 56],
        );
        assert_eq!(dilated.vecs, 5);
        assert!(dilated.unsupported().is_none());
        assert!(dilated.span() <= MAX_SPAN);
        // Dilated past any vec4's span: one vec4, still reported unsupported.
        let too_wide = variant(
            Conv2dConfig::new(16, 16, (1, 3)).with_dilation((1, 127)),
            &[1, 16, 1, 254 + 8],
        );
        assert_eq!(too_wide.vecs, 1);
        assert!(too_wide.unsupported().is_some());
    }

    /// Every shape of variant validates with naga, has no marker left and
    /// frames what it generated; each is written to `target/generated-wgsl/`
    /// for reading.
    #[test]
    fn generated_variants_validate_with_naga() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/generated-wgsl");
        std::fs::create_dir_all(&dir).unwrap();
        for block in [WIDE_BLOCK, BLOCK, 8, 4, 1] {
            for (kernel_w, stride_w, dilation_w, vecs) in [
                (3, 1, 1, 3),
                (1, 1, 1, 1),
                (7, 2, 1, 2),
                (5, 3, 2, 1),
                (16, 1, 1, 6),
            ] {
                let variant = Variant {
                    block,
                    kernel_w,
                    stride_w,
                    dilation_w,
                    vecs,
                    flat: false,
                    rows: if kernel_w == 1 { 2 } else { 1 + vecs % 2 },
                    vec_store: kernel_w != 7,
                    operands: if block > 1 && block < WIDE_BLOCK && vecs % 2 == 1 {
                        Operands::Bf16
                    } else {
                        Operands::F32
                    },
                    lanes: 0,
                };
                // Weights shared across 8 lanes (llvmpipe) or 4 (SwiftShader)
                // where the variant can share them.
                let variant = variant.sharing(Some(4 << (kernel_w % 2)));
                let accumulate = vecs % 2 == 0;
                let spec = variant.spec(accumulate);
                assert_eq!(Variant::from_key(&spec.variant), variant);
                assert_eq!(spec.variant[10], u32::from(accumulate));
                validate(&spec);
                let source = spec.source_text();
                let label = spec.label();
                assert!(!source.contains("//{"), "{label}: a marker was left");
                for name in ["constants", "declare", "accumulate", "remainder", "store"] {
                    assert!(
                        source.contains(&format!("// generated: {name} (")),
                        "{label}: {name}"
                    );
                    assert!(
                        source.contains(&format!("// end generated: {name}")),
                        "{label}: {name}"
                    );
                }
                let file = format!(
                    "b{block}_k{kernel_w}_s{stride_w}_d{dilation_w}_v{vecs}_r{}_{:?}_l{}.wgsl",
                    variant.rows, variant.operands, variant.lanes
                );
                std::fs::write(dir.join(file), source.as_bytes()).unwrap();
            }
        }
    }

    /// The kernel's loads, as it makes them: run `r` reads `span_vecs` vec4s
    /// from column `r·outs·stride` of a padded row. Every tap of every output
    /// of the run must be among the columns read, and every load inside the
    /// row; checked output by output, so a `row_len` or `span` too short fails.
    #[test]
    fn every_tap_is_loaded_and_every_load_is_inside_the_row() {
        for (w, k, s, d) in [
            (56, 3, 1, 1),
            (7, 3, 1, 1),
            (224, 7, 2, 1),
            (9, 3, 3, 2),
            (1, 1, 1, 1),
            (100, 16, 1, 1),
            (33, 5, 3, 4),
        ] {
            let config = Conv2dConfig::new(1, 1, (1, k))
                .with_stride((1, s))
                .with_dilation((1, d))
                .with_padding(Padding::from((0, k as i64 / 2)));
            let g = Conv2dGeometry::new(&config, &[1, 1, 1, w]).unwrap();
            for block in [WIDE_BLOCK, BLOCK, 8, 4, 1] {
                let v = Variant::new(&g, block);
                let row_len = v.row_len(&g);
                assert!(row_len.is_multiple_of(4), "aligned rows");
                assert!(row_len as i64 >= g.width.padded(), "the padded data fits");
                for j in 0..g.width.output {
                    let first = (j / v.outs()) * v.outs() * s;
                    let loaded = first..first + 4 * v.span_vecs();
                    assert!(
                        loaded.end <= row_len,
                        "w={w} k={k}: run of output {j} reads past the row"
                    );
                    for kx in 0..k {
                        let column = j * s + kx * d;
                        assert!(
                            loaded.contains(&column),
                            "w={w} k={k}: output {j}, tap {kx} not loaded"
                        );
                    }
                }
            }
        }
    }
}
