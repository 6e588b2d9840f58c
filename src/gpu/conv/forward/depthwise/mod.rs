//! The depthwise kernel (`shaders/conv2d_depthwise.wgsl`): a strip of
//! outputs along a row for a column of output rows of one channel per
//! invocation, read straight from the input through a sliding window of rows,
//! with no padded copy. Strips inside the data and strips at the borders (the
//! padding mode's index map) run as two dispatches of two kernels, generated
//! per kernel size, stride, dilation, outputs per row, padding mode, storing
//! or accumulating, and dtype ([`codegen`]): float16 and bfloat16 variants
//! read the packed values and round each result once.

mod codegen;

use std::ops::Range;

use super::ForwardBuffers;
use crate::dtype::DType;
use crate::error::Result;
use crate::geometry::{Conv2dGeometry, input_span};
use crate::gpu::conv::params::{DispatchParams, mode_code};
use crate::gpu::conv::plan::Chunk;
use crate::gpu::runtime::loops::LOOP_BUDGET;
use crate::gpu::runtime::registry::Binding::{ReadOnly, ReadWrite, Uniform};
use crate::gpu::runtime::{KernelSpec, Recorder, ShaderSource};

/// Invocations per workgroup.
const WORKGROUP_SIZE: u32 = 64;

/// Most taps (kernel height × width) the generated code unrolls; larger
/// depthwise kernels run on the blocked kernel with one channel.
const MAX_TAPS: usize = 64;

/// Most multiply-adds of vec4s one output row unrolls (vec4s × taps): fewer
/// outputs per row for large kernels keep the code small.
const MAX_UNROLLED: usize = 64;

/// Most input columns one strip's row spans (held in registers).
const MAX_SPAN: usize = 64;

/// Most input columns a row span takes when that allows more outputs per
/// row: 16 outputs of a 3×3 stride-1 kernel span 18, 8 of a stride-2 one 17.
/// Measured on lavapipe: 16 outputs per row of the stride-2 layer
/// 8×96×112×112 (a span of 33) took 1.6× as long as 8.
const WIDE_SPAN: usize = 20;

/// Most input rows the sliding window holds (the kernel's dilated height).
const MAX_WINDOW: usize = 16;

/// Output rows per invocation, one after another through the sliding window
/// (the kernel's one loop, under the driver's loop limit: see
/// [`DepthwiseVariant::loop_passes`]). Measured on lavapipe against 16 and
/// 32 on the MobileNetV2 layers: see docs/benchmarks.md.
pub(crate) const ROWS: usize = 64;

/// Most vec4s of outputs along a row per invocation.
const VECS: usize = 4;

/// Which of a variant's generated kernels: the strips it runs (interior or
/// border) and whether it adds onto what an earlier dispatch stored (a split
/// call) or stores onto the bias. Both are fixed in the code: llvmpipe runs
/// both arms of a branch, so a kernel that could accumulate read the output
/// before every store (9% of the time on 8×144×56×56).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Role {
    pub interior: bool,
    pub accumulate: bool,
}

/// What one generated variant is specialised for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct DepthwiseVariant {
    kernel_h: usize,
    kernel_w: usize,
    stride_h: usize,
    stride_w: usize,
    dilation_h: usize,
    dilation_w: usize,
    /// vec4s of outputs along a row per invocation.
    vecs: usize,
    /// Whether outputs are stored as vec4s (rows a multiple of 4 long).
    vec_store: bool,
    /// The padding mode (its shader number), fixed in the code: llvmpipe
    /// would run every mode's arm of the index map for every row.
    mode: u32,
    /// What the input and output hold: `f32`s, or packed 16-bit values
    /// widened on load and rounded once on store ([`stored_as`](Self::stored_as)).
    dtype: DType,
}

impl DepthwiseVariant {
    /// The variant for `geometry`, a depthwise convolution (one input channel
    /// per group), or `None` where its kernel is too large to unroll: more
    /// than [`MAX_TAPS`] taps, a row span over [`MAX_SPAN`] columns even with
    /// 4 outputs, or a window over [`MAX_WINDOW`] rows.
    pub(crate) fn new(geometry: &Conv2dGeometry) -> Option<Self> {
        let (h, w) = (&geometry.height, &geometry.width);
        let taps = h.kernel * w.kernel;
        if geometry.in_channels_per_group() != 1 || taps > MAX_TAPS {
            return None;
        }
        // Narrow planes take one vec4, so that a layer's shape selects one
        // of a few variants (each compiles once).
        let vecs = VECS.min(w.output.div_ceil(4).next_power_of_two());
        let mut variant = Self {
            kernel_h: h.kernel,
            kernel_w: w.kernel,
            stride_h: h.stride,
            stride_w: w.stride,
            dilation_h: h.dilation,
            dilation_w: w.dilation,
            vecs,
            vec_store: w.output.is_multiple_of(4),
            mode: mode_code(geometry.padding_mode()),
            dtype: DType::F32,
        };
        while (variant.vecs * taps > MAX_UNROLLED || variant.span() > WIDE_SPAN) && variant.vecs > 1
        {
            variant.vecs /= 2;
        }
        // Wide strides and dilations: a span or a window of rows too large
        // to hold in registers, or (tall strides) too many rows to walk.
        (variant.span() <= MAX_SPAN
            && variant.window() <= MAX_WINDOW
            && variant.loop_passes() <= LOOP_BUDGET)
            .then_some(variant)
    }

    /// The variant reading and writing packed `dtype` values itself, where
    /// it can: output rows an even number long, so that each pair of
    /// outputs it rounds fills one word. (It cannot add onto a stored half
    /// result, which would round twice: only calls in one chunk use it.)
    pub(crate) fn stored_as(self, dtype: DType, geometry: &Conv2dGeometry) -> Option<Self> {
        (dtype.is_half() && geometry.width.output.is_multiple_of(2))
            .then_some(Self { dtype, ..self })
    }

    /// Outputs along a row per invocation.
    fn outs(self) -> usize {
        4 * self.vecs
    }

    /// Input columns one invocation's outputs read along a row.
    fn span(self) -> usize {
        input_span(self.outs(), self.stride_w, self.kernel_w, self.dilation_w)
    }

    /// vec4s holding the span.
    fn span_vecs(self) -> usize {
        self.span().div_ceil(4)
    }

    /// Input rows one output row reads: the window held in registers.
    fn window(self) -> usize {
        (self.kernel_h - 1) * self.dilation_h + 1
    }

    /// Loop passes of one invocation, as the driver counts them (see
    /// [`LOOP_BUDGET`]): the walk over at most `(ROWS - 1)·stride + window`
    /// input rows; in the border kernel, the column map made once and a loop
    /// over the span's columns for each row loaded. A stride taller than the
    /// window skips the rows between windows without loading them, so only
    /// `ROWS·window` rows are loaded.
    fn loop_passes(self) -> usize {
        let rows = (ROWS - 1) * self.stride_h + self.window();
        let loaded = rows.min(ROWS * self.window());
        rows + 1 + (loaded + 1) * (self.span() + 1)
    }

    /// The strips of columns (runs of [`outs`](Self::outs) outputs) whose
    /// input columns all lie inside the source window: the interior
    /// kernel's; the others are the border kernel's.
    fn interior_runs(self, geometry: &Conv2dGeometry) -> Range<usize> {
        let w = &geometry.width;
        // Run r starts at padded column r·OUTS·stride.
        w.interior_strips(
            self.outs() * self.stride_w,
            self.span(),
            w.output.div_ceil(self.outs()),
        )
    }

    /// The values that identify the variant's kernel of `role`.
    fn key(self, role: Role) -> Vec<u32> {
        [
            self.kernel_h,
            self.kernel_w,
            self.stride_h,
            self.stride_w,
            self.dilation_h,
            self.dilation_w,
            self.vecs,
            usize::from(self.vec_store),
            usize::from(role.interior),
            usize::from(role.accumulate),
            self.mode as usize,
            match self.dtype {
                DType::F32 => 0,
                DType::F16 => 1,
                DType::BF16 => 2,
            },
        ]
        .iter()
        .map(|&v| v as u32)
        .collect()
    }

    /// The variant [`key`](Self::key) names, and the kernel's role.
    fn from_key(values: &[u32]) -> (Self, Role) {
        let v = |k: usize| values[k] as usize;
        let variant = Self {
            kernel_h: v(0),
            kernel_w: v(1),
            stride_h: v(2),
            stride_w: v(3),
            dilation_h: v(4),
            dilation_w: v(5),
            vecs: v(6),
            vec_store: v(7) != 0,
            mode: values[10],
            dtype: match values[11] {
                0 => DType::F32,
                1 => DType::F16,
                _ => DType::BF16,
            },
        };
        let role = Role {
            interior: v(8) != 0,
            accumulate: v(9) != 0,
        };
        (variant, role)
    }

    /// The variant's kernel of `role`, generated when the registry compiles it.
    fn spec(self, role: Role) -> KernelSpec {
        KernelSpec {
            family: "conv2d_depthwise",
            variant: self.key(role),
            source: ShaderSource::Generated(codegen::generate),
            entry_point: "main",
            workgroup_size: WORKGROUP_SIZE,
            bindings: &[
                Uniform, Uniform, ReadOnly, ReadOnly, ReadOnly, ReadWrite, ReadOnly,
            ],
            // Half variants start with shaders/half_bits.wgsl and its BFLOAT.
            constants: match self.dtype {
                DType::F32 => &[("ROWS", ROWS as f64)],
                DType::F16 => &[("ROWS", ROWS as f64), ("BFLOAT", 0.0)],
                DType::BF16 => &[("ROWS", ROWS as f64), ("BFLOAT", 1.0)],
            },
            workgroup_bytes: 0,
        }
    }
}

/// Records one chunk: a dispatch of the border kernel and one of the
/// interior kernel (either left out where it has no strips), one invocation
/// per strip of outputs along a row and column of up to [`ROWS`] rows.
pub(crate) fn encode_chunk(
    rec: &mut Recorder,
    geometry: &Conv2dGeometry,
    chunk: &Chunk,
    variant: DepthwiseVariant,
    buffers: &ForwardBuffers,
) -> Result<()> {
    let strips = geometry.height.output.div_ceil(ROWS);
    let runs = geometry.width.output.div_ceil(variant.outs());
    let interior = variant.interior_runs(geometry);
    // Half variants run only in calls of one chunk (ForwardPass::in_storage).
    debug_assert!(!(variant.dtype.is_half() && chunk.accumulate));
    for (is_interior, count) in [(false, runs - interior.len()), (true, interior.len())] {
        if count == 0 {
            continue;
        }
        let total = chunk.batch.len() * chunk.out_channels.len() * count * strips;
        let params = DispatchParams::for_chunk(chunk)?
            .with_total(total)?
            .with_slice(&interior)?;
        let params = rec.uniform("depthwise dispatch", &params);
        let role = Role {
            interior: is_interior,
            accumulate: chunk.accumulate,
        };
        rec.dispatch(
            &variant.spec(role),
            &[
                buffers.call,
                &params,
                buffers.input,
                buffers.weight,
                buffers.bias,
                buffers.output,
                buffers.input,
            ],
            total as u64,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Conv2dConfig;
    use crate::gpu::runtime::registry::tests::validate;

    fn depthwise(channels: usize, kernel: (usize, usize), shape: [usize; 4]) -> Conv2dGeometry {
        let config = Conv2dConfig::new(channels, channels, kernel)
            .with_groups(channels)
            .with_padding(1);
        Conv2dGeometry::new(&config, &shape).unwrap()
    }

    /// Every shape of variant validates with naga, has no marker left and
    /// frames what it generated; each is written to `target/generated-wgsl/`.
    #[test]
    fn generated_variants_validate_with_naga() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/generated-wgsl");
        std::fs::create_dir_all(&dir).unwrap();
        for (kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w, vecs) in [
            (3, 3, 1, 1, 1, 1, 2),
            (3, 3, 2, 2, 1, 1, 2),
            (1, 1, 1, 1, 1, 1, 1),
            (5, 2, 3, 1, 2, 3, 1),
            (1, 16, 1, 4, 1, 1, 2),
            (8, 8, 1, 1, 1, 1, 1),
        ] {
            for (vec_store, interior, accumulate, mode, dtype) in [
                (true, true, false, 0, DType::F32),
                (false, true, true, 1, DType::F32),
                (true, false, true, 2, DType::F32),
                (false, false, false, 3, DType::F32),
                (true, true, false, 0, DType::F16),
                (false, false, false, 1, DType::F16),
                (true, true, false, 2, DType::BF16),
                (false, false, false, 3, DType::BF16),
            ] {
                let variant = DepthwiseVariant {
                    kernel_h,
                    kernel_w,
                    stride_h,
                    stride_w,
                    dilation_h,
                    dilation_w,
                    vecs,
                    vec_store,
                    mode,
                    dtype,
                };
                let role = Role {
                    interior,
                    accumulate,
                };
                let spec = variant.spec(role);
                assert_eq!(DepthwiseVariant::from_key(&spec.variant), (variant, role));
                validate(&spec);
                let source = spec.source_text();
                let label = spec.label();
                assert!(!source.contains("//{"), "{label}: a marker was left");
                for name in ["constants", "declare", "slide", "body", "load"] {
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
                    "dw_k{kernel_h}x{kernel_w}_s{stride_h}x{stride_w}_d{dilation_h}x{dilation_w}_v{vecs}_{}_{}{}_mode{mode}_{}.wgsl",
                    if vec_store { "vec4" } else { "scalar" },
                    if interior { "interior" } else { "border" },
                    if accumulate { "_accumulate" } else { "" },
                    dtype.name()
                );
                std::fs::write(dir.join(file), source.as_bytes()).unwrap();
            }
        }
    }

    /// The variant: one per kernel, stride and dilation for wide planes; one
    /// vec4 per row on narrow ones and for large kernels; none beyond
    /// [`MAX_TAPS`] taps or with more than one input channel per group.
    #[test]
    fn variants_follow_the_layer() {
        let v = DepthwiseVariant::new(&depthwise(144, (3, 3), [8, 144, 56, 56])).unwrap();
        assert_eq!((v.vecs, v.vec_store, v.window()), (VECS, true, 3));
        assert_eq!(v.span(), 18);
        // 4 strips of 16 columns; the first reaches into the padding, the
        // last past the row's end (source columns 47..65 of 56).
        let g = depthwise(144, (3, 3), [8, 144, 56, 56]);
        assert_eq!(v.interior_runs(&g), 1..3);
        let config = Conv2dConfig::new(96, 96, 3)
            .with_groups(96)
            .with_stride(2)
            .with_padding(1);
        let g = Conv2dGeometry::new(&config, &[8, 96, 112, 112]).unwrap();
        let strided = DepthwiseVariant::new(&g).unwrap();
        assert_eq!(
            (strided.vecs, strided.span()),
            (2, 17),
            "16 outputs would span 33"
        );
        assert_eq!(
            strided.interior_runs(&g),
            1..7,
            "the last ends at column 112"
        );
        // Narrower than a span: no interior.
        let g = depthwise(4, (3, 3), [1, 4, 9, 3]);
        assert_eq!(DepthwiseVariant::new(&g).unwrap().interior_runs(&g), 1..1);
        let narrow = DepthwiseVariant::new(&depthwise(4, (3, 3), [1, 4, 9, 3])).unwrap();
        assert_eq!((narrow.vecs, narrow.vec_store), (1, false));
        let large = DepthwiseVariant::new(&depthwise(4, (8, 8), [1, 4, 64, 64])).unwrap();
        assert_eq!(large.vecs, 1);
        assert!(DepthwiseVariant::new(&depthwise(4, (9, 8), [1, 4, 64, 64])).is_none());
        let wide_dilation = Conv2dConfig::new(4, 4, 3)
            .with_groups(4)
            .with_dilation((1, 40));
        let g = Conv2dGeometry::new(&wide_dilation, &[1, 4, 8, 200]).unwrap();
        assert!(DepthwiseVariant::new(&g).is_none(), "span of 81 columns");
        let tall_dilation = Conv2dConfig::new(4, 4, 3)
            .with_groups(4)
            .with_dilation((8, 1));
        let g = Conv2dGeometry::new(&tall_dilation, &[1, 4, 40, 8]).unwrap();
        assert!(DepthwiseVariant::new(&g).is_none(), "window of 17 rows");
        // A tall stride: 15 strides of 4000 rows between a strip's first and
        // last output rows, walked row by row, would pass the loop limit.
        let tall_stride = Conv2dConfig::new(4, 4, 3)
            .with_groups(4)
            .with_stride((4000, 1));
        let g = Conv2dGeometry::new(&tall_stride, &[1, 4, 80000, 8]).unwrap();
        assert!(DepthwiseVariant::new(&g).is_none(), "stride 4000 rows");
        let s = (DepthwiseVariant::new(&depthwise(96, (3, 3), [1, 96, 112, 112])))
            .unwrap()
            .loop_passes();
        assert_eq!(s, 67 + 67 * 19, "66 rows of 18 columns and the map");
        let grouped =
            Conv2dGeometry::new(&Conv2dConfig::new(8, 8, 3).with_groups(4), &[1, 8, 16, 16])
                .unwrap();
        assert!(DepthwiseVariant::new(&grouped).is_none());
    }
}
