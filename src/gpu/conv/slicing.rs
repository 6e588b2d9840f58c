//! Dispatching a kernel over the slices of its reduction: one dispatch per
//! slice (see `runtime/loops.rs`), later ones adding onto the earlier ones'
//! sums in order, so no invocation's loops pass the driver's limit.

use super::params::DispatchParams;
use crate::error::Result;
use crate::gpu::runtime::loops::{nested_steps, slices};
use crate::gpu::runtime::{KernelSpec, Recorder};

/// Records `kernel` once per slice of a reduction over `rows` rows (its outer
/// loop) of `columns` each (its inner loop), binding `call`, the slice's
/// dispatch block (`base` with the slice, adding onto what is stored after the
/// first slice, or from the first when `accumulate`), then `buffers`.
pub(crate) fn dispatch_nested_slices(
    rec: &mut Recorder,
    kernel: &KernelSpec,
    (rows, columns): (usize, usize),
    base: DispatchParams,
    accumulate: bool,
    call: &wgpu::Buffer,
    buffers: &[&wgpu::Buffer],
) -> Result<()> {
    let (row_step, column_step) = nested_steps(rows, columns, 0);
    let mut first = true;
    for slice in slices(rows, row_step) {
        for inner in slices(columns, column_step) {
            let params = base
                .with_accumulate(accumulate || !first)
                .with_slice(&slice)?
                .with_inner(&inner)?;
            first = false;
            let params = rec.uniform(kernel.family, &params);
            let mut bound = vec![call, &params];
            bound.extend_from_slice(buffers);
            rec.dispatch(kernel, &bound, u64::from(base.total))?;
        }
    }
    Ok(())
}
