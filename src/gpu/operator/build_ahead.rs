//! First calls of [`GpuConv2d`] while their fast kernel is built ahead on a
//! second device ([`GpuContext::with_builds_ahead`]).

use super::GpuConv2d;
use crate::config::Conv2dConfig;
use crate::dtype::DType;
use crate::error::Result;
use crate::geometry::Conv2dGeometry;
use crate::gpu::conv::forward::ForwardKernel;
use crate::gpu::conv::select::Algorithm;
use crate::gpu::runtime::{GpuContext, Job};
use crate::layer::Conv2d;
use crate::precision::Precision;
use crate::tensor::Tensor;

/// Most input elements the build job runs as the call has them (64 MiB of
/// float32); a larger input runs as its first batch item alone, which
/// builds the same kernel unless the batch changes how the call is split.
const MAX_JOB_INPUT: usize = 1 << 24;

impl GpuConv2d {
    /// The kernel `Auto`'s `kernel` for `geometry` runs as now: itself where
    /// it is built (or building ahead does not apply, or the call computes
    /// nothing), else one quicker to build, while a job builds `kernel` on
    /// the second device once this call is done (the caller releases it
    /// after submitting).
    pub(super) fn while_building(
        &self,
        geometry: &Conv2dGeometry,
        kernel: ForwardKernel,
    ) -> ForwardKernel {
        let Some(quick) = kernel
            .quicker_to_build(geometry)
            .filter(|_| !geometry.output_shape().contains(&0))
        else {
            return kernel;
        };
        let job = || -> Job {
            let mut shape = geometry.input_shape_4d();
            if shape.iter().product::<usize>() > MAX_JOB_INPUT {
                shape[0] = 1;
            }
            let build = Build {
                config: self.config,
                dtype: self.dtype,
                algorithm: Algorithm::of(kernel),
                precision: self.precision(),
                shape,
                subgroups: self.ctx.subgroup_width().is_some(),
                max_binding_bytes: self.ctx.max_binding_bytes(),
            };
            // A failed build leaves the kernel to the first device.
            Box::new(move |second| drop(build.run(second)))
        };
        if !self.ctx.built_ahead(&build_key(&self.ctx, kernel), job) {
            return quick;
        }
        // The quick kernel's copy of the weight, packed in blocks of its own
        // size, serves no later call of this shape.
        let layout = |k: ForwardKernel| k.weight_layout(geometry).map(|(layout, _)| layout);
        if let Some(stale) = layout(quick).filter(|&l| Some(l) != layout(kernel)) {
            self.packed_weight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|(l, _)| *l != stale);
        }
        kernel
    }
}

/// What identifies the build of `kernel` on `ctx` among its device's
/// builds: the kernel, and the context's settings that choose among its
/// pipelines (shared loads across subgroups, the split into dispatches).
fn build_key(ctx: &GpuContext, kernel: ForwardKernel) -> String {
    format!(
        "forward {kernel:?}, subgroups {:?}, bindings of {} bytes",
        ctx.subgroup_width(),
        ctx.max_binding_bytes()
    )
}

/// One build job: a layer of `config` forced to `algorithm`, run once on
/// zeros of `shape` on a second device with the first context's settings,
/// builds the kernel `Auto` picked there.
struct Build {
    config: Conv2dConfig,
    dtype: DType,
    algorithm: Algorithm,
    precision: Precision,
    shape: [usize; 4],
    subgroups: bool,
    max_binding_bytes: u64,
}

impl Build {
    fn run(&self, second: &GpuContext) -> Result<()> {
        let second = second
            .with_subgroups(self.subgroups)
            .with_max_binding_bytes(self.max_binding_bytes);
        let config = self.config;
        let bias = config
            .bias
            .then(|| Tensor::zeros([config.out_channels]))
            .transpose()?;
        let layer = Conv2d::from_weights(config, Tensor::zeros(config.weight_shape())?, bias)?
            .to_dtype(self.dtype);
        let op = GpuConv2d::new(&second, &layer)?
            .with_algorithm(self.algorithm)
            .with_precision(self.precision);
        op.forward(&Tensor::zeros(self.shape)?.to_dtype(self.dtype))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::channel;
    use std::time::Duration;

    use super::*;
    use crate::gpu::tensor::GpuTensor;

    fn ones(shape: &[usize]) -> Tensor {
        Tensor::new(shape, vec![1.0; shape.iter().product()]).unwrap()
    }

    /// While a shape's fast kernel builds, its calls run the quick one;
    /// once built, the fast one. Both give exact one-signed sums of more
    /// terms than llvmpipe's loop limit (65535). The fast kernel's build is
    /// held by the test, so that what runs is known; the build ahead is
    /// forced, so that the quick kernel also runs on drivers where it would
    /// not.
    #[test]
    fn first_calls_run_the_quick_kernel_until_the_fast_one_is_built() {
        let ctx = GpuContext::new()
            .unwrap_or_else(|e| panic!("this test needs a GPU adapter: {e}"))
            .forcing_builds_ahead();
        // Every output of all-ones data is the number of its terms (plus
        // the bias's one), exact in float32. At least 4096 outputs each:
        // `Auto` runs smaller layers on the direct kernel.
        let cases = [
            // 8000 · 9 = 72000 terms per output, blocks of 16 channels,
            // rows of 18 outputs (no whole vec4 stores).
            (
                Conv2dConfig::new(8000, 16, 3),
                [1, 8000, 18, 20],
                72001.0,
                false,
            ),
            // 70000 terms per output, over planes flattened into one row.
            (
                Conv2dConfig::new(70000, 64, 1),
                [1, 70000, 8, 8],
                70001.0,
                true,
            ),
        ];
        // The first case's calls take host tensors, the second's GPU-resident
        // ones (`resident`).
        for (config, shape, sum, resident) in cases {
            let what = format!("{config:?} on {shape:?}");
            let bias = Some(ones(&[config.out_channels]));
            let layer = Conv2d::from_weights(config, ones(&config.weight_shape()), bias).unwrap();
            let input = ones(&shape);
            let exact = |out: Tensor, kernel: &str| {
                if let Some(k) = out.data().iter().position(|&v| v != sum) {
                    panic!(
                        "{what} [{kernel}]: output {k} is {}, not {sum}",
                        out.data()[k]
                    );
                }
            };
            let op = GpuConv2d::new(&ctx, &layer).unwrap();
            let kernel_of = |op: &GpuConv2d| pollster::block_on(op.prepare(&shape)).unwrap().kernel;
            let geometry = Conv2dGeometry::new(&config, &shape).unwrap();
            let device = ctx.adapter_info().device_type;
            let fast = Algorithm::Auto
                .kernel(&geometry, device, op.precision())
                .unwrap();
            let Some(quick) = fast.quicker_to_build(&geometry) else {
                // A GPU's pick (a tiled GEMM) builds in a fraction of a second.
                assert_ne!(device, wgpu::DeviceType::Cpu, "{what}: {fast:?}");
                assert_eq!(kernel_of(&op), fast, "{what}");
                continue;
            };
            let (release, held) = channel::<()>();
            let (started, start) = channel::<()>();
            let hold = move || -> Job {
                Box::new(move |_| {
                    let _ = started.send(());
                    let _ = held.recv();
                })
            };
            assert!(!ctx.built_ahead(&build_key(&ctx, fast), hold), "{what}");
            assert_eq!(kernel_of(&op), quick, "{what}: while building");
            // The build starts once a call has submitted itself, not before.
            assert!(start.try_recv().is_err(), "{what}: started before a call");
            let quick_out = if resident {
                let resident = GpuTensor::upload(&ctx, &input).unwrap();
                op.forward_gpu(&resident).unwrap().download().unwrap()
            } else {
                op.forward(&input).unwrap()
            };
            exact(quick_out, "quick");
            start
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("{what}: the call did not start the build"));
            // Neither a forced algorithm nor a context that does not build
            // ahead runs the quick kernel.
            let forced = GpuConv2d::new(&ctx, &layer)
                .unwrap()
                .with_algorithm(Algorithm::of(fast));
            assert_eq!(kernel_of(&forced), fast, "{what}: forced");
            let off = GpuConv2d::new(&ctx.with_builds_ahead(false), &layer).unwrap();
            assert_eq!(kernel_of(&off), fast, "{what}: not building ahead");

            let quick_layout = quick.weight_layout(&geometry).unwrap().0;
            let layouts = |op: &GpuConv2d| -> Vec<_> {
                op.packed_weight
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(l, _)| *l)
                    .collect()
            };
            assert_eq!(layouts(&op), [quick_layout], "{what}");

            release.send(()).unwrap();
            ctx.wait_for_builds_ahead();
            assert_eq!(kernel_of(&op), fast, "{what}: built");
            exact(op.forward(&input).unwrap(), "fast");
            // The quick kernel's packed weight is let go.
            let fast_layout = fast.weight_layout(&geometry).unwrap().0;
            assert_eq!(layouts(&op), [fast_layout], "{what}");
        }
    }
}
