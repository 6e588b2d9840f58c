//! The input gradient, in two steps: the gradient of the padded input, then
//! the padding's backward folding the padded border back onto the positions it
//! copied, columns then rows (`shaders/pad_backward.wgsl`).
//!
//! The gradient of the padded input comes either from the direct gather
//! (`shaders/conv2d_grad_padded.wgsl`: one invocation per padded element,
//! every (output, tap) that read it), or, with stride 1, from the forward
//! kernels: it is the forward convolution of `grad_output`, padded by
//! `dilation·(kernel − 1)`, with the weight flipped in space and its input and
//! output channels swapped within each group ([`transposed_geometry`],
//! `shaders/transpose_weight.wgsl`). No atomics either way: every element is
//! written once, summed in a fixed order.

use crate::config::PaddingMode;
use crate::error::Result;
use crate::geometry::{Axis, Conv2dGeometry};
use crate::gpu::conv::conv_source;
use crate::gpu::conv::params::DispatchParams;
use crate::gpu::conv::plan::Chunk;
use crate::gpu::runtime::loops::{loop_steps, nested_steps, slices};
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

/// The transposed weight: call (of the layer), dispatch, weight, transposed.
pub(crate) const TRANSPOSE_WEIGHT: WrittenKernel = WrittenKernel::new(
    "transpose_weight",
    conv_source!("transpose_weight.wgsl"),
    WORKGROUP_SIZE,
    &[Uniform, Uniform, ReadOnly, ReadWrite],
);

/// The convolution whose forward pass gives `geometry`'s input gradient, when
/// the stride is 1: input `grad_output` `(N, C_out, OH, OW)`, `C_in` output
/// channels, the same kernel, dilation and groups (the weight flipped and its
/// channels swapped), zero padding `dilation·(kernel − 1)` on each side, less
/// the layer's own zero padding where that is all there is: then its output
/// is the input gradient itself ([`Transposed::Input`]); else it is the
/// gradient of the padded input, to fold back ([`Transposed::Padded`]).
/// `None` for strided convolutions.
pub(crate) fn transposed_geometry(geometry: &Conv2dGeometry) -> Option<Transposed> {
    let (h, w) = (&geometry.height, &geometry.width);
    if h.stride != 1 || w.stride != 1 || geometry.output_channels() == 0 {
        return None;
    }
    let reach = |axis: &Axis| (axis.dilation * (axis.kernel - 1)) as i64;
    // Zero padding gives no gradient: leave it out of the transposed
    // convolution's padding, where it is no more than the kernel's reach.
    let direct = geometry.padding_mode == PaddingMode::Zeros
        && [h, w]
            .iter()
            .all(|a| a.pad_before <= reach(a) && a.pad_after <= reach(a));
    let axis = |a: &Axis| {
        let (before, after) = if direct {
            (reach(a) - a.pad_before, reach(a) - a.pad_after)
        } else {
            (reach(a), reach(a))
        };
        let output = a.output as i64 + before + after - reach(a);
        Axis {
            input: a.output,
            kernel: a.kernel,
            stride: 1,
            dilation: a.dilation,
            pad_before: before,
            pad_after: after,
            output: output.max(0) as usize,
        }
    };
    let transposed = Conv2dGeometry {
        batch: geometry.batch,
        unbatched: false,
        in_channels: geometry.out_channels,
        out_channels: geometry.in_channels,
        groups: geometry.groups,
        height: axis(h),
        width: axis(w),
        padding_mode: PaddingMode::Zeros,
    };
    let (want_h, want_w) = if direct {
        (h.input as i64, w.input as i64)
    } else {
        (h.padded(), w.padded())
    };
    let fits =
        transposed.height.output as i64 == want_h && transposed.width.output as i64 == want_w;
    fits.then_some(if direct {
        Transposed::Input(transposed)
    } else {
        Transposed::Padded(transposed)
    })
}

/// What the transposed convolution's forward pass gives.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Transposed {
    /// The input gradient itself (zero padding, which has no gradient).
    Input(Conv2dGeometry),
    /// The gradient of the padded input, for the padding's backward to fold.
    Padded(Conv2dGeometry),
}

impl Transposed {
    /// The transposed convolution.
    pub(crate) fn geometry(&self) -> &Conv2dGeometry {
        match self {
            Transposed::Input(g) | Transposed::Padded(g) => g,
        }
    }
}

/// Records the transposed weight of `geometry`'s `weight` into `transposed`
/// (`weight_len` elements, laid out as the transposed convolution's weight).
pub(crate) fn encode_transpose_weight(
    rec: &mut Recorder,
    geometry: &Conv2dGeometry,
    call: &wgpu::Buffer,
    weight: &wgpu::Buffer,
    transposed: &wgpu::Buffer,
) -> Result<()> {
    let len = geometry.weight_len();
    let params = rec.uniform(
        "transpose dispatch",
        &DispatchParams::default().with_total(len)?,
    );
    rec.dispatch(
        &TRANSPOSE_WEIGHT.spec(),
        &[call, &params, weight, transposed],
        len as u64,
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
    let (row_step, column_step) = nested_steps(rows, columns, 0);
    let total = chunk.padded_len(geometry);
    let base = DispatchParams::for_chunk(chunk)?.with_total(total)?;
    let mut first = true;
    for slice in slices(rows, row_step) {
        for inner in slices(columns, column_step) {
            let params = base
                .with_accumulate(chunk.accumulate || !first)
                .with_slice(&slice)?
                .with_inner(&inner)?;
            first = false;
            let params = rec.uniform("grad_padded dispatch", &params);
            rec.dispatch(
                &GRAD_PADDED.spec(),
                &[call, &params, grad_output, weight, padded],
                total as u64,
            )?;
        }
    }
    Ok(())
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
        for (k, slice) in slices(copies, loop_steps(1, 0)).iter().enumerate() {
            let params = base
                .with_total(len)?
                .with_accumulate(k > 0)
                .with_slice(slice)?;
            let params = rec.uniform(kernel.family, &params);
            rec.dispatch(&kernel.spec(), &[call, &params, from, to], len as u64)?;
        }
    }
    Ok(())
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
