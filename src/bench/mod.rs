//! Benchmarks: how long one convolution's forward pass, backward pass or
//! training step takes with each algorithm on a GPU.
//!
//! The kernel time is the GPU's own, from timestamp queries around every
//! compute pass of a GPU-resident call ([`GpuConv2d::forward_gpu_timed`],
//! [`GpuConv2d::backward_gpu_timed`], and the optimiser's update); on adapters
//! without timestamps it is the wall time of submitting that call and waiting
//! for it, with the data already on the GPU. The end-to-end time is the wall
//! time of [`GpuConv2d::forward`] or [`GpuConv2d::backward`] (upload, compute,
//! read-back), or of a step driven from the host (see [`Pass::Step`]). Each
//! figure is the median over repeated runs after a warm-up run.

mod ceilings;

pub use ceilings::{Bound, Ceilings, measure_ceilings};

use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng, rngs::StdRng};

use crate::config::Conv2dConfig;
use crate::dtype::DType;
use crate::error::{Conv2dError, Result, fmt_shape};
use crate::geometry::Conv2dGeometry;
use crate::gpu::runtime::buffers::{check_buffer_size, check_fits};
use crate::gpu::{
    Algorithm, BackwardAlgorithm, GpuContext, GpuConv2d, GpuTensor, GradMask, Sgd, SgdConfig,
};
use crate::layer::Conv2d;
use crate::precision::Precision;
use crate::tensor::{Tensor, checked_numel, try_with_capacity};

/// How long to measure each figure.
#[derive(Debug, Clone, Copy)]
pub struct BenchOptions {
    /// Keep repeating until this much time was spent (after at least `min_runs`).
    pub min_time: Duration,
    /// Runs at least.
    pub min_runs: usize,
    /// Runs at most.
    pub max_runs: usize,
    /// The dtype of the layer and its tensors (float32 by default).
    pub dtype: DType,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            min_time: Duration::from_millis(500),
            min_runs: 3,
            max_runs: 200,
            dtype: DType::F32,
        }
    }
}

/// How the kernel time was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelTiming {
    /// GPU timestamp queries around each compute pass.
    Timestamps,
    /// Wall time of submit-and-wait, data already on the GPU.
    SubmitAndWait,
}

impl KernelTiming {
    /// `timestamps` or `submit-and-wait`.
    pub fn name(self) -> &'static str {
        match self {
            KernelTiming::Timestamps => "timestamps",
            KernelTiming::SubmitAndWait => "submit-and-wait",
        }
    }
}

/// Which pass a measurement times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// `layer(input)`.
    Forward,
    /// The input, weight and bias gradients.
    Backward,
    /// One training step: the forward, the input, weight and bias gradients,
    /// and `torch.optim.SGD(lr=0.01, momentum=0.9)`'s update of the weight
    /// and bias. End to end, the input and output gradient are uploaded from
    /// the host and the output read back (for a loss), the gradients and
    /// parameters stay on the GPU.
    Step,
}

impl Pass {
    /// `forward`, `backward` or `step`.
    pub fn name(self) -> &'static str {
        match self {
            Pass::Forward => "forward",
            Pass::Backward => "backward",
            Pass::Step => "step",
        }
    }
}

impl std::str::FromStr for Pass {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "forward" => Ok(Pass::Forward),
            "backward" => Ok(Pass::Backward),
            "step" => Ok(Pass::Step),
            other => Err(format!(
                "unknown pass '{other}' (expected forward, backward or step)"
            )),
        }
    }
}

/// One benchmarked configuration, pass and algorithm.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// The pass timed.
    pub pass: Pass,
    /// The kernels that ran (what `Auto` picked, when it was asked for).
    pub algorithm: String,
    /// The algorithm asked for.
    pub requested: &'static str,
    /// The precision `Auto` kept: the context's (see
    /// [`GpuContext::with_precision`]).
    pub precision: Precision,
    /// The dtype of the layer and its tensors.
    pub dtype: DType,
    /// Median kernel time, milliseconds.
    pub kernel_ms: f64,
    /// How `kernel_ms` was measured.
    pub kernel_timing: KernelTiming,
    /// Median time of upload + compute + read-back, milliseconds.
    pub end_to_end_ms: f64,
    /// Floating-point operations: `2·N·K·OH·OW·(C/G)·KH·KW` for the forward;
    /// for the backward that twice (input and weight gradients) plus
    /// `N·K·OH·OW` (the bias gradient's adds); for a step the forward's and
    /// the backward's (the update's few per parameter are left out).
    pub flops: u64,
    /// `flops` per kernel second, in units of 10⁹.
    pub gflops: f64,
    /// Bytes the pass must at least read and write, at the dtype's size: the
    /// forward reads the input, weight and bias and writes the output; the
    /// backward reads the input, weight and output gradient and writes the
    /// three gradients; a step both (the update's parameter traffic left out).
    pub bytes: u64,
    /// Runs behind each median.
    pub runs: usize,
    /// Wall time of the first GPU-resident call in this process, milliseconds:
    /// the kernel plus creating its pipelines (and the driver compiling them,
    /// unless its own shader cache has them), the cold start of a new shape.
    pub first_call_ms: f64,
    /// For `Auto` on a context that builds kernels ahead
    /// ([`GpuContext::with_builds_ahead`]): how the calls after the first
    /// went. `None` otherwise.
    pub built_ahead: Option<BuiltAhead>,
}

/// The first calls of a layer whose kernel is built ahead, in wall-clock
/// milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct BuiltAhead {
    /// The second call, made at once: while the build (if any) runs.
    pub building_call_ms: f64,
    /// From the first call's start until the kernels built ahead were built.
    pub built_ms: f64,
    /// The call after that, the first to run them (from the driver's cache).
    pub takeover_call_ms: f64,
}

/// Times the forward pass of `config` on an input of `input_shape` with
/// `algorithm` (weights and input random, seeded).
pub fn measure(
    ctx: &GpuContext,
    config: Conv2dConfig,
    input_shape: &[usize],
    algorithm: Algorithm,
    options: &BenchOptions,
) -> Result<Measurement> {
    let geometry = Conv2dGeometry::new(&config, input_shape)?;
    algorithm.check(&geometry)?;
    let (layer, input) = random_layer_and_input(ctx, config, input_shape, options.dtype)?;
    let gpu = GpuConv2d::new(ctx, &layer)?.with_algorithm(algorithm);
    // What runs: Auto's rules, or its measured choice on a context that autotunes.
    let resolved = gpu.resolved_algorithm(input_shape)?;
    let resident = GpuTensor::upload(ctx, &input)?;
    let start = Instant::now();
    gpu.forward_gpu_timed(&resident)?;
    let first_call_ms = start.elapsed().as_secs_f64() * 1e3;
    let built_ahead = built_ahead(ctx, algorithm == Algorithm::Auto, start, || {
        gpu.forward_gpu_timed(&resident).map(drop)
    })?;
    let mut timing = KernelTiming::Timestamps;
    let kernel = repeat(options, || {
        let start = Instant::now();
        let (_, gpu_ms) = gpu.forward_gpu_timed(&resident)?;
        Ok(kernel_ms(gpu_ms, start, &mut timing))
    })?;
    let end_to_end = repeat(options, || {
        let start = Instant::now();
        gpu.forward(&input)?;
        Ok(start.elapsed().as_secs_f64() * 1e3)
    })?;
    let mut measurement = Measurement::new(
        Pass::Forward,
        resolved.name().to_string(),
        (algorithm.name(), ctx.precision(), options.dtype),
        (kernel, end_to_end, timing, first_call_ms),
        (
            geometry.flops(),
            forward_bytes(&geometry, config.bias, options.dtype),
        ),
    );
    measurement.built_ahead = built_ahead;
    Ok(measurement)
}

/// Times the backward pass (input, weight and bias gradients) of `config` on
/// an input of `input_shape` with `algorithm` (weights, input and output
/// gradient random, seeded).
pub fn measure_backward(
    ctx: &GpuContext,
    config: Conv2dConfig,
    input_shape: &[usize],
    algorithm: BackwardAlgorithm,
    options: &BenchOptions,
) -> Result<Measurement> {
    let geometry = Conv2dGeometry::new(&config, input_shape)?;
    let resolved = algorithm.describe(ctx, &geometry, ctx.precision())?;
    let (layer, input) = random_layer_and_input(ctx, config, input_shape, options.dtype)?;
    let grad_output = random_grad_output(&geometry)?.to_dtype(options.dtype);
    let gpu = GpuConv2d::new(ctx, &layer)?.with_backward_algorithm(algorithm);
    let resident = GpuTensor::upload(ctx, &input)?;
    let resident_grad = GpuTensor::upload(ctx, &grad_output)?;
    let start = Instant::now();
    gpu.backward_gpu_timed(&resident, &resident_grad, GradMask::ALL)?;
    let first_call_ms = start.elapsed().as_secs_f64() * 1e3;
    let built_ahead = built_ahead(ctx, algorithm == BackwardAlgorithm::Auto, start, || {
        gpu.backward_gpu_timed(&resident, &resident_grad, GradMask::ALL)
            .map(drop)
    })?;
    let mut timing = KernelTiming::Timestamps;
    let kernel = repeat(options, || {
        let start = Instant::now();
        let (_, gpu_ms) = gpu.backward_gpu_timed(&resident, &resident_grad, GradMask::ALL)?;
        Ok(kernel_ms(gpu_ms, start, &mut timing))
    })?;
    let end_to_end = repeat(options, || {
        let start = Instant::now();
        gpu.backward(&input, &grad_output)?;
        Ok(start.elapsed().as_secs_f64() * 1e3)
    })?;
    let mut measurement = Measurement::new(
        Pass::Backward,
        resolved,
        (algorithm.name(), ctx.precision(), options.dtype),
        (kernel, end_to_end, timing, first_call_ms),
        (
            backward_flops(&geometry, config.bias),
            backward_bytes(&geometry, config.bias, options.dtype),
        ),
    );
    measurement.built_ahead = built_ahead;
    Ok(measurement)
}

/// Times one training step (see [`Pass::Step`]) of `config` on an input of
/// `input_shape`: `forward` runs the forward, `backward` the gradients; the
/// measurement's `requested` names the backward algorithm, and its
/// `algorithm` both kernels that ran (`forward + backward`).
pub fn measure_step(
    ctx: &GpuContext,
    config: Conv2dConfig,
    input_shape: &[usize],
    (forward, backward): (Algorithm, BackwardAlgorithm),
    options: &BenchOptions,
) -> Result<Measurement> {
    let geometry = Conv2dGeometry::new(&config, input_shape)?;
    let (layer, input) = random_layer_and_input(ctx, config, input_shape, options.dtype)?;
    let grad_output = random_grad_output(&geometry)?.to_dtype(options.dtype);
    let mut gpu = GpuConv2d::new(ctx, &layer)?
        .with_algorithm(forward)
        .with_backward_algorithm(backward);
    let resolved = format!(
        "{} + {}",
        gpu.resolved_algorithm(input_shape)?.name(),
        backward.describe(ctx, &geometry, ctx.precision())?
    );
    let mut sgd = Sgd::new(SgdConfig {
        lr: 0.01,
        momentum: 0.9,
        ..SgdConfig::default()
    })?;
    let resident = GpuTensor::upload(ctx, &input)?;
    let resident_grad = GpuTensor::upload(ctx, &grad_output)?;
    let start = Instant::now();
    gpu.forward_gpu_timed(&resident)?;
    let grads = gpu.backward_gpu(&resident, &resident_grad, GradMask::ALL)?;
    pollster::block_on(sgd.step_timed(&mut gpu, &grads))?;
    let first_call_ms = start.elapsed().as_secs_f64() * 1e3;
    let mut timing = KernelTiming::Timestamps;
    let kernel = repeat(options, || {
        let start = Instant::now();
        let (_, forward_ms) = gpu.forward_gpu_timed(&resident)?;
        let (grads, backward_ms) =
            gpu.backward_gpu_timed(&resident, &resident_grad, GradMask::ALL)?;
        let update_ms = pollster::block_on(sgd.step_timed(&mut gpu, &grads))?;
        let gpu_ms = [forward_ms, backward_ms, update_ms].into_iter().sum();
        Ok(kernel_ms(gpu_ms, start, &mut timing))
    })?;
    let end_to_end = repeat(options, || {
        let start = Instant::now();
        let x = GpuTensor::upload(ctx, &input)?;
        gpu.forward_gpu(&x)?.download()?;
        let grad_y = GpuTensor::upload(ctx, &grad_output)?;
        let grads = gpu.backward_gpu(&x, &grad_y, GradMask::ALL)?;
        sgd.step(&mut gpu, &grads)?;
        ctx.device()
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Conv2dError::Gpu(e.to_string()))?;
        Ok(start.elapsed().as_secs_f64() * 1e3)
    })?;
    Ok(Measurement::new(
        Pass::Step,
        resolved,
        (backward.name(), ctx.precision(), options.dtype),
        (kernel, end_to_end, timing, first_call_ms),
        (
            geometry
                .flops()
                .saturating_add(backward_flops(&geometry, config.bias)),
            forward_bytes(&geometry, config.bias, options.dtype).saturating_add(backward_bytes(
                &geometry,
                config.bias,
                options.dtype,
            )),
        ),
    ))
}

/// The backward's FLOPs: twice the forward's (input and weight gradients)
/// plus the bias gradient's adds.
fn backward_flops(geometry: &Conv2dGeometry, bias: bool) -> u64 {
    let [n, k, oh, ow] = geometry.output_shape_4d();
    let bias_adds = if bias { (n * k * oh * ow) as u64 } else { 0 };
    geometry.flops().saturating_mul(2).saturating_add(bias_adds)
}

/// Elements of the input, weight, bias (when there is one) and output.
fn tensor_elements(geometry: &Conv2dGeometry, bias: bool) -> [u64; 4] {
    let numel = |shape: &[usize]| shape.iter().map(|&d| d as u64).product::<u64>();
    let bias = if bias {
        geometry.output_channels() as u64
    } else {
        0
    };
    [
        numel(&geometry.input_shape_4d()),
        geometry.weight_len() as u64,
        bias,
        numel(&geometry.output_shape_4d()),
    ]
}

/// The forward's least traffic: input, weight and bias read, output written.
fn forward_bytes(geometry: &Conv2dGeometry, bias: bool, dtype: DType) -> u64 {
    tensor_elements(geometry, bias).iter().sum::<u64>() * dtype.size() as u64
}

/// The backward's least traffic: input, weight and output gradient read;
/// input, weight and bias gradients written.
fn backward_bytes(geometry: &Conv2dGeometry, bias: bool, dtype: DType) -> u64 {
    let [x, w, b, y] = tensor_elements(geometry, bias);
    (2 * x + 2 * w + b + y) * dtype.size() as u64
}

/// A seeded random output gradient for `geometry`.
fn random_grad_output(geometry: &Conv2dGeometry) -> Result<Tensor> {
    let output_len = geometry.output_shape().iter().product::<usize>();
    let mut rng = StdRng::seed_from_u64(3);
    let mut data = try_with_capacity("grad_output", output_len)?;
    data.extend((0..output_len).map(|_| rng.random_range(-1.0f32..1.0)));
    Tensor::new(geometry.output_shape(), data)
}

impl Measurement {
    fn new(
        pass: Pass,
        algorithm: String,
        (requested, precision, dtype): (&'static str, Precision, DType),
        (kernel, end_to_end, timing, first_call_ms): (Repeated, Repeated, KernelTiming, f64),
        (flops, bytes): (u64, u64),
    ) -> Self {
        Self {
            pass,
            algorithm,
            requested,
            precision,
            dtype,
            kernel_ms: kernel.median,
            kernel_timing: timing,
            end_to_end_ms: end_to_end.median,
            flops,
            gflops: flops as f64 / (kernel.median * 1e-3) / 1e9,
            bytes,
            runs: kernel.runs.min(end_to_end.runs),
            first_call_ms,
            built_ahead: None,
        }
    }
}

/// For a call under `auto` on a context that builds kernels ahead, after
/// its first `call` (started at `start`): one call at once (while the build
/// runs), a wait for the build, and the call that first runs what it built.
/// So that only the built kernels are timed after it. `None` otherwise.
fn built_ahead(
    ctx: &GpuContext,
    auto: bool,
    start: Instant,
    mut call: impl FnMut() -> Result<()>,
) -> Result<Option<BuiltAhead>> {
    if !auto || !ctx.builds_ahead() {
        return Ok(None);
    }
    let ms = |since: Instant| since.elapsed().as_secs_f64() * 1e3;
    let building = Instant::now();
    call()?;
    let building_call_ms = ms(building);
    ctx.wait_for_builds_ahead();
    let built_ms = ms(start);
    let takeover = Instant::now();
    call()?;
    Ok(Some(BuiltAhead {
        building_call_ms,
        built_ms,
        takeover_call_ms: ms(takeover),
    }))
}

/// The GPU's own time when it has timestamps, else the wall time since `start`
/// (and `timing` says so).
fn kernel_ms(gpu_ms: Option<f64>, start: Instant, timing: &mut KernelTiming) -> f64 {
    gpu_ms.unwrap_or_else(|| {
        *timing = KernelTiming::SubmitAndWait;
        start.elapsed().as_secs_f64() * 1e3
    })
}

/// A seeded random layer of `config` and input of `input_shape`, after
/// checking that both fit the device.
fn random_layer_and_input(
    ctx: &GpuContext,
    config: Conv2dConfig,
    input_shape: &[usize],
    dtype: DType,
) -> Result<(Conv2d, Tensor)> {
    let input_len = check_sizes(ctx, &config, input_shape)?;
    let layer = Conv2d::new(config, 1)?.to_dtype(dtype);
    let mut rng = StdRng::seed_from_u64(2);
    let mut data = try_with_capacity("input", input_len)?;
    data.extend((0..input_len).map(|_| rng.random_range(-1.0f32..1.0)));
    Ok((layer, Tensor::new(input_shape, data)?.to_dtype(dtype)))
}

/// Fails unless the input, weight and output of `config` on `input_shape`
/// fit the device, before anything is made on the host; returns the input's
/// element count.
pub fn check_sizes(
    ctx: &GpuContext,
    config: &Conv2dConfig,
    input_shape: &[usize],
) -> Result<usize> {
    let geometry = Conv2dGeometry::new(config, input_shape)?;
    let numel = |what: &'static str, shape: &[usize]| {
        checked_numel(shape).ok_or_else(|| Conv2dError::ValueTooLarge {
            what,
            value: fmt_shape(shape),
        })
    };
    let input_len = numel("input", input_shape)?;
    let output_len = numel("output", &geometry.output_shape())?;
    check_fits(ctx, &[("weight", numel("weight", &config.weight_shape())?)])?;
    check_buffer_size(ctx, &[("input", input_len), ("output", output_len)])?;
    Ok(input_len)
}

struct Repeated {
    median: f64,
    runs: usize,
}

/// One warm-up run, then runs until the options are met; the median of their results.
fn repeat(options: &BenchOptions, mut run: impl FnMut() -> Result<f64>) -> Result<Repeated> {
    run()?;
    let start = Instant::now();
    let mut times = Vec::new();
    while times.len() < options.max_runs.max(1)
        && (times.len() < options.min_runs.max(1) || start.elapsed() < options.min_time)
    {
        times.push(run()?);
    }
    times.sort_by(f64::total_cmp);
    Ok(Repeated {
        median: times[times.len() / 2],
        runs: times.len(),
    })
}
