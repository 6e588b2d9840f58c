//! First calls of [`GpuConv2d`] while their fast kernel is built ahead on a
//! second device ([`GpuContext::with_builds_ahead`]).

use super::GpuConv2d;
use crate::config::Conv2dConfig;
use crate::dtype::DType;
use crate::error::Result;
use crate::geometry::Conv2dGeometry;
use crate::gpu::conv::backward::BackwardKernels;
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
            .map(|quick| quick.for_values_of(self.dtype))
        else {
            return kernel;
        };
        let job = || self.build_job(geometry, Pass::Forward(Algorithm::of(kernel)));
        if !self.ctx.built_ahead(&build_key(&self.ctx, &kernel), job) {
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

    /// [`while_building`](Self::while_building) for the kernels of a
    /// backward call under `BackwardAlgorithm::Auto`: its input gradient's
    /// phases and its weight gradient.
    pub(super) fn backward_while_building(
        &self,
        geometry: &Conv2dGeometry,
        kernels: BackwardKernels,
    ) -> BackwardKernels {
        let Some(quick) = kernels
            .quicker_to_build(geometry, self.dtype)
            .filter(|_| !geometry.output_shape().contains(&0))
        else {
            return kernels;
        };
        let job = || self.build_job(geometry, Pass::Backward);
        if self.ctx.built_ahead(&build_key(&self.ctx, &kernels), job) {
            kernels
        } else {
            quick
        }
    }

    /// The job that builds this layer's `pass` for `geometry` on the second
    /// device.
    fn build_job(&self, geometry: &Conv2dGeometry, pass: Pass) -> Job {
        let mut batch = geometry.batch;
        if geometry.input_shape_4d().iter().product::<usize>() > MAX_JOB_INPUT {
            batch = 1;
        }
        let with_batch = |mut shape: [usize; 4]| {
            shape[0] = batch;
            shape
        };
        let build = Build {
            config: self.config,
            dtype: self.dtype,
            pass,
            precision: self.precision(),
            input: with_batch(geometry.input_shape_4d()),
            output: with_batch(geometry.output_shape_4d()),
            subgroups: self.ctx.subgroup_width().is_some(),
            max_binding_bytes: self.ctx.max_binding_bytes(),
        };
        // A failed build leaves the kernels to the first device.
        Box::new(move |second| drop(build.run(second)))
    }
}

/// What identifies the build of `kernels` on `ctx` among its device's
/// builds: the kernels, and the context's settings that choose among their
/// pipelines (shared loads across subgroups, the split into dispatches).
fn build_key(ctx: &GpuContext, kernels: &impl std::fmt::Debug) -> String {
    format!(
        "{kernels:?}, subgroups {:?}, bindings of {} bytes",
        ctx.subgroup_width(),
        ctx.max_binding_bytes()
    )
}

/// Which pass a build job runs.
#[derive(Debug, Clone, Copy)]
enum Pass {
    /// The forward, forced to the algorithm `Auto` picked on the first
    /// device.
    Forward(Algorithm),
    /// The backward under `BackwardAlgorithm::Auto`, whose fixed rules the
    /// second device (which builds nothing ahead, and does not autotune)
    /// follows as the first did.
    Backward,
}

/// One build job: a layer of `config` run once on zeros on a second device
/// with the first context's settings builds the kernels `Auto` picked there.
struct Build {
    config: Conv2dConfig,
    dtype: DType,
    pass: Pass,
    precision: Precision,
    /// Shapes of the input and the output (gradient).
    input: [usize; 4],
    output: [usize; 4],
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
        let op = GpuConv2d::new(&second, &layer)?.with_precision(self.precision);
        let zeros = |shape: [usize; 4]| {
            Ok::<_, crate::error::Conv2dError>(Tensor::zeros(shape)?.to_dtype(self.dtype))
        };
        match self.pass {
            Pass::Forward(algorithm) => {
                drop(op.with_algorithm(algorithm).forward(&zeros(self.input)?)?)
            }
            Pass::Backward => drop(op.backward(&zeros(self.input)?, &zeros(self.output)?)?),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::{Receiver, Sender, channel};
    use std::time::Duration;

    use super::*;
    use crate::gpu::conv::select::BackwardAlgorithm;
    use crate::gpu::tensor::GpuTensor;

    /// A build job that says when it starts (`start`) and then waits for
    /// `release`: what runs meanwhile is then known.
    fn held_build() -> (impl FnOnce() -> Job, Sender<()>, Receiver<()>) {
        let (release, held) = channel::<()>();
        let (started, start) = channel::<()>();
        let hold = move || -> Job {
            Box::new(move |_| {
                let _ = started.send(());
                let _ = held.recv();
            })
        };
        (hold, release, start)
    }

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
            let (hold, release, start) = held_build();
            assert!(!ctx.built_ahead(&build_key(&ctx, &fast), hold), "{what}");
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

    /// The backward's first calls run quick kernels (phases and weight
    /// gradient) while its own build is held, then its picked ones; both
    /// give exact one-signed sums past llvmpipe's loop limit: the weight
    /// gradient over 66564 positions, the input gradient over 72000 terms.
    #[test]
    fn backward_first_calls_run_quick_kernels_until_the_picked_ones_are_built() {
        let ctx = GpuContext::new()
            .unwrap_or_else(|e| panic!("this test needs a GPU adapter: {e}"))
            .forcing_builds_ahead();
        // All-ones input, weight and output gradient, no padding, stride 1:
        // each weight's gradient is the number of output positions; an input
        // element's gradient is the output channels times the taps that
        // reach it, `taps(y) · taps(x)` for a kernel of 3 over `out` outputs.
        let taps = |p: usize, out: usize| (0..3).filter(|&i| p >= i && p - i < out).count();
        let cases = [
            (Conv2dConfig::new(4, 16, 3), [1, 4, 260, 260]),
            (Conv2dConfig::new(16, 8000, 3), [1, 16, 16, 16]),
        ];
        for (config, shape) in cases {
            let what = format!("{config:?} on {shape:?}");
            let bias = Some(ones(&[config.out_channels]));
            let layer = Conv2d::from_weights(config, ones(&config.weight_shape()), bias).unwrap();
            let geometry = Conv2dGeometry::new(&config, &shape).unwrap();
            let (oh, ow) = (geometry.height.output, geometry.width.output);
            let input = ones(&shape);
            let grad_output = ones(&geometry.output_shape());
            let exact = |op: &GpuConv2d, kernels: &str| {
                let grads = op.backward(&input, &grad_output).unwrap();
                let positions = (oh * ow) as f32;
                for (name, got) in [
                    ("grad_weight", &grads.grad_weight),
                    ("grad_bias", grads.grad_bias.as_ref().unwrap()),
                ] {
                    if let Some(k) = got.data().iter().position(|&v| v != positions) {
                        panic!(
                            "{what} [{kernels}]: {name}[{k}] is {}, not {positions}",
                            got.data()[k]
                        );
                    }
                }
                let [_, _, h, w] = shape;
                for (k, &v) in grads.grad_input.data().iter().enumerate() {
                    let (y, x) = ((k / w) % h, k % w);
                    let want = (config.out_channels * taps(y, oh) * taps(x, ow)) as f32;
                    assert_eq!(v, want, "{what} [{kernels}]: grad_input[{k}]");
                }
            };
            let op = GpuConv2d::new(&ctx, &layer).unwrap();
            let picked = pollster::block_on(BackwardAlgorithm::Auto.kernels_on(
                &ctx,
                &geometry,
                op.precision(),
            ))
            .unwrap();
            let Some(quick) = picked.quicker_to_build(&geometry, DType::F32) else {
                // A GPU's picks build in a fraction of a second.
                assert_ne!(
                    ctx.adapter_info().device_type,
                    wgpu::DeviceType::Cpu,
                    "{what}"
                );
                continue;
            };
            let describe = |k: &BackwardKernels| format!("{k:?}");
            let (hold, release, start) = held_build();
            assert!(!ctx.built_ahead(&build_key(&ctx, &picked), hold), "{what}");
            assert_eq!(
                describe(&op.backward_while_building(&geometry, picked.clone())),
                describe(&quick),
                "{what}: while building"
            );
            assert!(start.try_recv().is_err(), "{what}: started before a call");
            exact(&op, "quick");
            start
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("{what}: the call did not start the build"));
            release.send(()).unwrap();
            ctx.wait_for_builds_ahead();
            assert_eq!(
                describe(&op.backward_while_building(&geometry, picked.clone())),
                describe(&picked),
                "{what}: built"
            );
            exact(&op, "picked");
        }
        // The first calls' new kernels were shared with the second device,
        // whose stand-in dispatches all passed validation.
        ctx.wait_for_builds_ahead();
        let (handed, built) = ctx.alongside_counts();
        assert!(handed > 0, "no call shared its first builds");
        assert_eq!(
            built, handed,
            "kernels built alongside, of those handed over"
        );
    }
}
