//! Winograd's minimal filtering for 3×3 kernels with stride 1 and dilation 1
//! (Lavin & Gray, arXiv 1509.09308): F(4×4, 3×3), or F(2×2, 3×3) where the
//! output planes are small. Per m×m output tile and channel pair it does
//! (m+2)² multiplications instead of 9m² (4× fewer for F(4×4), 2.25× for
//! F(2×2)), in four passes:
//!
//! 1. the weight transform `U = G g Gᵀ` (`shaders/winograd_weight.wgsl`), run
//!    once per weight and cached like the blocked kernel's packed weight;
//! 2. the input transform `V = Bᵀ x B` per tile
//!    (`shaders/winograd_input.wgsl`), reading the input through the padding
//!    mode's index map (every mode; a padded copy first was slower);
//! 3. per transformed position ξ, the product over input channels
//!    `M[ξ] = U[ξ] · V[ξ]` (`shaders/winograd_gemm.wgsl`), register-blocked;
//! 4. the output transform `Y = Aᵀ M A`, onto the bias
//!    (`shaders/winograd_output.wgsl`).
//!
//! The interpolation points are 0, ±1, ±2 (and ∞) for F(4×4), 0, ±1 for
//! F(2×2): the smallest integers, which keep the transforms' entries, and so
//! their rounding error, smallest.

mod codegen;

use super::ForwardBuffers;
use crate::error::Result;
use crate::geometry::Conv2dGeometry;
use crate::gpu::conv::params::DispatchParams;
use crate::gpu::conv::plan::Chunk;
use crate::gpu::conv::sharing::shared_load_lanes;
use crate::gpu::runtime::loops::{loop_steps, slices};
use crate::gpu::runtime::registry::Binding::{ReadOnly, ReadWrite, Uniform};
use crate::gpu::runtime::{KernelSpec, Recorder, ShaderSource};

/// Invocations per workgroup of the four passes.
const WORKGROUP_SIZE: u32 = 64;

/// Tiles per invocation of the input and output transforms, moved as one
/// vec2 per transformed position (see `shaders/winograd_tiles.wgsl`). A
/// channel's row of tiles is a multiple of 4 long, so of this too.
const PER_INVOCATION: usize = 2;

/// vec4s of sums a product invocation holds at most (KB · TV): 16 channels ×
/// 4 vec4s of tiles, or 32 × 2. The generated code, and so llvmpipe's first
/// compile, grows with it: 64 × 2 made the forward 0.84–0.99× the time of
/// 32 × 2 on the ResNet layers at batch 8 but its first call 2.3× as long
/// (1×64×56×56: 2.95 s against 1.27 s; docs/benchmarks.md).
const MAX_ACCUMULATOR_VECS: usize = 64;

/// Output channels per product invocation on CPU adapters (see
/// [`WinogradVariant::on_cpu`]).
const WIDE_KB: usize = 32;

/// The transform matrices of one F(m×m, 3×3).
#[derive(Debug)]
pub(crate) struct Transforms {
    /// Bᵀ: α × α.
    pub bt: &'static [&'static [f64]],
    /// G: α × 3.
    pub g: &'static [&'static [f64]],
    /// Aᵀ: m × α.
    pub at: &'static [&'static [f64]],
}

impl Transforms {
    /// α = m + 2: the input tile's side, and the side of the transformed tile.
    pub(crate) fn alpha(&self) -> usize {
        self.bt.len()
    }
}

/// F(2×2, 3×3), points 0, 1, −1 (and ∞).
const F2: Transforms = Transforms {
    bt: &[
        &[1.0, 0.0, -1.0, 0.0],
        &[0.0, 1.0, 1.0, 0.0],
        &[0.0, -1.0, 1.0, 0.0],
        &[0.0, 1.0, 0.0, -1.0],
    ],
    g: &[
        &[1.0, 0.0, 0.0],
        &[0.5, 0.5, 0.5],
        &[0.5, -0.5, 0.5],
        &[0.0, 0.0, 1.0],
    ],
    at: &[&[1.0, 1.0, 1.0, 0.0], &[0.0, 1.0, -1.0, -1.0]],
};

/// F(4×4, 3×3), points 0, 1, −1, 2, −2 (and ∞).
const F4: Transforms = Transforms {
    bt: &[
        &[4.0, 0.0, -5.0, 0.0, 1.0, 0.0],
        &[0.0, -4.0, -4.0, 1.0, 1.0, 0.0],
        &[0.0, 4.0, -4.0, -1.0, 1.0, 0.0],
        &[0.0, -2.0, -1.0, 2.0, 1.0, 0.0],
        &[0.0, 2.0, -1.0, -2.0, 1.0, 0.0],
        &[0.0, 4.0, 0.0, -5.0, 0.0, 1.0],
    ],
    g: &[
        &[1.0 / 4.0, 0.0, 0.0],
        &[-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
        &[-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
        &[1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
        &[1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
        &[0.0, 0.0, 1.0],
    ],
    at: &[
        &[1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
        &[0.0, 1.0, -1.0, 2.0, -2.0, 0.0],
        &[0.0, 1.0, 1.0, 4.0, 4.0, 0.0],
        &[0.0, 1.0, -1.0, 8.0, -8.0, 1.0],
    ],
};

impl Transforms {
    /// κ: the largest `Σ_u Σ_a |Aᵀ_ia| |G_ar| |Bᵀ_au|` over an output `i` of
    /// the tile and a tap `r`: how much the transforms can amplify the
    /// magnitude of one tap's products along one axis.
    fn growth(&self) -> f64 {
        let alpha = self.alpha();
        let mut largest = 0.0f64;
        for i in 0..self.at.len() {
            for r in 0..3 {
                let sum: f64 = (0..alpha)
                    .map(|a| {
                        let row: f64 = self.bt[a].iter().map(|b| b.abs()).sum();
                        self.at[i][a].abs() * self.g[a][r].abs() * row
                    })
                    .sum();
                largest = largest.max(sum);
            }
        }
        largest
    }
}

/// Winograd's normwise fp32 bound on every output (see
/// [`Precision`](crate::Precision)): `(C/groups + 38)·2⁻²³·(κ²·Σ|w|·max|x| +
/// max|b|)`, where `Σ|w|` is the largest absolute sum of one output
/// channel's weights and κ the larger transform set's growth. The `+ 38`
/// counts the roundings of the transforms and the products along the
/// longest chain (`4α + 12`, α = 6, and 2).
pub(crate) fn normwise_bound(
    in_channels_per_group: usize,
    weight_l1: f64,
    input_max: f64,
    bias_max: f64,
) -> f64 {
    let kappa = F2.growth().max(F4.growth());
    let terms = in_channels_per_group as f64 + 38.0;
    terms * f64::from(f32::EPSILON) * (kappa * kappa * weight_l1 * input_max + bias_max)
}

/// What one set of generated Winograd passes is specialised for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct WinogradVariant {
    /// m: outputs per tile side (2 or 4).
    pub(crate) tile: usize,
    /// Output channels per GEMM invocation (4, 8 or 16).
    pub(crate) kb: usize,
    /// vec4s of tiles per GEMM invocation.
    pub(crate) tv: usize,
    /// The subgroup width across which the GEMM's lanes share their weight
    /// loads; 0 where they do not (see [`sharing`](Self::sharing)).
    pub(crate) lanes: usize,
    /// The output's rows are a whole number of tiles long: the output
    /// transform stores each row of a tile as one vector
    /// (`shaders/winograd_store_rows.wgsl`).
    pub(crate) whole_rows: bool,
}

impl WinogradVariant {
    /// The variant for `geometry`, or why Winograd cannot compute it.
    pub(crate) fn new(geometry: &Conv2dGeometry) -> std::result::Result<Self, String> {
        let (h, w) = (&geometry.height, &geometry.width);
        if (
            h.kernel, w.kernel, h.stride, w.stride, h.dilation, w.dilation,
        ) != (3, 3, 1, 1, 1, 1)
        {
            return Err(format!(
                "it needs a 3x3 kernel with stride 1 and dilation 1, got kernel_size=({}, {}), stride=({}, {}), dilation=({}, {})",
                h.kernel, w.kernel, h.stride, w.stride, h.dilation, w.dilation
            ));
        }
        // The tile that does the fewest multiplications, counting the
        // outputs past the edge that whole tiles compute.
        let cost = |m: usize| (m + 2).pow(2) * h.output.div_ceil(m) * w.output.div_ceil(m);
        let tile = if cost(2) < cost(4) { 2 } else { 4 };
        let kb = match geometry.out_channels_per_group() {
            0..=4 => 4,
            5..=8 => 8,
            _ => 16,
        };
        // Three vec4s of tiles per product invocation, fewer where a
        // channel's row of tiles (all batch items') is shorter: at batch 1
        // a 7×7 plane has one vec4 of F(4×4) tiles.
        let tiles = geometry.batch.max(1) * h.output.div_ceil(tile) * w.output.div_ceil(tile);
        let tv = tiles.div_ceil(4).clamp(1, 3).min(MAX_ACCUMULATOR_VECS / kb);
        Ok(Self {
            tile,
            kb,
            tv,
            lanes: 0,
            whole_rows: w.output % tile == 0,
        })
    }

    /// The variant whose GEMM shares its weight loads across subgroups of
    /// `width` lanes (`None`: not at all), for rows of `quads` vec4s of
    /// tiles. Each lane then loads one vec4 of a channel's KB/4 (two or
    /// more where the subgroup is narrower than KB/4), and the others come
    /// by broadcast, so an invocation loads TV vec4s of tiles and
    /// ⌈KB/4/width⌉ of weights per channel. A block's runs are padded to a
    /// multiple of the width; TV (1 to 4, at most
    /// [`MAX_ACCUMULATOR_VECS`]` / KB`) is the one that loads least in all,
    /// padding included: loads, not multiply-adds, set the speed on
    /// llvmpipe (docs/benchmarks.md).
    pub(crate) fn sharing(self, width: Option<usize>, quads: usize) -> Self {
        let Some(lanes) = width else {
            return Self { lanes: 0, ..self };
        };
        let held = (self.kb / 4).div_ceil(lanes);
        let loads = |tv: usize| quads.div_ceil(tv).next_multiple_of(lanes) * (tv + held);
        let tv = (1..=4)
            .rev()
            .filter(|tv| tv * self.kb <= MAX_ACCUMULATOR_VECS)
            .min_by_key(|&tv| loads(tv))
            .unwrap_or(1);
        Self { tv, lanes, ..self }
    }

    /// The variant for CPU adapters: [`WIDE_KB`] output channels per
    /// product invocation where a group has enough of them (its block
    /// padding at most an eighth of its channels). Each vec4 of tiles a
    /// lane loads then serves twice the channels; with the weights shared
    /// across lanes, the product took 0.68–0.83× the time of 16-channel
    /// blocks on the ResNet layers at batch 8 on llvmpipe
    /// (docs/benchmarks.md). GPUs keep 16: twice the registers.
    pub(crate) fn on_cpu(self, geometry: &Conv2dGeometry) -> Self {
        let k = geometry.out_channels_per_group();
        if k >= WIDE_KB && (k.next_multiple_of(WIDE_KB) - k) * 8 <= k {
            Self {
                kb: WIDE_KB,
                tv: self.tv.min(MAX_ACCUMULATOR_VECS / WIDE_KB),
                ..self
            }
        } else {
            self
        }
    }

    fn transforms(&self) -> &'static Transforms {
        if self.tile == 2 { &F2 } else { &F4 }
    }

    /// α²: transformed values per tile.
    fn planes(&self) -> usize {
        self.transforms().alpha().pow(2)
    }

    /// Tiles of one output plane.
    fn tiles(&self, geometry: &Conv2dGeometry) -> usize {
        geometry.height.output.div_ceil(self.tile) * geometry.width.output.div_ceil(self.tile)
    }

    /// Elements held per input plane and per output plane: their transforms
    /// (or themselves, when larger). A transformed channel's row of tiles is
    /// rounded up to 4 once for all its batch items: at most 3 more per plane.
    pub(crate) fn held_planes(&self, geometry: &Conv2dGeometry) -> (usize, usize) {
        let transformed = self.planes() * (self.tiles(geometry) + 3);
        (
            (geometry.height.input * geometry.width.input).max(transformed),
            (geometry.height.output * geometry.width.output).max(transformed),
        )
    }

    /// Elements of the transformed weight.
    pub(crate) fn transformed_weight_len(&self, geometry: &Conv2dGeometry) -> usize {
        let kp = geometry.out_channels_per_group().next_multiple_of(self.kb);
        self.planes() * geometry.groups * geometry.in_channels_per_group() * kp
    }

    /// The values that identify the variant in its kernels' keys.
    fn key(&self) -> Vec<u32> {
        [
            self.tile,
            self.kb,
            self.tv,
            self.lanes,
            usize::from(self.whole_rows),
        ]
        .iter()
        .map(|&v| v as u32)
        .collect()
    }

    /// The variant [`key`](Self::key) names.
    fn from_key(values: &[u32]) -> Self {
        Self {
            tile: values[0] as usize,
            kb: values[1] as usize,
            tv: values[2] as usize,
            lanes: values[3] as usize,
            whole_rows: values[4] != 0,
        }
    }

    /// The variant as a transform pass sees it: its tile and, for the weight
    /// transform, whose layout is in blocks of KB, `kb`, and for the output
    /// transform `whole_rows`; the product's other choices zeroed, so that
    /// variants differing only in them share one compiled transform (the
    /// forward's and the input gradient's, on layers whose products differ
    /// in TV or sharing).
    fn transform_only(&self, kb: usize, whole_rows: bool) -> Self {
        Self {
            tile: self.tile,
            kb,
            tv: 0,
            lanes: 0,
            whole_rows,
        }
    }

    fn spec(
        &self,
        family: &'static str,
        generate: fn(&[u32]) -> String,
        bindings: &'static [crate::gpu::runtime::registry::Binding],
    ) -> KernelSpec {
        self.spec_with(family, generate, bindings, &[])
    }

    fn spec_with(
        &self,
        family: &'static str,
        generate: fn(&[u32]) -> String,
        bindings: &'static [crate::gpu::runtime::registry::Binding],
        constants: &'static [(&'static str, f64)],
    ) -> KernelSpec {
        KernelSpec {
            family,
            variant: self.key(),
            source: ShaderSource::Generated(generate),
            entry_point: "main",
            workgroup_size: WORKGROUP_SIZE,
            bindings,
            constants,
            workgroup_bytes: 0,
        }
    }

    /// Weight transform: call, dispatch, weight, transformed; of the
    /// weight as it is or, `transposed`, of the input gradient's
    /// transposition of it (see `shaders/winograd_weight.wgsl`).
    pub(crate) fn weight_spec(&self, transposed: bool) -> KernelSpec {
        self.transform_only(self.kb, false).spec_with(
            "winograd_weight",
            codegen::weight,
            &[Uniform, Uniform, ReadOnly, ReadWrite],
            if transposed {
                &[("TRANSPOSED", 1.0)]
            } else {
                &[("TRANSPOSED", 0.0)]
            },
        )
    }

    /// Input transform: call, dispatch, input, transformed.
    pub(crate) fn input_spec(&self) -> KernelSpec {
        self.transform_only(0, false).spec(
            "winograd_input",
            codegen::input,
            &[Uniform, Uniform, ReadOnly, ReadWrite],
        )
    }

    /// Product: call, dispatch, transformed input, transformed weight, product.
    pub(crate) fn gemm_spec(&self) -> KernelSpec {
        self.spec(
            "winograd_gemm",
            codegen::gemm,
            &[Uniform, Uniform, ReadOnly, ReadOnly, ReadWrite],
        )
    }

    /// Output transform: call, dispatch, product, bias, output.
    pub(crate) fn output_spec(&self) -> KernelSpec {
        self.transform_only(0, self.whole_rows).spec(
            "winograd_output",
            codegen::output,
            &[Uniform, Uniform, ReadOnly, ReadOnly, ReadWrite],
        )
    }
}

/// Records the weight transform of `weight` into `transformed` (of
/// [`WinogradVariant::transformed_weight_len`] elements); with `transposed`,
/// `weight` is that of the stride-1 convolution whose transpose `geometry`
/// is, read through that transposition.
pub(crate) fn encode_weight_transform(
    rec: &mut Recorder,
    geometry: &Conv2dGeometry,
    variant: WinogradVariant,
    call: &wgpu::Buffer,
    (weight, transposed): (&wgpu::Buffer, bool),
    transformed: &wgpu::Buffer,
) -> Result<()> {
    let kp = geometry
        .out_channels_per_group()
        .next_multiple_of(variant.kb);
    // One invocation per four output channels.
    let total = geometry.groups * geometry.in_channels_per_group() * kp / 4;
    let params = rec.uniform(
        "winograd weight dispatch",
        &DispatchParams::default().with_total(total)?,
    );
    rec.dispatch(
        &variant.weight_spec(transposed),
        &[call, &params, weight, transformed],
        total as u64,
    )
}

/// Records one chunk: the input transform, the product
/// per transformed position (one dispatch per slice of its loop over input
/// channels, later slices adding on), and the output transform, onto the
/// bias or onto an earlier block of input channels.
pub(crate) fn encode_chunk(
    rec: &mut Recorder,
    geometry: &Conv2dGeometry,
    chunk: &Chunk,
    variant: WinogradVariant,
    buffers: &ForwardBuffers,
) -> Result<()> {
    let planes = variant.planes();
    let tiles = variant.tiles(geometry);
    // One row of tiles per channel: every batch item's in turn, rounded up to 4.
    let row = (chunk.batch.len() * tiles).next_multiple_of(4);
    let variant = variant.sharing(shared_load_lanes(rec.context()), row / 4);
    let base = DispatchParams::for_chunk(chunk)?;

    // The GEMM's last vec4s of tiles may read past the last row (their
    // products are never stored): room for them.
    let transformed = rec.scratch(
        "winograd input",
        planes * chunk.in_channels.len() * row + 4 * variant.tv,
    );
    // One invocation per PER_INVOCATION places of a channel's row.
    let total = chunk.in_channels.len() * row / PER_INVOCATION;
    let params = rec.uniform("winograd input dispatch", &base.with_total(total)?);
    rec.dispatch(
        &variant.input_spec(),
        &[buffers.call, &params, buffers.input, &transformed],
        total as u64,
    )?;

    let product = rec.scratch("winograd product", planes * chunk.out_channels.len() * row);
    let per_group = geometry.out_channels_per_group();
    let blocks_per_group = per_group.div_ceil(variant.kb);
    let block_of = |o: usize| (o / per_group) * blocks_per_group + (o % per_group) / variant.kb;
    let blocks = block_of(chunk.out_channels.end - 1) - block_of(chunk.out_channels.start) + 1;
    // Padded, where lanes share weights, so that a subgroup's runs are one block's.
    let runs = (row / 4)
        .div_ceil(variant.tv)
        .next_multiple_of(variant.lanes.max(1));
    let total = planes * blocks * runs;
    let channels = geometry
        .in_channels_per_group()
        .min(chunk.in_channels.len());
    let spec = variant.gemm_spec();
    for (k, slice) in slices(channels, loop_steps(1, 0)).iter().enumerate() {
        let params = base
            .with_total(total)?
            .with_accumulate(k > 0)
            .with_slice(slice)?;
        let params = rec.uniform("winograd gemm dispatch", &params);
        rec.dispatch(
            &spec,
            &[
                buffers.call,
                &params,
                &transformed,
                buffers.weight,
                &product,
            ],
            total as u64,
        )?;
    }

    let total = chunk.out_channels.len() * row / PER_INVOCATION;
    let params = rec.uniform("winograd output dispatch", &base.with_total(total)?);
    rec.dispatch(
        &variant.output_spec(),
        &[
            buffers.call,
            &params,
            &product,
            buffers.bias,
            buffers.output,
        ],
        total as u64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Conv2dConfig;
    use crate::gpu::runtime::registry::tests::validate;

    /// Aᵀ [(G g) ⊙ (Bᵀ x)] is the correlation of x with g, in f64: the
    /// matrices are right, for both tiles, at every output.
    #[test]
    fn the_transforms_compute_the_correlation() {
        for t in [&F2, &F4] {
            let alpha = t.alpha();
            let m = t.at.len();
            let x: Vec<f64> = (0..alpha).map(|i| (i as f64 * 0.7 - 1.3).sin()).collect();
            let g = [0.3, -1.1, 0.45];
            let gg: Vec<f64> =
                t.g.iter()
                    .map(|row| row.iter().zip(&g).map(|(a, b)| a * b).sum())
                    .collect();
            let bx: Vec<f64> =
                t.bt.iter()
                    .map(|row| row.iter().zip(&x).map(|(a, b)| a * b).sum())
                    .collect();
            for i in 0..m {
                let y: f64 = (0..alpha).map(|k| t.at[i][k] * gg[k] * bx[k]).sum();
                let expected: f64 = (0..3).map(|r| x[i + r] * g[r]).sum();
                assert!((y - expected).abs() < 1e-12, "F({m},3) output {i}");
            }
        }
    }

    /// The growth the README and `Precision` quote: 88/3 for F(4×4, 3×3)
    /// (output 3, tap 2), 4 for F(2×2, 3×3).
    #[test]
    fn the_transforms_growth_is_the_documented_one() {
        assert!((F4.growth() - 88.0 / 3.0).abs() < 1e-12, "{}", F4.growth());
        assert!((F2.growth() - 4.0).abs() < 1e-12, "{}", F2.growth());
        let b = normwise_bound(10, 2.0, 3.0, 1.0);
        let want = 48.0 * f64::from(f32::EPSILON) * ((88.0f64 / 3.0).powi(2) * 6.0 + 1.0);
        assert!((b - want).abs() < 1e-12 * want);
    }

    #[test]
    fn generated_passes_validate_with_naga() {
        for (tile, kb, tv, lanes, whole_rows) in [
            (4, 16, 2, 0, true),
            (2, 8, 1, 8, false),
            (4, 4, 3, 0, false),
            (2, 16, 2, 4, true),
            (4, 16, 4, 8, false),
            (4, 32, 2, 8, true),
            (4, 32, 2, 4, false),
            (2, 32, 1, 0, false),
        ] {
            let v = WinogradVariant {
                tile,
                kb,
                tv,
                lanes,
                whole_rows,
            };
            // The product's key is the whole variant; the transforms' only
            // what they depend on (the tile; the weight's block size; the
            // output's rows).
            for (spec, keyed) in [
                (v.weight_spec(false), v.transform_only(kb, false)),
                (v.weight_spec(true), v.transform_only(kb, false)),
                (v.input_spec(), v.transform_only(0, false)),
                (v.gemm_spec(), v),
                (v.output_spec(), v.transform_only(0, whole_rows)),
            ] {
                assert_eq!(WinogradVariant::from_key(&spec.variant), keyed);
                validate(&spec);
                let source = spec.source_text();
                assert!(
                    !source.contains("//{"),
                    "{}: a marker was left",
                    spec.label()
                );
            }
            // Variants that differ only in the product's TV or sharing (the
            // forward's and the input gradient's, say) compile their
            // transforms once.
            let other = WinogradVariant {
                tv: tv + 1,
                lanes: 8 - lanes,
                ..v
            };
            assert_eq!(other.input_spec().variant, v.input_spec().variant);
            assert_eq!(other.output_spec().variant, v.output_spec().variant);
            assert_eq!(other.weight_spec(true).variant, v.weight_spec(true).variant);
            assert_ne!(other.gemm_spec().variant, v.gemm_spec().variant);
        }
    }

    #[test]
    fn variants_say_what_they_need_and_pick_the_cheaper_tile() {
        let g =
            |config: Conv2dConfig, shape: &[usize]| Conv2dGeometry::new(&config, shape).unwrap();
        let resnet = g(
            Conv2dConfig::new(64, 64, 3).with_padding(1),
            &[1, 64, 56, 56],
        );
        assert_eq!(
            WinogradVariant::new(&resnet).unwrap(),
            WinogradVariant {
                tile: 4,
                kb: 16,
                tv: 3,
                lanes: 0,
                whole_rows: true,
            }
        );
        // Rows of 7 and 14 are not whole F(4×4) tiles; rows of 2 are whole
        // F(2×2) ones.
        let seven = g(Conv2dConfig::new(8, 8, 3).with_padding(1), &[1, 8, 7, 7]);
        assert!(!WinogradVariant::new(&seven).unwrap().whole_rows);
        let fourteen = g(Conv2dConfig::new(8, 8, 3).with_padding(1), &[1, 8, 14, 14]);
        assert!(!WinogradVariant::new(&fourteen).unwrap().whole_rows);
        // On CPUs, 32 output channels per invocation and at most 2 vec4s of
        // tiles; where 32-channel blocks would pad a group by more than an
        // eighth, 16.
        let wide = WinogradVariant::new(&resnet).unwrap().on_cpu(&resnet);
        assert_eq!((wide.kb, wide.tv), (32, 2));
        let narrow = g(Conv2dConfig::new(48, 48, 3).with_padding(1), &[1, 48, 8, 8]);
        let v = WinogradVariant::new(&narrow).unwrap();
        assert_eq!(v.on_cpu(&narrow), v);
        let wide_groups = g(
            Conv2dConfig::new(288, 288, 3)
                .with_padding(1)
                .with_groups(2),
            &[1, 288, 8, 8],
        );
        assert_eq!(
            WinogradVariant::new(&wide_groups)
                .unwrap()
                .on_cpu(&wide_groups)
                .kb,
            32
        );
        // Shared weights: TV loads least within the accumulator cap; a
        // subgroup narrower than KB/4 vec4s shares them too.
        assert_eq!(wide.sharing(Some(8), 392).tv, 2);
        assert_eq!(
            wide.sharing(Some(4), 392),
            WinogradVariant {
                tv: 2,
                lanes: 4,
                ..wide
            }
        );
        assert_eq!(
            wide.sharing(Some(8), 8).tv,
            1,
            "7×7 at batch 8: one subgroup of runs"
        );
        assert_eq!(wide.sharing(None, 392), wide);
        let small = g(Conv2dConfig::new(4, 4, 3).with_padding(1), &[1, 4, 2, 2]);
        let small = WinogradVariant::new(&small).unwrap();
        assert_eq!((small.tile, small.whole_rows), (2, true));
        let strided = g(Conv2dConfig::new(4, 4, 3).with_stride(2), &[1, 4, 9, 9]);
        assert_eq!(
            WinogradVariant::new(&strided).unwrap_err(),
            "it needs a 3x3 kernel with stride 1 and dilation 1, got kernel_size=(3, 3), stride=(2, 2), dilation=(1, 1)"
        );
    }
}
