//! The two ceilings of the adapter that bound every convolution, measured by
//! two small kernels in the same run as the layers: the rate of fused
//! multiply-adds in registers (`shaders/ceiling_fma.wgsl`) and the rate of
//! streaming a tensor through (`shaders/ceiling_stream.wgsl`). A layer's
//! floor is the larger of its FLOPs at the first and its bytes at the second
//! ([`Ceilings::floor_ms`]); its kernel time over that floor says how far the
//! kernel is from the machine.

use std::time::Instant;

use crate::error::Result;
use crate::gpu::GpuContext;
use crate::gpu::runtime::buffers::wait_idle;
use crate::gpu::runtime::registry::Binding::{ReadOnly, ReadWrite};
use crate::gpu::runtime::{Recorder, WrittenKernel};

use super::{BenchOptions, repeat};

/// Invocations per workgroup of both kernels.
const WORKGROUP_SIZE: u32 = 64;

/// Loop iterations of the FMA kernel: eight vec4 FMAs each.
const FMA_ITERATIONS: u32 = 1024;

/// Invocations of the FMA kernel.
const FMA_INVOCATIONS: u32 = 1 << 16;

/// vec4s per invocation of the streaming kernel.
const STREAM_VECS: u32 = 4;

/// Bytes the streaming kernel reads (and writes as many), capped by the
/// device's binding limit.
const STREAM_BYTES: u64 = 64 << 20;

const FMA: WrittenKernel = WrittenKernel::new(
    "ceiling_fma",
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/shaders/ceiling_fma.wgsl"
    )),
    WORKGROUP_SIZE,
    &[ReadWrite],
)
.with_constants("ceiling_fma", &[("ITERATIONS", FMA_ITERATIONS as f64)]);

const STREAM: WrittenKernel = WrittenKernel::new(
    "ceiling_stream",
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/shaders/ceiling_stream.wgsl"
    )),
    WORKGROUP_SIZE,
    &[ReadOnly, ReadWrite],
)
.with_constants("ceiling_stream", &[("FOUR", STREAM_VECS as f64)]);

/// The adapter's two ceilings, as measured.
#[derive(Debug, Clone, Copy)]
pub struct Ceilings {
    /// Multiply-adds in registers, in GFLOP/s (an FMA counts two).
    pub fma_gflops: f64,
    /// Bytes read plus bytes written per second by the streaming kernel, in GB/s.
    pub stream_gbps: f64,
}

/// Which ceiling binds a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// Its FLOPs at the FMA rate take longer than its bytes at the streaming rate.
    Compute,
    /// Its bytes take longer.
    Memory,
}

impl Bound {
    /// `compute` or `memory`.
    pub fn name(self) -> &'static str {
        match self {
            Bound::Compute => "compute",
            Bound::Memory => "memory",
        }
    }
}

impl Ceilings {
    /// The least time, in milliseconds, a kernel doing `flops` and moving
    /// `bytes` can take at these ceilings, and which one binds it.
    pub fn floor_ms(&self, flops: u64, bytes: u64) -> (f64, Bound) {
        let compute = flops as f64 / (self.fma_gflops * 1e6);
        let memory = bytes as f64 / (self.stream_gbps * 1e6);
        if compute >= memory {
            (compute, Bound::Compute)
        } else {
            (memory, Bound::Memory)
        }
    }
}

/// Measures both ceilings on `ctx` (the median over repeated runs after a
/// warm-up, timed as the layers are).
pub fn measure_ceilings(ctx: &GpuContext, options: &BenchOptions) -> Result<Ceilings> {
    let fma_flops = u64::from(FMA_INVOCATIONS) * u64::from(FMA_ITERATIONS) * 8 * 4 * 2;
    let fma_ms = repeat(options, || {
        time(ctx, |rec| {
            let out = rec.scratch("fma ceiling", FMA_INVOCATIONS as usize * 4);
            rec.dispatch(&FMA.spec(), &[&out], u64::from(FMA_INVOCATIONS))
        })
    })?;
    let bytes = STREAM_BYTES.min(ctx.max_binding_bytes()) / 64 * 64;
    let vec4s = (bytes / 16) as usize;
    let invocations = (vec4s as u64).div_ceil(u64::from(STREAM_VECS));
    let stream_ms = repeat(options, || {
        time(ctx, |rec| {
            let x = rec.scratch("stream ceiling input", vec4s * 4);
            let y = rec.scratch("stream ceiling output", vec4s * 4);
            rec.dispatch(&STREAM.spec(), &[&x, &y], invocations)
        })
    })?;
    Ok(Ceilings {
        fma_gflops: fma_flops as f64 / (fma_ms.median * 1e6),
        stream_gbps: (2 * bytes) as f64 / (stream_ms.median * 1e6),
    })
}

/// Kernel milliseconds of what `record` records: timestamps where the
/// adapter has them, else the wall time of submitting and waiting.
fn time(ctx: &GpuContext, record: impl FnOnce(&mut Recorder) -> Result<()>) -> Result<f64> {
    let start = Instant::now();
    let mut rec = Recorder::timed(ctx);
    record(&mut rec)?;
    let pending = rec.submit_timed();
    match pending {
        Some(pending) => pollster::block_on(pending.millis(ctx)),
        None => {
            pollster::block_on(wait_idle(ctx))?;
            Ok(start.elapsed().as_secs_f64() * 1e3)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::runtime::registry::tests::validate;

    /// Both kernels validate with naga, and their loops stay far under the
    /// driver's loop limit by construction (a constant count, no data size).
    #[test]
    fn kernels_validate_and_loop_a_fixed_count() {
        validate(&FMA.spec());
        validate(&STREAM.spec());
    }

    // Their loops stay far under the driver's loop limit, whatever the data.
    const _: () = assert!(FMA_ITERATIONS < 65535 && STREAM_VECS < 65535);

    /// The floor is the slower of the two ceilings' times, and says which.
    #[test]
    fn the_floor_is_the_binding_ceiling() {
        let c = Ceilings {
            fma_gflops: 50.0,
            stream_gbps: 10.0,
        };
        // 1 GFLOP: 20 ms of compute; 100 MB: 10 ms of streaming.
        assert_eq!(
            c.floor_ms(1_000_000_000, 100_000_000),
            (20.0, Bound::Compute)
        );
        assert_eq!(c.floor_ms(1_000_000, 100_000_000), (10.0, Bound::Memory));
    }
}
