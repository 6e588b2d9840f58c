//! The driver's loop limit, and the slicing that keeps every kernel under it.
//!
//! Mesa's llvmpipe (lavapipe, the CPU Vulkan driver of headless machines and of
//! our CI) gives each shader one loop counter, `LP_MAX_TGSI_LOOP_ITERATIONS` =
//! 65535, shared by every loop of the shader (helper functions are inlined into
//! it) and decremented at each loop's back-edge, for a SIMD bundle of 8
//! invocations at once. When it reaches zero every loop is left early, silently:
//! a reduction then drops its remaining terms and the result is wrong with no
//! error (`gallivm/lp_bld_ir_common.c`, `lp_exec_endloop`). Measured on Mesa
//! 22.3.6: a loop of `n` iterations costs `n + 1` (its exit test is one more
//! pass); loops in both arms of a branch that differs between invocations both
//! run; a few passes go unaccounted in deeper branch nests.
//!
//! Real GPUs have no such limit, but the bound is cheap, so every kernel keeps
//! it everywhere, by construction: the host splits each long reduction into
//! slices, one dispatch each (a kernel reads its slice from its uniform block), the later ones adding onto what the earlier ones stored,
//! in the same fixed order. Each kernel states its loop cost next to its launch;
//! the tests run every kernel with one-signed data (whose sums drop no term
//! inside the error bound) on reductions far past 65535 terms.

use std::ops::Range;

/// The loop passes one invocation may make, all loops of its shader together,
/// each loop counted as its iterations + 1, every loop of the shader counted
/// whether its branch runs or not. Below the driver's 65535 with room for the
/// passes the driver spends on its own.
pub(crate) const LOOP_BUDGET: usize = 60_000;

/// Consecutive ranges of at most `step` covering `0..len`; one empty range when
/// `len` is 0, so a kernel whose reduction is empty still runs once (to store
/// the bias or zeros).
pub(crate) fn slices(len: usize, step: usize) -> Vec<Range<usize>> {
    let step = step.max(1);
    if len == 0 {
        return std::iter::once(0..0).collect();
    }
    (0..len)
        .step_by(step)
        .map(|start| start..(start + step).min(len))
        .collect()
}

/// Slice lengths for an outer loop over `rows` holding an inner loop over
/// `cols` (plus `fixed` passes of other loops): `fixed + 1 + R·(E + 2)` passes
/// for `R` rows of `E` columns. Returns `(R, E)`: whole rows where a row fits
/// in half the budget, else rows cut into column slices too.
pub(crate) fn nested_steps(rows: usize, cols: usize, fixed: usize) -> (usize, usize) {
    let budget = LOOP_BUDGET - fixed - 1;
    let col_step = if cols + 2 <= budget / 2 {
        cols.max(1)
    } else {
        budget / 2 - 2
    };
    let row_step = (budget / (col_step + 2)).clamp(1, rows.max(1));
    (row_step, col_step)
}

/// Iterations of one loop whose every iteration costs `per_iteration` passes
/// (itself and the loops inside it), beside `fixed` passes of other loops.
pub(crate) fn loop_steps(per_iteration: usize, fixed: usize) -> usize {
    ((LOOP_BUDGET - fixed - 1) / per_iteration).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_the_range_once() {
        assert_eq!(slices(0, 10), vec![0..0]);
        assert_eq!(slices(25, 10), vec![0..10, 10..20, 20..25]);
        assert_eq!(slices(10, 10), vec![0..10]);
    }

    #[test]
    fn nested_slices_stay_within_the_budget() {
        for (rows, cols) in [
            (1, 1),
            (12_288, 3),
            (70_000, 1),
            (1, 70_000),
            (5, 300_000),
            (40_000, 40_000),
        ] {
            let (r, e) = nested_steps(rows, cols, 0);
            assert!(r * (e + 2) < LOOP_BUDGET, "{rows}x{cols}: {r}x{e}");
            assert!(r >= 1 && e >= 1 && r <= rows.max(1));
        }
        // Whole rows where they fit: a 2048-channel 3×3 reduction is one slice.
        assert_eq!(nested_steps(2048 * 3, 3, 0), (2048 * 3, 3));
    }
}

/// The budget holds on the adapter the tests run on (lavapipe in CI): loops
/// shaped as the kernels' are, spending the whole budget, run every iteration.
#[cfg(test)]
mod on_the_device {
    use super::LOOP_BUDGET;
    use crate::gpu::runtime::buffers::{read_mapped, staging};
    use crate::gpu::runtime::registry::Binding;
    use crate::gpu::runtime::{GpuContext, Recorder, WrittenKernel};

    /// Lane `l` counts the iterations it runs: a nested loop (`rows` × `cols`),
    /// then, in a branch that differs between lanes, one loop or another.
    const PROBE: WrittenKernel = WrittenKernel::new(
        "loop_budget_probe",
        r#"
override WORKGROUP_SIZE: u32;
struct Probe { rows: u32, cols: u32, even: u32, odd: u32 }
@group(0) @binding(0) var<uniform> p: Probe;
@group(0) @binding(1) var<storage, read_write> counts: array<u32>;
@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(local_invocation_index) lane: u32) {
    var count = 0u;
    for (var r = 0u; r < p.rows; r++) {
        for (var c = 0u; c < p.cols; c++) {
            count += 1u;
        }
    }
    if (lane % 2u == 0u) {
        for (var k = 0u; k < p.even; k++) {
            count += 1u;
        }
    } else {
        for (var k = 0u; k < p.odd; k++) {
            count += 1u;
        }
    }
    counts[lane] = count;
}
"#,
        64,
        &[Binding::Uniform, Binding::ReadWrite],
    );

    fn run(ctx: &GpuContext, probe: [u32; 4]) -> Vec<u32> {
        let mut rec = Recorder::new(ctx);
        let params = rec.uniform("probe", &probe);
        let counts = rec.scratch("counts", 64);
        let readback = staging(ctx, 64);
        rec.dispatch(&PROBE.spec(), &[&params, &counts], 64)
            .unwrap();
        rec.copy(&counts, 0, &readback, 0, 64);
        rec.submit();
        let words = pollster::block_on(read_mapped(ctx, &readback, 64)).unwrap();
        bytemuck::cast_slice::<f32, u32>(&words).to_vec()
    }

    /// The negative control of the loop-limit suite: on llvmpipe a loop past
    /// 65535 iterations really is cut short, silently, so that the one-signed
    /// tests past that length (`tests/loop_limit.rs`) test something. Other
    /// drivers have no such limit: there the full count must come back.
    #[test]
    fn a_loop_past_the_drivers_limit_is_cut_short_on_llvmpipe() {
        let ctx =
            GpuContext::new().unwrap_or_else(|e| panic!("this test needs a GPU adapter: {e}"));
        let iterations = 100_000;
        let counts = run(&ctx, [1, iterations, 0, 0]);
        let limited = ctx.adapter_info().name.contains("llvmpipe");
        for (lane, &count) in counts.iter().enumerate() {
            if limited {
                assert!(
                    count < 65_536,
                    "lane {lane} on {}: counted {count} of {iterations}; llvmpipe was expected to stop at 65535",
                    ctx.describe()
                );
            } else {
                assert_eq!(count, iterations, "lane {lane} on {}", ctx.describe());
            }
        }
        eprintln!(
            "{}: a loop of {iterations} iterations counted {}{}",
            ctx.describe(),
            counts[0],
            if limited {
                " (llvmpipe's loop limit)"
            } else {
                ": this adapter has no loop limit"
            }
        );
    }

    #[test]
    fn every_iteration_within_the_budget_runs() {
        let ctx =
            GpuContext::new().unwrap_or_else(|e| panic!("this test needs a GPU adapter: {e}"));
        let budget = LOOP_BUDGET as u32;
        // Passes: (rows + 1) + rows·(cols + 1), then (even + 1) + (odd + 1).
        let (rows, cols) = (9_000, 4);
        let nested = rows + 1 + rows * (cols + 1);
        let even = (budget - nested) / 2 - 1;
        let odd = budget - nested - (even + 1) - 1;
        assert_eq!(nested + even + 1 + odd + 1, budget);
        let counts = run(&ctx, [rows, cols, even, odd]);
        for (lane, &count) in counts.iter().enumerate() {
            let branch = if lane % 2 == 0 { even } else { odd };
            assert_eq!(
                count,
                rows * cols + branch,
                "lane {lane} on {}: the driver stopped a loop early",
                ctx.describe()
            );
        }
    }
}
