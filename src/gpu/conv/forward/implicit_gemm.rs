//! The tiled implicit GEMM (`shaders/conv2d_implicit_gemm.wgsl`): per group,
//! 64 × 64 output tiles per workgroup from workgroup-shared tiles of the
//! weight and of the gathered input, a 4 × 4 register block per invocation;
//! and its 1 × 1 specialisation, where the input is the GEMM operand itself.

use super::ForwardBuffers;
use crate::error::Result;
use crate::geometry::Conv2dGeometry;
use crate::gpu::conv::conv_source;
use crate::gpu::conv::params::DispatchParams;
use crate::gpu::conv::plan::Chunk;
use crate::gpu::runtime::loops::{loop_steps, slices};
use crate::gpu::runtime::registry::Binding::{ReadOnly, ReadWrite, Uniform};
use crate::gpu::runtime::{Recorder, WrittenKernel};

/// Output channels and positions per workgroup (`TILE` in the shader).
const GEMM_TILE: usize = 64;

/// Reduction depth per step of the loop (`BK` in the shader).
const GEMM_DEPTH_STEP: usize = 16;

/// Invocations per workgroup: (TILE / 4)², each with a 4 × 4 register block.
const GEMM_WORKGROUP: u32 = ((GEMM_TILE / 4) * (GEMM_TILE / 4)) as u32;

/// Workgroup memory: the weight and the gathered input tiles, TILE × BK f32 each.
const GEMM_WORKGROUP_BYTES: u32 = (2 * GEMM_TILE * GEMM_DEPTH_STEP * 4) as u32;

/// The shader's `override` constants.
const GEMM_CONSTANTS: &[(&str, f64)] = &[
    ("TILE", GEMM_TILE as f64),
    ("BK", GEMM_DEPTH_STEP as f64),
    ("POINTWISE", 0.0),
];

/// Tiled implicit GEMM: call, dispatch, input, weight, bias, output.
pub(crate) const IMPLICIT_GEMM: WrittenKernel = WrittenKernel::new(
    "conv2d_implicit_gemm",
    conv_source!("conv2d_implicit_gemm.wgsl"),
    GEMM_WORKGROUP,
    &[Uniform, Uniform, ReadOnly, ReadOnly, ReadOnly, ReadWrite],
)
.with_constants("conv2d_implicit_gemm", GEMM_CONSTANTS)
.with_workgroup_bytes(GEMM_WORKGROUP_BYTES);

/// The same shader with `POINTWISE = true`, for 1×1, stride-1, unpadded convolutions.
pub(crate) const GEMM_1X1: WrittenKernel = IMPLICIT_GEMM.with_constants(
    "conv2d_gemm_1x1",
    &[
        ("TILE", GEMM_TILE as f64),
        ("BK", GEMM_DEPTH_STEP as f64),
        ("POINTWISE", 1.0),
    ],
);

/// Loop passes of one step of the reduction: itself, its two tile loads
/// (TILE·BK / WORKGROUP = 4 iterations each, + 1) and its BK multiply-adds (+ 1).
const PASSES_PER_STEP: usize =
    1 + 2 * (GEMM_TILE * GEMM_DEPTH_STEP / GEMM_WORKGROUP as usize + 1) + GEMM_DEPTH_STEP + 1;

/// Loop passes outside the reduction: the epilogue's 4 × 4 stores.
const FIXED_PASSES: usize = 5 + 4 * 5;

/// Records one chunk: workgroups over (group, channel tile, position tile),
/// one dispatch per slice of the reduction depth (the driver's loop limit).
pub(crate) fn encode(
    rec: &mut Recorder,
    geometry: &Conv2dGeometry,
    chunk: &Chunk,
    pointwise: bool,
    buffers: &ForwardBuffers,
) -> Result<()> {
    let per_group = geometry.out_channels_per_group();
    let o = &chunk.out_channels;
    let groups = (o.end - 1) / per_group - o.start / per_group + 1;
    let m_tiles = per_group.min(o.len()).div_ceil(GEMM_TILE);
    let n_tiles =
        (chunk.batch.len() * geometry.height.output * geometry.width.output).div_ceil(GEMM_TILE);
    let workgroups = groups * m_tiles * n_tiles;
    let channels = geometry
        .in_channels_per_group()
        .min(chunk.in_channels.len());
    let depth = channels * geometry.height.kernel * geometry.width.kernel;
    let step = loop_steps(PASSES_PER_STEP, FIXED_PASSES) * GEMM_DEPTH_STEP;
    let kernel = if pointwise { GEMM_1X1 } else { IMPLICIT_GEMM }.spec();
    let base = DispatchParams::for_chunk(chunk)?.with_total(workgroups)?;
    for (k, slice) in slices(depth, step).iter().enumerate() {
        let params = base
            .with_accumulate(chunk.accumulate || k > 0)
            .with_slice(slice)?;
        let params = rec.uniform("gemm dispatch", &params);
        rec.dispatch(
            &kernel,
            &[
                buffers.call,
                &params,
                buffers.input,
                buffers.weight,
                buffers.bias,
                buffers.output,
            ],
            workgroups as u64 * u64::from(GEMM_WORKGROUP),
        )?;
    }
    Ok(())
}
