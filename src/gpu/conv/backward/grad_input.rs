//! The input gradient, in two steps: the gradient of the padded input, then
//! the padding's backward folding the padded border back onto the positions it
//! copied, columns then rows (`shaders/pad_backward.wgsl`).
//!
//! The gradient of the padded input comes either from the direct gather
//! (`shaders/conv2d_grad_padded.wgsl`: one invocation per padded element,
//! every (output, tap) that read it), or from the forward kernels: it is the
//! transposed convolution of `grad_output`, run as one forward convolution per
//! phase of the stride (with stride 1, one), each with its taps of the weight
//! flipped in space and the channels swapped within each group
//! ([`Transposed`], `shaders/transpose_weight.wgsl`), its output placed into
//! every stride-th position (`shaders/scatter_phase.wgsl`). With zero padding
//! that grid is the input gradient itself. No atomics either way: every element
//! is written once, summed in a fixed order.

use crate::config::PaddingMode;
use crate::dtype::DType;
use crate::error::Result;
use crate::geometry::{Axis, Conv2dGeometry};
use crate::gpu::conv::conv_source;
use crate::gpu::conv::params::{DispatchParams, to_u32};
use crate::gpu::conv::plan::Chunk;
use crate::gpu::conv::slicing::dispatch_nested_slices;
use crate::gpu::convert::{Conversion, encode};
use crate::gpu::runtime::loops::{loop_steps, slices};
use crate::gpu::runtime::registry::Binding::{ReadOnly, ReadWrite, Uniform};
use crate::gpu::runtime::{Recorder, WrittenKernel};

/// Invocations per workgroup of the three kernels.
const WORKGROUP_SIZE: u32 = 64;

/// Gradient of the padded input: call, dispatch, grad_output, weight, grad_padded.
pub(crate) const GRAD_PADDED: WrittenKernel = WrittenKernel::new(
    "conv2d_grad_padded",
    conv_source!("conv2d_grad_padded.wgsl"),
    WORKGROUP_SIZE,
    &[Uniform, Uniform, ReadOnly, ReadOnly, ReadWrite],
);

/// The padding's backward along the width: call, dispatch, grad_padded, columns.
pub(crate) const FOLD_COLUMNS: WrittenKernel = WrittenKernel::new(
    "pad_backward",
    conv_source!("pad_backward.wgsl"),
    WORKGROUP_SIZE,
    &[Uniform, Uniform, ReadOnly, ReadWrite],
)
.entry("pad_backward_fold_columns", "fold_columns");

/// The padding's backward along the height: call, dispatch, columns, grad_input.
pub(crate) const FOLD_ROWS: WrittenKernel =
    FOLD_COLUMNS.entry("pad_backward_fold_rows", "fold_rows");

/// The padding's backward for a 16-bit dtype, rounding as PyTorch's CPU
/// kernels do: call, dispatch, the padded gradient (rounded), grad_input.
const FOLD_HALF: WrittenKernel = WrittenKernel::new(
    "pad_backward_half",
    conv_source!(
        "pad_backward.wgsl",
        "half_bits.wgsl",
        "pad_backward_half.wgsl"
    ),
    WORKGROUP_SIZE,
    &[Uniform, Uniform, ReadOnly, ReadWrite],
)
.entry("pad_backward_fold_half", "fold_half");

/// [`FOLD_HALF`] for `dtype`.
fn fold_half(dtype: DType) -> WrittenKernel {
    match dtype {
        DType::BF16 => FOLD_HALF.with_constants("pad_backward_fold_bf16", &[("BFLOAT", 1.0)]),
        _ => FOLD_HALF.with_constants("pad_backward_fold_f16", &[("BFLOAT", 0.0)]),
    }
}

/// A phase's transposed weight: call (of the layer), dispatch, weight,
/// transposed, the phase's taps.
pub(crate) const TRANSPOSE_WEIGHT: WrittenKernel = WrittenKernel::new(
    "transpose_weight",
    conv_source!("transpose_weight.wgsl"),
    WORKGROUP_SIZE,
    &[Uniform, Uniform, ReadOnly, ReadWrite, Uniform],
)
.with_constants("transpose_weight", &[("RUN", TRANSPOSE_RUN as f64)]);

/// Taps of one (channel, output channel) pair per invocation of
/// [`TRANSPOSE_WEIGHT`]: all of a 3×3 kernel's, so that its divisions are
/// paid once per pair.
const TRANSPOSE_RUN: usize = 9;

/// The taps of one axis that a phase of the transposed convolution uses:
/// `first`, `first + step`, ... (`count` of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Taps {
    pub first: usize,
    pub step: usize,
    pub count: usize,
}

/// Where one phase's outputs go along one axis of the destination grid:
/// `count` of them from `first`, every `stride`-th.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Place {
    pub first: usize,
    pub count: usize,
    pub stride: usize,
}

/// One phase of the transposed convolution: the destination positions
/// congruent to it modulo the stride, on both axes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Phase {
    /// The phase's convolution of `grad_output`, or `None` where no tap
    /// reaches its positions (they get zeros). Every phase's convolution pads
    /// `grad_output` alike (see [`Transposed`]).
    pub geometry: Option<Conv2dGeometry>,
    pub taps: [Taps; 2],
    pub place: [Place; 2],
    /// Leading rows and columns of the phase's output that are not placed.
    pub skip: [usize; 2],
}

impl Phase {
    /// Whether the phase takes every tap of `geometry`'s kernel (one phase,
    /// stride 1): its weight is then the forward weight with channels swapped
    /// and taps flipped, which a packing kernel can read directly.
    pub(crate) fn takes_every_tap(&self, geometry: &Conv2dGeometry) -> bool {
        let every =
            |taps: Taps, kernel: usize| taps.first == 0 && taps.step == 1 && taps.count == kernel;
        every(self.taps[0], geometry.height.kernel) && every(self.taps[1], geometry.width.kernel)
    }
}

/// The transposed convolution that gives `geometry`'s input gradient, as
/// `stride_h · stride_w` phase convolutions (sub-pixel decomposition: no
/// zeros inserted): the positions of the destination grid congruent to a
/// phase modulo the stride get only the taps `a` with `a·dilation` congruent
/// to it, a stride-1 correlation of `grad_output` with those taps flipped,
/// the weight's channels swapped within each group. With stride 1 there is
/// one phase and its output is the grid itself.
///
/// Every phase's convolution reads `grad_output` padded alike (the most any
/// phase needs before and after, on each axis), so that one padded copy serves
/// them all; a phase that needs less padding before computes as many extra
/// leading outputs, which are not placed (`Phase::skip`).
#[derive(Debug, Clone)]
pub(crate) struct Transposed {
    /// Whether the grid is the input gradient itself (zero padding, which has
    /// no gradient, left out) or the gradient of the padded input (to fold).
    pub gives_input: bool,
    /// The destination grid's height and width.
    pub grid: [usize; 2],
    pub phases: Vec<Phase>,
}

/// The transposed convolution of `geometry` (see [`Transposed`]); `None`
/// when the layer has no output channels.
pub(crate) fn transposed_geometry(geometry: &Conv2dGeometry) -> Option<Transposed> {
    let (h, w) = (&geometry.height, &geometry.width);
    if geometry.output_channels() == 0 {
        return None;
    }
    let reach = |axis: &Axis| (axis.dilation * (axis.kernel - 1)) as i64;
    // Zero padding gives no gradient: the grid can be the input itself.
    let gives_input = geometry.padding_mode == PaddingMode::Zeros
        && [h, w].iter().all(|a| a.pad_before >= 0 && a.pad_after >= 0)
        && reach(h) >= 0;
    // The grid in padded coordinates: [lo, hi) along each axis.
    let range = |a: &Axis| {
        if gives_input {
            (a.pad_before, a.pad_before + a.input as i64)
        } else {
            (0, a.padded())
        }
    };
    let rows = axis_phases(h, range(h));
    let cols = axis_phases(w, range(w));
    let mut phases = Vec::with_capacity(rows.len() * cols.len());
    for row in &rows {
        for col in &cols {
            let geometry = match (row.axis, col.axis) {
                (Some(height), Some(width)) => Some(Conv2dGeometry {
                    batch: geometry.batch,
                    unbatched: false,
                    in_channels: geometry.out_channels,
                    out_channels: geometry.in_channels,
                    groups: geometry.groups,
                    height,
                    width,
                    padding_mode: PaddingMode::Zeros,
                }),
                _ => None,
            };
            phases.push(Phase {
                geometry,
                taps: [row.taps, col.taps],
                place: [row.place, col.place],
                skip: [row.skip, col.skip],
            });
        }
    }
    let size = |(lo, hi): (i64, i64)| (hi - lo).max(0) as usize;
    Some(Transposed {
        gives_input,
        grid: [size(range(h)), size(range(w))],
        phases,
    })
}

/// One phase along one axis.
#[derive(Debug, Clone, Copy)]
struct AxisPhase {
    taps: Taps,
    place: Place,
    /// The phase convolution's axis, when it has taps and outputs.
    axis: Option<Axis>,
    /// Leading outputs of that convolution not placed.
    skip: usize,
}

/// The `stride` phases of one axis whose grid is `[lo, hi)` in padded
/// coordinates. Padded position `y = phase + stride·t` reads `grad_output`
/// row `(y − a·dilation) / stride` through tap `a` when that divides.
fn axis_phases(axis: &Axis, (lo, hi): (i64, i64)) -> Vec<AxisPhase> {
    let (s, d, k) = (axis.stride as i64, axis.dilation as i64, axis.kernel as i64);
    let g = gcd(s, d);
    let (step, dilation) = (s / g, d / g);
    let mut phases: Vec<AxisPhase> = (0..s)
        .map(|phase| {
            // Positions phase + s·t inside [lo, hi).
            let t_min = (lo - phase).div_euclid(s) + i64::from((lo - phase).rem_euclid(s) != 0);
            let t_min = t_min.max(0);
            let t_max = (hi - 1 - phase).div_euclid(s);
            let count = (t_max - t_min + 1).max(0);
            let place = Place {
                first: (phase + s * t_min - lo).max(0) as usize,
                count: count as usize,
                stride: s as usize,
            };
            // Taps a with a·d ≡ phase (mod s): a = first + m·step.
            let first = (0..step).find(|a| (a * d).rem_euclid(s) == phase);
            let taps = match first {
                Some(first) if first < k => Taps {
                    first: first as usize,
                    step: step as usize,
                    count: ((k - 1 - first) / step + 1) as usize,
                },
                _ => Taps {
                    first: 0,
                    step: step as usize,
                    count: 0,
                },
            };
            let axis = (taps.count > 0 && count > 0).then(|| {
                let m = taps.count as i64;
                // Output t' reads grad_output row t' + base + m'·dilation
                // through flipped tap m' (tap first + (m − 1 − m')·step).
                let c0 = (phase - taps.first as i64 * d) / s;
                let base = t_min + c0 - (m - 1) * dilation;
                let pad_before = -base;
                let pad_after =
                    (count - 1 + (m - 1) * dilation + 1) - axis.output as i64 - pad_before;
                Axis {
                    input: axis.output,
                    kernel: taps.count,
                    stride: 1,
                    dilation: dilation as usize,
                    pad_before,
                    pad_after,
                    output: count as usize,
                }
            });
            AxisPhase {
                taps,
                place,
                axis,
                skip: 0,
            }
        })
        .collect();
    // Pad alike: the most any phase needs before, and the longest padded
    // axis that gives every phase its reads.
    let axes = || phases.iter().filter_map(|p| p.axis);
    let Some(before) = axes().map(|a| a.pad_before).max() else {
        return phases;
    };
    let extent = axes()
        .map(|a| before - a.pad_before + a.padded())
        .max()
        .unwrap_or(0);
    for phase in &mut phases {
        if let Some(axis) = &mut phase.axis {
            phase.skip = (before - axis.pad_before) as usize;
            axis.pad_before = before;
            axis.pad_after = extent - before - axis.input as i64;
            axis.output = (extent - (axis.dilation * (axis.kernel - 1)) as i64) as usize;
        }
    }
    phases
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The phase of the transposed weight: its taps, as `shaders/transpose_weight.wgsl` reads them.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct PhaseParams {
    first_h: u32,
    step_h: u32,
    taps_h: u32,
    first_w: u32,
    step_w: u32,
    taps_w: u32,
    _pad0: u32,
    _pad1: u32,
}

/// Records the weight of `phase` of `geometry`'s transposed convolution into
/// `transposed` (laid out as that convolution's weight).
pub(crate) fn encode_transpose_weight(
    rec: &mut Recorder,
    geometry: &Conv2dGeometry,
    call: &wgpu::Buffer,
    phase: &Phase,
    weight: &wgpu::Buffer,
    transposed: &wgpu::Buffer,
) -> Result<()> {
    let [th, tw] = phase.taps;
    let runs = geometry.in_channels
        * geometry.out_channels_per_group()
        * (th.count * tw.count).div_ceil(TRANSPOSE_RUN);
    let params = rec.uniform(
        "transpose dispatch",
        &DispatchParams::default().with_total(runs)?,
    );
    let taps = PhaseParams {
        first_h: to_u32("kernel tap", th.first)?,
        step_h: to_u32("kernel tap", th.step)?,
        taps_h: to_u32("kernel taps", th.count)?,
        first_w: to_u32("kernel tap", tw.first)?,
        step_w: to_u32("kernel tap", tw.step)?,
        taps_w: to_u32("kernel taps", tw.count)?,
        _pad0: 0,
        _pad1: 0,
    };
    let taps = rec.uniform("transpose taps", &taps);
    rec.dispatch(
        &TRANSPOSE_WEIGHT.spec(),
        &[call, &params, weight, transposed, &taps],
        runs as u64,
    )
}

/// The uniform block of `shaders/scatter_phase.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
struct ScatterParams {
    total: u32,
    rows: u32,
    cols: u32,
    first_h: u32,
    stride_h: u32,
    first_w: u32,
    stride_w: u32,
    dest_h: u32,
    dest_w: u32,
    zero: u32,
    src_rows: u32,
    src_cols: u32,
    skip_h: u32,
    skip_w: u32,
    _pad0: u32,
    _pad1: u32,
}

/// Places a phase's output: call, phase output, destination grid.
pub(crate) const SCATTER_PHASE: WrittenKernel = WrittenKernel::new(
    "scatter_phase",
    include_str!("../../../../shaders/scatter_phase.wgsl"),
    WORKGROUP_SIZE,
    &[Uniform, ReadOnly, ReadWrite],
);

/// Records `phase`'s output `output` (of `planes` planes, shaped as its
/// geometry's output) into its positions of the grid `destination`; zeros
/// there when `output` is `None`.
pub(crate) fn encode_scatter(
    rec: &mut Recorder,
    planes: usize,
    grid: [usize; 2],
    phase: &Phase,
    output: Option<&wgpu::Buffer>,
    destination: &wgpu::Buffer,
) -> Result<()> {
    let [ph, pw] = phase.place;
    let total = planes * ph.count * pw.count;
    if total == 0 {
        return Ok(());
    }
    let params = ScatterParams {
        total: to_u32("invocations of one dispatch", total)?,
        rows: to_u32("phase rows", ph.count)?,
        cols: to_u32("phase columns", pw.count)?,
        first_h: to_u32("phase row", ph.first)?,
        stride_h: to_u32("stride", ph.stride)?,
        first_w: to_u32("phase column", pw.first)?,
        stride_w: to_u32("stride", pw.stride)?,
        dest_h: to_u32("gradient rows", grid[0])?,
        dest_w: to_u32("gradient columns", grid[1])?,
        zero: u32::from(output.is_none()),
        src_rows: to_u32("phase rows", phase.geometry.map_or(0, |g| g.height.output))?,
        src_cols: to_u32(
            "phase columns",
            phase.geometry.map_or(0, |g| g.width.output),
        )?,
        skip_h: to_u32("phase rows", phase.skip[0])?,
        skip_w: to_u32("phase columns", phase.skip[1])?,
        _pad0: 0,
        _pad1: 0,
    };
    let params = rec.uniform("scatter", &params);
    let source = output.unwrap_or(destination);
    // A zero phase binds the destination twice (read and write) otherwise:
    // give it a buffer of its own to read.
    let dummy;
    let source = if output.is_none() {
        dummy = rec.scratch("no phase output", 4);
        &dummy
    } else {
        source
    };
    rec.dispatch(
        &SCATTER_PHASE.spec(),
        &[&params, source, destination],
        total as u64,
    )
}

/// Records one chunk onto the gradient of its padded input block `padded`:
/// one dispatch per slice of its loops (reduction rows of output channel and
/// kernel row, each over kernel columns), later ones adding onto earlier ones
/// in the same order, so that splitting changes no bit.
pub(crate) fn encode_chunk(
    rec: &mut Recorder,
    geometry: &Conv2dGeometry,
    chunk: &Chunk,
    call: &wgpu::Buffer,
    [grad_output, weight]: [&wgpu::Buffer; 2],
    padded: &wgpu::Buffer,
) -> Result<()> {
    let channels = geometry
        .out_channels_per_group()
        .min(chunk.out_channels.len());
    let rows = channels * geometry.height.kernel;
    let columns = geometry.width.kernel;
    let total = chunk.padded_len(geometry);
    let base = DispatchParams::for_chunk(chunk)?.with_total(total)?;
    dispatch_nested_slices(
        rec,
        &GRAD_PADDED.spec(),
        (rows, columns),
        base,
        chunk.accumulate,
        call,
        &[grad_output, weight, padded],
    )
}

/// Records the padding's backward of one completed input block: `padded` (its
/// padded gradient) folded into `grad_input` (its input gradient), columns then
/// rows, each in slices of the padded copies per position (replicate's border
/// can be longer than one loop may run).
pub(crate) fn encode_fold(
    rec: &mut Recorder,
    geometry: &Conv2dGeometry,
    chunk: &Chunk,
    call: &wgpu::Buffer,
    padded: &wgpu::Buffer,
    grad_input: &wgpu::Buffer,
) -> Result<()> {
    let (h, w) = (&geometry.height, &geometry.width);
    let planes = chunk.batch.len() * chunk.in_channels.len();
    let (_, window_w) = w.source_window();
    let columns_len = planes * h.padded().max(0) as usize * window_w.max(0) as usize;
    let columns = rec.scratch("grad_padded columns", columns_len);
    let base = DispatchParams::for_chunk(chunk)?;
    for (kernel, from, to, len, axis) in [
        (FOLD_COLUMNS, padded, &columns, columns_len, w),
        (
            FOLD_ROWS,
            &columns,
            grad_input,
            chunk.input_len(geometry),
            h,
        ),
    ] {
        let copies = copies_per_position(axis, geometry.padding_mode);
        dispatch_copy_slices(rec, &kernel, (call, &base), copies, [from, to], len)?;
    }
    Ok(())
}

/// Dispatches `kernel` over `len` invocations once per slice of `copies`
/// padded copies per element (under the loop limit), later slices adding
/// onto earlier ones.
fn dispatch_copy_slices(
    rec: &mut Recorder,
    kernel: &WrittenKernel,
    (call, base): (&wgpu::Buffer, &DispatchParams),
    copies: usize,
    [from, to]: [&wgpu::Buffer; 2],
    len: usize,
) -> Result<()> {
    for (k, slice) in slices(copies, loop_steps(1, 0)).iter().enumerate() {
        let params = base
            .with_total(len)?
            .with_accumulate(k > 0)
            .with_slice(slice)?;
        let params = rec.uniform(kernel.family, &params);
        rec.dispatch(&kernel.spec(), &[call, &params, from, to], len as u64)?;
    }
    Ok(())
}

/// Records the padding's backward of one completed input block for a 16-bit
/// `dtype`, as PyTorch computes it: the padded gradient rounded to the dtype
/// (PyTorch's convolution backward hands it over in the dtype), then each
/// input element's copies added one at a time in PyTorch's order, every sum
/// rounded to the dtype (`shaders/pad_backward_half.wgsl`), in slices of the
/// copies per element under the loop limit.
pub(crate) fn encode_fold_half(
    rec: &mut Recorder,
    geometry: &Conv2dGeometry,
    chunk: &Chunk,
    call: &wgpu::Buffer,
    padded: &wgpu::Buffer,
    grad_input: &wgpu::Buffer,
    dtype: DType,
) -> Result<()> {
    let padded_len = chunk.padded_len(geometry);
    let rounded = rec.scratch("grad_padded (rounded)", padded_len);
    encode(
        rec,
        dtype,
        Conversion::Round,
        [padded, &rounded],
        padded_len,
    )?;
    let len = chunk.input_len(geometry);
    let copies = match geometry.padding_mode {
        // Three rows and three columns at most, without a loop.
        PaddingMode::Circular => 1,
        mode => copies_per_position(&geometry.height, mode)
            .saturating_mul(copies_per_position(&geometry.width, mode)),
    };
    let base = DispatchParams::for_chunk(chunk)?;
    dispatch_copy_slices(
        rec,
        &fold_half(dtype),
        (call, &base),
        copies,
        [&rounded, grad_input],
        len,
    )
}

/// Most padded positions along `axis` that copy one input position: the
/// interior one, and one per side for reflect and circular (the geometry
/// checks allow one reflection or wrap); replicate copies an edge into its
/// whole side.
fn copies_per_position(axis: &Axis, mode: PaddingMode) -> usize {
    match mode {
        PaddingMode::Zeros => 1,
        PaddingMode::Reflect | PaddingMode::Circular => 3,
        PaddingMode::Replicate => 1 + (axis.pad_before.max(0) + axis.pad_after.max(0)) as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Conv2dConfig;
    use crate::gpu::runtime::registry::tests::assert_mirrors;

    #[test]
    fn the_half_folds_validate_with_naga() {
        for dtype in [DType::F16, DType::BF16] {
            crate::gpu::runtime::registry::tests::validate(&fold_half(dtype).spec());
        }
    }

    #[test]
    fn the_phase_uniforms_mirror_their_wgsl_structs() {
        assert_mirrors::<PhaseParams>(
            TRANSPOSE_WEIGHT.source,
            "Phase",
            &[
                "first_h", "step_h", "taps_h", "first_w", "step_w", "taps_w", "_pad0", "_pad1",
            ],
        );
        assert_mirrors::<ScatterParams>(
            SCATTER_PHASE.source,
            "Scatter",
            &[
                "total", "rows", "cols", "first_h", "stride_h", "first_w", "stride_w", "dest_h",
                "dest_w", "zero", "src_rows", "src_cols", "skip_h", "skip_w", "_pad0", "_pad1",
            ],
        );
    }

    /// Every placed output of every phase reads, through each of its flipped
    /// taps, the `grad_output` row whose output that tap reached from the
    /// position it is placed at (`row·stride + tap·dilation` = that position,
    /// in padded coordinates), and every phase pads alike, with `skip`
    /// leading outputs unplaced.
    #[test]
    fn placed_outputs_read_the_rows_their_taps_reached() {
        for (k, s, d, p, n) in [
            (7, 2, 1, 3, 224),
            (7, 2, 1, 3, 13),
            (3, 2, 1, 1, 56),
            (3, 2, 2, 1, 17),
            (4, 3, 2, 0, 17),
            (5, 3, 1, 2, 11),
            (3, 1, 1, 1, 9),
        ] {
            let config = Conv2dConfig::new(1, 1, (k, 1))
                .with_stride((s, 1))
                .with_dilation((d, 1))
                .with_padding((p as i64, 0));
            let g = Conv2dGeometry::new(&config, &[1, 1, n, 1]).unwrap();
            let t = transposed_geometry(&g).unwrap();
            let lo = if t.gives_input {
                g.height.pad_before
            } else {
                0
            };
            let axes: Vec<_> = t.phases.iter().filter_map(|ph| ph.geometry).collect();
            for a in &axes {
                assert_eq!(
                    (a.height.pad_before, a.height.padded()),
                    (axes[0].height.pad_before, axes[0].height.padded()),
                    "k={k} s={s} d={d}: phases pad alike"
                );
            }
            for phase in &t.phases {
                let Some(pg) = phase.geometry else { continue };
                let (axis, taps, place) = (pg.height, phase.taps[0], phase.place[0]);
                assert!(phase.skip[0] + place.count <= axis.output);
                for u in 0..place.count {
                    let position = lo + (place.first + u * place.stride) as i64;
                    let out = (u + phase.skip[0]) as i64;
                    for m in 0..taps.count {
                        let row = out - axis.pad_before + (m * axis.dilation) as i64;
                        let tap = taps.first + (taps.count - 1 - m) * taps.step;
                        if (0..g.height.output as i64).contains(&row) {
                            assert_eq!(
                                row * s as i64 + (tap * d) as i64,
                                position,
                                "k={k} s={s} d={d} n={n}: output {u}, tap {tap}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// The phases partition the grid: every position is placed by exactly one
    /// phase, and every tap is used by exactly one phase along its axis.
    #[test]
    fn phases_cover_the_grid_and_the_taps_once() {
        for (k, s, d, p) in [
            (3, 1, 1, 1),
            (7, 2, 1, 3),
            (3, 2, 2, 1),
            (4, 3, 2, 0),
            (5, 3, 1, 2),
        ] {
            let config = Conv2dConfig::new(2, 2, k)
                .with_stride(s)
                .with_dilation(d)
                .with_padding(p);
            let g = Conv2dGeometry::new(&config, &[1, 2, 17, 13]).unwrap();
            let t = transposed_geometry(&g).unwrap();
            assert_eq!(t.phases.len(), s * s);
            let mut placed = vec![0; t.grid[0] * t.grid[1]];
            for phase in &t.phases {
                let [ph, pw] = phase.place;
                for r in 0..ph.count {
                    for c in 0..pw.count {
                        placed
                            [(ph.first + r * ph.stride) * t.grid[1] + pw.first + c * pw.stride] +=
                            1;
                    }
                }
            }
            assert!(
                placed.iter().all(|&n| n == 1),
                "k={k} s={s} d={d}: {placed:?}"
            );
            let mut taps = vec![0; k];
            for phase in t.phases.iter().step_by(s) {
                let th = phase.taps[0];
                for m in 0..th.count {
                    taps[th.first + m * th.step] += 1;
                }
            }
            assert!(
                taps.iter().all(|&n| n == 1),
                "k={k} s={s} d={d}: taps {taps:?}"
            );
        }
    }
}
