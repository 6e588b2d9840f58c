//! The register-blocked kernel (`shaders/conv2d_blocked.wgsl`): its variants,
//! generated per kernel width, stride and dilation along the row, and the two
//! buffers it reads, a padded copy of the input and a packed weight.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};

use super::kernels::{self, Binding, KernelSpec};
use super::loops::{loop_steps, slices};
use super::params::ConvParams;
use super::plan::Chunk;
use super::recorder::Recorder;
use crate::error::{Conv2dError, Result};
use crate::geometry::Conv2dGeometry;

/// Output channels per invocation (and per packed weight block) of the blocked
/// algorithm; the depthwise algorithm computes one.
pub(crate) const BLOCK: usize = 16;

/// Most vec4s of outputs along a row per invocation, for 16 output channels:
/// four was slower on llvmpipe (registers spill) and took seconds to compile.
const MAX_VECS: usize = 3;

/// Most vec4s of outputs along a row per invocation for one output channel.
const MAX_VECS_DEPTHWISE: usize = 6;

/// Largest kernel width the generated code unrolls.
const MAX_KERNEL_W: usize = 16;

/// Largest span of one row (floats) an invocation holds in registers.
const MAX_SPAN: usize = 256;

/// The template's source: the shared prelude, then the kernel with its markers.
const TEMPLATE: &str = concat!(
    include_str!("../../shaders/common.wgsl"),
    "\n",
    include_str!("../../shaders/conv2d_blocked.wgsl")
);

/// What one generated variant is specialised for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Variant {
    /// Output channels per invocation: [`BLOCK`] or 1.
    block: usize,
    kernel_w: usize,
    stride_w: usize,
    dilation_w: usize,
    /// vec4s of outputs along the row per invocation.
    vecs: usize,
}

impl Variant {
    /// The variant for `geometry`. The number of vec4s per invocation trades
    /// outputs computed past the row's end against the per-run cost of loading
    /// weights (about two vec4s' worth of work): `runs * (vecs + 2)` is least.
    pub(crate) fn new(geometry: &Conv2dGeometry, block: usize) -> Self {
        let w = &geometry.width;
        let cost = |vecs: usize| w.output.div_ceil(4 * vecs) * (vecs + 2);
        let most = if block == 1 {
            MAX_VECS_DEPTHWISE
        } else {
            MAX_VECS
        };
        let vecs = (1..=most).rev().min_by_key(|&v| cost(v)).unwrap_or(1);
        Self {
            block,
            kernel_w: w.kernel,
            stride_w: w.stride,
            dilation_w: w.dilation,
            vecs,
        }
    }

    /// Outputs along the row per invocation.
    fn outs(self) -> usize {
        4 * self.vecs
    }

    /// Floats of one padded input row that one invocation's outputs read.
    fn span(self) -> usize {
        (self.outs() - 1) * self.stride_w + (self.kernel_w - 1) * self.dilation_w + 1
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
    /// where the last run's aligned loads reach past it; a multiple of 4.
    pub(crate) fn row_len(self, geometry: &Conv2dGeometry) -> usize {
        let runs = geometry.width.output.div_ceil(self.outs()).max(1);
        let reach = (runs - 1) * self.outs() * self.stride_w + 4 * self.span_vecs();
        (geometry.width.padded().max(0) as usize)
            .max(reach)
            .next_multiple_of(4)
    }

    /// Elements of one plane of the padded input copy.
    pub(crate) fn padded_plane(self, geometry: &Conv2dGeometry) -> usize {
        geometry.height.padded().max(0) as usize * self.row_len(geometry)
    }

    /// The compiled-variant description, generated once per process.
    fn spec(self) -> KernelSpec {
        static SPECS: OnceLock<Mutex<HashMap<Variant, KernelSpec>>> = OnceLock::new();
        let mut specs = SPECS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *specs.entry(self).or_insert_with(|| {
            // Leaked once per variant: specs are `Copy` with static sources, and
            // a process meets only the few variants its layers need.
            let name = format!(
                "conv2d_blocked_b{}_k{}_s{}_d{}_v{}",
                self.block, self.kernel_w, self.stride_w, self.dilation_w, self.vecs
            );
            KernelSpec {
                name: Box::leak(name.into_boxed_str()),
                source: Box::leak(self.source().into_boxed_str()),
                entry_point: "main",
                workgroup_size: 64,
                bindings: &[
                    Binding::Uniform,
                    Binding::ReadOnly,
                    Binding::ReadOnly,
                    Binding::ReadOnly,
                    Binding::ReadWrite,
                ],
                constants: &[],
            }
        })
    }

    /// The template with its marked lines generated.
    pub(crate) fn source(self) -> String {
        let (block, vecs) = (self.block, self.vecs);
        // Weight units per tap: vec4s of four output channels, or one float.
        let (units, unit_type, lanes) = if block == 1 {
            (1, "f32", 1)
        } else {
            (block / 4, "vec4<f32>", 4)
        };
        let mut constants = String::new();
        let _ = writeln!(constants, "alias WeightUnit = {unit_type};");
        let _ = writeln!(constants, "const WEIGHT_UNITS: u32 = {units}u;");
        let _ = writeln!(constants, "const BLOCK: u32 = {block}u;");
        let _ = writeln!(constants, "const OUTS: u32 = {}u;", self.outs());
        let _ = writeln!(constants, "const KERNEL_W: u32 = {}u;", self.kernel_w);
        let _ = writeln!(constants, "const STRIDE_W: u32 = {}u;", self.stride_w);

        let mut declare = String::new();
        for k in 0..block {
            for v in 0..vecs {
                let _ = writeln!(declare, "    var a{k}_{v} = vec4<f32>(0.0);");
            }
        }

        // Per kernel row: the span as vec4s, each kernel column's inputs picked
        // from it, then per four output channels one vec4 of weights per column.
        let pad = "            ";
        let mut accumulate = String::new();
        for s in 0..self.span_vecs() {
            let _ = writeln!(accumulate, "{pad}let s{s} = input[at + {s}u];");
        }
        for kx in 0..self.kernel_w {
            for v in 0..vecs {
                let lanes: Vec<String> = (0..4)
                    .map(|j| {
                        let x = (4 * v + j) * self.stride_w + kx * self.dilation_w;
                        format!("s{}[{}]", x / 4, x % 4)
                    })
                    .collect();
                let _ = writeln!(
                    accumulate,
                    "{pad}let x{kx}_{v} = vec4<f32>({});",
                    lanes.join(", ")
                );
            }
        }
        for q in 0..units {
            for kx in 0..self.kernel_w {
                let _ = writeln!(
                    accumulate,
                    "{pad}let w{kx}_{q} = weight[wt + {}u];",
                    kx * units + q
                );
            }
            for j in 0..lanes {
                let k = lanes * q + j;
                let pick = if lanes == 1 {
                    String::new()
                } else {
                    format!("[{j}]")
                };
                for v in 0..vecs {
                    let mut sum = format!("a{k}_{v}");
                    for kx in 0..self.kernel_w {
                        sum = format!("fma(vec4<f32>(w{kx}_{q}{pick}), x{kx}_{v}, {sum})");
                    }
                    let _ = writeln!(accumulate, "{pad}a{k}_{v} = {sum};");
                }
            }
        }

        let mut store = String::new();
        for k in 0..block {
            let _ = writeln!(store, "    if (o0 + {k}u >= o_lo && o0 + {k}u < o_hi) {{");
            for v in 0..vecs {
                for j in 0..4 {
                    let q = 4 * v + j;
                    let _ = writeln!(
                        store,
                        "        if ({q}u < count) {{ store_output(n, o0 + {k}u, i, j0 + {q}u, a{k}_{v}[{j}]); }}"
                    );
                }
            }
            let _ = writeln!(store, "    }}");
        }

        TEMPLATE
            .replace("//{constants}\n", &constants)
            .replace("//{declare}\n", &declare)
            .replace("//{accumulate}\n", &accumulate)
            .replace("//{store}\n", &store)
    }
}

/// Elements of the packed weight of `geometry` (blocks of [`BLOCK`] channels).
pub(crate) fn packed_len(geometry: &Conv2dGeometry) -> usize {
    let blocks = geometry.groups * geometry.out_channels_per_group().div_ceil(BLOCK);
    blocks
        * BLOCK
        * geometry.in_channels_per_group()
        * geometry.height.kernel
        * geometry.width.kernel
}

/// Records the packing of `weight` into `packed` (of [`packed_len`] elements).
pub(crate) fn encode_pack(
    rec: &mut Recorder,
    geometry: &Conv2dGeometry,
    weight: &wgpu::Buffer,
    packed: &wgpu::Buffer,
) -> Result<()> {
    let whole = Chunk {
        batch: 0..geometry.batch,
        out_channels: 0..geometry.output_channels(),
        in_channels: 0..geometry.in_channels,
        accumulate: false,
        completes: true,
    };
    let len = packed_len(geometry);
    let mut params = ConvParams::new(geometry, &whole, false);
    params.total = u32::try_from(len).map_err(|_| too_many(len))?;
    let params = rec.uniform("pack params", &params);
    rec.dispatch(kernels::PACK_WEIGHT, &[&params, weight, packed], len as u64)
}

/// Records one chunk: its padded input copy, then the blocked kernel.
pub(crate) fn encode_chunk(
    rec: &mut Recorder,
    geometry: &Conv2dGeometry,
    chunk: &Chunk,
    variant: Variant,
    mut params: ConvParams,
    buffers: [&wgpu::Buffer; 4],
) -> Result<()> {
    let [input, packed, bias, output] = buffers;
    params.row_len = variant.row_len(geometry) as u32;

    let padded_len = chunk.batch.len() * chunk.in_channels.len() * variant.padded_plane(geometry);
    // One invocation per vec4 of the padded copy.
    let quads = padded_len / 4;
    params.total = u32::try_from(quads).map_err(|_| too_many(quads))?;
    let pad_params = rec.uniform("pad params", &params);
    let padded = rec.scratch("padded input", padded_len);
    rec.dispatch(
        kernels::PAD_INPUT,
        &[&pad_params, input, &padded, input],
        quads as u64,
    )?;

    let per_group = geometry.out_channels_per_group();
    let blocks_per_group = per_group.div_ceil(variant.block);
    let block_of = |o: usize| (o / per_group) * blocks_per_group + (o % per_group) / variant.block;
    let blocks = block_of(chunk.out_channels.end - 1) - block_of(chunk.out_channels.start) + 1;
    let runs = geometry.width.output.div_ceil(variant.outs());
    let total = chunk.batch.len() * geometry.height.output * runs * blocks;
    params.total = u32::try_from(total).map_err(|_| too_many(total))?;
    // The one loop runs over reduction rows (input channel, kernel row); the
    // kernel columns are unrolled. Later slices add onto the earlier ones.
    let channels = geometry
        .in_channels_per_group()
        .min(chunk.in_channels.len());
    let rows = channels * geometry.height.kernel;
    for (k, slice) in slices(rows, loop_steps(1, 0)).into_iter().enumerate() {
        params.accumulate = u32::from(chunk.accumulate || k > 0);
        params.slice_begin = slice.start as u32;
        params.slice_end = slice.end as u32;
        let params = rec.uniform("params", &params);
        rec.dispatch(
            variant.spec(),
            &[&params, &padded, packed, bias, output],
            total as u64,
        )?;
    }
    Ok(())
}

fn too_many(count: usize) -> Conv2dError {
    Conv2dError::Gpu(format!(
        "the blocked kernel needs {count} invocations in one dispatch, more than u32 indexing allows"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Conv2dConfig, Padding};

    #[test]
    fn generated_variants_validate_with_naga() {
        for block in [BLOCK, 1] {
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
                };
                let spec = variant.spec();
                let module = naga::front::wgsl::parse_str(spec.source)
                    .unwrap_or_else(|e| panic!("{}: {}", spec.name, e.emit_to_string(spec.source)));
                naga::valid::Validator::new(
                    naga::valid::ValidationFlags::all(),
                    naga::valid::Capabilities::default(),
                )
                .validate(&module)
                .unwrap_or_else(|e| panic!("{}: {}", spec.name, e.emit_to_string(spec.source)));
                let bound = module
                    .global_variables
                    .iter()
                    .filter(|(_, v)| v.binding.is_some());
                assert_eq!(bound.count(), spec.bindings.len(), "{}", spec.name);
                assert_eq!(module.entry_points[0].workgroup_size, [64, 1, 1]);
                assert!(
                    !spec.source.contains("//{"),
                    "{}: a marker was left",
                    spec.name
                );
            }
        }
    }

    #[test]
    fn rows_hold_every_aligned_load() {
        for (w, k, s, d) in [
            (56, 3, 1, 1),
            (7, 3, 1, 1),
            (224, 7, 2, 1),
            (9, 3, 3, 2),
            (1, 1, 1, 1),
        ] {
            let config = Conv2dConfig::new(1, 1, (1, k))
                .with_stride((1, s))
                .with_dilation((1, d))
                .with_padding(Padding::from((0, k as i64 / 2)));
            let g = Conv2dGeometry::new(&config, &[1, 1, 1, w]).unwrap();
            let v = Variant::new(&g, BLOCK);
            let runs = g.width.output.div_ceil(v.outs());
            let last_read = (runs - 1) * v.outs() * s + 4 * v.span_vecs();
            assert!(v.row_len(&g) >= last_read && v.row_len(&g).is_multiple_of(4));
            assert!(v.row_len(&g) as i64 >= g.width.padded());
        }
    }
}
