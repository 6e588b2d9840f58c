//! `Auto` under autotuning ([`GpuContext::with_autotune`]): per shape class
//! and precision, every algorithm `Auto` may pick is run once on the real
//! shape with seeded random data and timed (GPU timestamps where the adapter
//! has them, else submit-and-wait); one whose output disagrees with the
//! direct kernel's beyond the bound of the precision in force plus the
//! direct kernel's own (for `Highest`, twice the fp32 bound
//! `(terms + 2)·2⁻²³·Σ|w·x|`; for Winograd under `High`, its normwise bound,
//! see [`Precision`]; for blocked-bf16 under `Medium`, its bound on
//! bfloat16 operands) is discarded, and the fastest of the rest is kept in
//! the context's table. Winograd is a candidate under `High` and `Medium`,
//! blocked-bf16 under `Medium` only.

use std::cmp::Ordering;
// The browser has no `std::time::Instant`; `web_time`'s is it on native.
use web_time::Instant;

use rand::{RngExt, SeedableRng, rngs::StdRng};

use super::{Algorithm, BackwardAlgorithm};
use crate::dtype::DType;
use crate::error::Result;
use crate::geometry::{Axis, Conv2dGeometry};
use crate::gpu::conv::backward::grad_weight::WeightKernel;
use crate::gpu::conv::backward::{BackwardKernels, BackwardPass};
use crate::gpu::conv::forward::blocked::bf16_operand_bound;
use crate::gpu::conv::forward::winograd::normwise_bound;
use crate::gpu::conv::forward::{ForwardBuffers, ForwardKernel, ForwardPass};
use crate::gpu::conv::params::ConvParams;
use crate::gpu::runtime::buffers::{Scopes, read_mapped, staging, upload};
use crate::gpu::runtime::{Blocks, GpuContext, PooledBuffer, Recorder, TuningRecord};
use crate::precision::Precision;
use crate::tensor::try_with_capacity;

/// What the tuner times: the algorithms `Auto` may pick at `precision`.
fn candidates_at(precision: Precision) -> impl Iterator<Item = Algorithm> {
    [
        Algorithm::Direct,
        Algorithm::ImplicitGemm,
        Algorithm::Gemm1x1,
        Algorithm::Depthwise,
        Algorithm::Blocked,
        Algorithm::Winograd,
        Algorithm::BlockedBf16,
    ]
    .into_iter()
    .filter(move |a| a.precision() <= precision)
}

impl Algorithm {
    /// The kernel for `geometry` on `ctx` under `precision`: for `Auto` on a
    /// context that autotunes, the measured choice of its shape class
    /// (measured now when there is none); else [`kernel`](Self::kernel)'s.
    pub(crate) async fn kernel_on(
        self,
        ctx: &GpuContext,
        geometry: &Conv2dGeometry,
        has_bias: bool,
        precision: Precision,
    ) -> Result<ForwardKernel> {
        let device = ctx.adapter_info().device_type;
        if self != Algorithm::Auto {
            return self.kernel(geometry, device, precision);
        }
        if !ctx.autotunes() || geometry.output_shape().contains(&0) {
            // The fixed rules, on a device that can run what they pick (a
            // downlevel device may not fit the tiled GEMMs).
            let kernel = self.kernel(geometry, device, precision)?;
            return if kernel.fits(ctx) {
                Ok(kernel)
            } else {
                Algorithm::Direct.kernel(geometry, device, precision)
            };
        }
        let key = shape_class(geometry, has_bias, precision);
        let chosen = match ctx.tuning().get(&key) {
            Some(name) => name,
            None => {
                let record = tune(ctx, geometry, has_bias, key, precision, |_, _| {}).await?;
                let chosen = record.chosen.clone();
                ctx.tuning().insert(record);
                chosen
            }
        };
        // Names in the table were checked when loaded or written.
        chosen
            .parse::<Algorithm>()
            .unwrap_or(Algorithm::Direct)
            .kernel(geometry, device, precision)
            .or_else(|_| Algorithm::Auto.kernel(geometry, device, precision))
    }
}

impl GpuContext {
    /// This device's tuning table (see [`with_autotune`](Self::with_autotune))
    /// as text, with the entries for other adapters a loaded table held: one
    /// line per entry, adapter, shape class and choice separated by tabs.
    pub fn tuning_text(&self) -> String {
        self.tuning().to_text(&self.adapter_identity())
    }

    /// Takes the entries of a table's text made by
    /// [`tuning_text`](Self::tuning_text) for this adapter (name, backend and
    /// driver must match; other lines are kept), so that a context with
    /// autotuning starts tuned. A text with a malformed line or an unknown
    /// choice is an error and changes nothing.
    pub fn load_tuning_text(&self, text: &str) -> Result<()> {
        self.tuning()
            .load_text(text, "tuning table", &self.adapter_identity(), known_choice)
    }

    /// Writes [`tuning_text`](Self::tuning_text) to `path`, through a
    /// temporary file renamed over it. Native only.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn save_tuning(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        self.tuning().save(path.as_ref(), &self.adapter_identity())
    }

    /// [`load_tuning_text`](Self::load_tuning_text) on the file at `path`
    /// (written by [`save_tuning`](Self::save_tuning)); a missing file is an
    /// empty table. Native only.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_tuning(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        self.tuning()
            .load(path.as_ref(), &self.adapter_identity(), known_choice)
    }
}

/// Whether a table's choice is an algorithm the tuner may choose for the
/// shape class `key` (Winograd only for a class tuned at `High` or
/// `Medium`, blocked-bf16 only at `Medium`; a backward algorithm's weight
/// gradient for a weight-gradient class).
fn known_choice(key: &str, name: &str) -> bool {
    if key.starts_with(WEIGHT_GRADIENT_PREFIX) {
        return name
            .parse::<BackwardAlgorithm>()
            .is_ok_and(|a| WEIGHT_CANDIDATES.contains(&a));
    }
    let precision = if key.ends_with(HIGH_SUFFIX) {
        Precision::High
    } else if key.ends_with(MEDIUM_SUFFIX) {
        Precision::Medium
    } else {
        Precision::Highest
    };
    name.parse::<Algorithm>()
        .is_ok_and(|a| candidates_at(precision).any(|c| c == a))
}

/// What ends the key of a shape class tuned at `High` (the keys of
/// `Highest`, the default, are those of tables written before precision
/// levels existed).
const HIGH_SUFFIX: &str = " precision:high";

/// What ends the key of a shape class tuned at `Medium`.
const MEDIUM_SUFFIX: &str = " precision:medium";

/// The shape class of a call: the layer's hyper-parameters, the input
/// shape and the precision, as a table key.
pub(crate) fn shape_class(g: &Conv2dGeometry, has_bias: bool, precision: Precision) -> String {
    let axis = |a: &Axis| {
        format!(
            "{}:k{}s{}d{}p{},{}",
            a.input, a.kernel, a.stride, a.dilation, a.pad_before, a.pad_after
        )
    };
    format!(
        "n{} c{} k{} g{} h{} w{} {} bias{}",
        g.batch,
        g.in_channels,
        g.out_channels,
        g.groups,
        axis(&g.height),
        axis(&g.width),
        g.padding_mode,
        u8::from(has_bias)
    ) + match precision {
        Precision::Highest => "",
        Precision::High => HIGH_SUFFIX,
        Precision::Medium => MEDIUM_SUFFIX,
    }
}

/// What begins the key of a weight gradient's shape class.
const WEIGHT_GRADIENT_PREFIX: &str = "weight-gradient ";

/// The backward algorithms whose weight gradients the tuner times.
const WEIGHT_CANDIDATES: [BackwardAlgorithm; 3] = [
    BackwardAlgorithm::Direct,
    BackwardAlgorithm::Blocked,
    BackwardAlgorithm::ImplicitGemm,
];

impl BackwardAlgorithm {
    /// The kernels for `geometry` on `ctx` under `precision`: for `Auto` on
    /// a context that autotunes, the weight gradient on the measured choice
    /// of its shape class (measured now when there is none: the direct,
    /// blocked and tiled GEMM weight gradients timed on seeded random data,
    /// one that disagrees with the direct kernel beyond twice the fp32 bound
    /// discarded); else [`kernels`](Self::kernels)'.
    pub(crate) async fn kernels_on(
        self,
        ctx: &GpuContext,
        geometry: &Conv2dGeometry,
        precision: Precision,
    ) -> Result<BackwardKernels> {
        let device = ctx.adapter_info().device_type;
        let mut kernels = self.kernels(geometry, device, precision)?;
        if self != BackwardAlgorithm::Auto
            || !ctx.autotunes()
            || geometry.output_shape().contains(&0)
            || geometry.input_shape_4d().contains(&0)
        {
            return Ok(kernels);
        }
        let key = format!(
            "{WEIGHT_GRADIENT_PREFIX}{}",
            shape_class(geometry, false, Precision::Highest)
        );
        let chosen = match ctx.tuning().get(&key) {
            Some(name) => name,
            None => {
                let record = tune_weight(ctx, geometry, key, |_, _| {}).await?;
                let chosen = record.chosen.clone();
                ctx.tuning().insert(record);
                chosen
            }
        };
        // Names in the table were checked when loaded or written.
        let algorithm = chosen
            .parse::<BackwardAlgorithm>()
            .unwrap_or(BackwardAlgorithm::Direct);
        kernels.weight = algorithm.weight_kernel(geometry);
        Ok(kernels)
    }
}

/// Times the weight gradient of every candidate on `geometry` with seeded
/// random data; the record names the fastest that agrees with the direct
/// kernel within twice the fp32 bound `(terms + 2)·2⁻²³·Σ|g·x|`. `tamper`
/// sees each candidate's gradient before it is checked (tests make one wrong).
async fn tune_weight(
    ctx: &GpuContext,
    geometry: &Conv2dGeometry,
    key: String,
    tamper: impl Fn(BackwardAlgorithm, &mut Vec<f32>),
) -> Result<TuningRecord> {
    let mut random = seeded_random(0x9e3b);
    let input = random("tuning input", geometry.input_shape_4d().iter().product())?;
    let grad_output = random(
        "tuning grad_output",
        geometry.output_shape_4d().iter().product(),
    )?;
    let reference = run_weight(ctx, geometry, WeightKernel::Direct, [&input, &grad_output]).await?;
    let magnitude = run_weight(
        ctx,
        geometry,
        WeightKernel::Direct,
        [
            &absolute("tuning input", &input)?,
            &absolute("tuning grad_output", &grad_output)?,
        ],
    )
    .await?;
    let terms = geometry.batch * geometry.height.output * geometry.width.output;
    let tolerance = |m: f32| 2.0 * (terms as f32 + 2.0) * f32::EPSILON * m;
    let mut candidates = Vec::new();
    for algorithm in WEIGHT_CANDIDATES {
        let kernel = algorithm.weight_kernel(geometry);
        if algorithm != BackwardAlgorithm::Direct && kernel == WeightKernel::Direct {
            continue;
        }
        let measured = if algorithm == BackwardAlgorithm::Direct {
            Ok(reference.ms)
        } else {
            run_weight(ctx, geometry, kernel, [&input, &grad_output])
                .await
                .map_err(|e| e.to_string())
                .and_then(|mut candidate| {
                    tamper(algorithm, &mut candidate.output);
                    candidate.agreeing("grad_weight", (&reference, &magnitude), tolerance)
                })
        };
        candidates.push((algorithm.name().to_string(), measured));
    }
    Ok(fastest(key, candidates, BackwardAlgorithm::Direct.name()))
}

/// Runs the weight gradient of `geometry` on `kernel` once on `[input,
/// grad_output]`: the gradient, and its kernel time.
async fn run_weight(
    ctx: &GpuContext,
    geometry: &Conv2dGeometry,
    kernel: WeightKernel,
    [input, grad_output]: [&[f32]; 2],
) -> Result<Run> {
    let kernels = BackwardKernels {
        input: None,
        weight: kernel,
        forced: false,
    };
    let len = geometry.weight_len();
    let pass = BackwardPass::new(ctx, *geometry, len, kernels, DType::F32)?;
    let scopes = Scopes::push(ctx);
    let mut rec = Recorder::timed(ctx);
    let call = rec.uniform("tuning call", &ConvParams::new(geometry, false)?);
    let grad_weight = rec.scratch("tuning grad_weight", len);
    let readback = staging(ctx, len);
    pass.encode_param_grads(
        &mut rec,
        &call,
        &mut Blocks::host("tuning input", input),
        &mut Blocks::host("tuning grad_output", grad_output),
        Some(&grad_weight),
        None,
    )?;
    rec.copy(&grad_weight, 0, &readback, 0, len);
    Run::submit(ctx, rec, scopes, &readback, len).await
}

/// One run of a candidate: its output and its kernel time.
struct Run {
    output: Vec<f32>,
    ms: f64,
}

impl Run {
    /// Submits `rec` (a timed recorder whose work ends by copying `len`
    /// results into `readback`) and waits: the results, and the kernel time
    /// from GPU timestamps where the device has them, else the wall time.
    async fn submit(
        ctx: &GpuContext,
        rec: Recorder,
        scopes: Scopes,
        readback: &PooledBuffer,
        len: usize,
    ) -> Result<Self> {
        let start = Instant::now();
        let pending = rec.submit_timed();
        scopes.pop().await?;
        let output = read_mapped(ctx, readback, len).await?;
        let wall = start.elapsed().as_secs_f64() * 1e3;
        let ms = match pending {
            Some(pending) => pending.millis(ctx).await?,
            None => wall,
        };
        Ok(Self { output, ms })
    }

    /// This run's time where every output is within `tolerance(magnitude)`
    /// of the reference run's; else which `what` is not (a NaN difference
    /// is a disagreement).
    fn agreeing(
        &self,
        what: &str,
        (reference, magnitude): (&Run, &Run),
        tolerance: impl Fn(f32) -> f32,
    ) -> std::result::Result<f64, String> {
        let bad = self
            .output
            .iter()
            .zip(&reference.output)
            .zip(&magnitude.output)
            .position(|((&got, &want), &m)| {
                !matches!(
                    (got - want).abs().partial_cmp(&tolerance(m)),
                    Some(Ordering::Less | Ordering::Equal)
                )
            });
        match bad {
            None => Ok(self.ms),
            Some(k) => Err(format!(
                "{what} {k} is {}, the direct kernel's {} (bound {})",
                self.output[k],
                reference.output[k],
                tolerance(magnitude.output[k])
            )),
        }
    }
}

/// The record of `key`: the fastest candidate that agreed, else `fallback`.
fn fastest(
    key: String,
    candidates: Vec<(String, std::result::Result<f64, String>)>,
    fallback: &str,
) -> TuningRecord {
    let chosen = candidates
        .iter()
        .filter_map(|(name, ms)| ms.as_ref().ok().map(|ms| (name, *ms)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map_or_else(|| fallback.to_string(), |(name, _)| name.clone());
    TuningRecord {
        key,
        chosen,
        candidates,
    }
}

/// Uniform random values in [-1, 1) from `seed`, in checked allocations.
fn seeded_random(seed: u64) -> impl FnMut(&'static str, usize) -> Result<Vec<f32>> {
    let mut rng = StdRng::seed_from_u64(seed);
    move |what, len| {
        let mut data = try_with_capacity(what, len)?;
        data.extend((0..len).map(|_| rng.random_range(-1.0f32..1.0)));
        Ok(data)
    }
}

/// The absolute values of `v`, in a checked allocation.
fn absolute(what: &'static str, v: &[f32]) -> Result<Vec<f32>> {
    let mut data = try_with_capacity(what, v.len())?;
    data.extend(v.iter().map(|x| x.abs()));
    Ok(data)
}

/// Times every candidate at `precision` on `geometry` with seeded random
/// data; the record names the fastest that agrees with the direct kernel.
/// `tamper` sees each candidate's output before it is checked (tests make
/// one wrong).
async fn tune(
    ctx: &GpuContext,
    geometry: &Conv2dGeometry,
    has_bias: bool,
    key: String,
    precision: Precision,
    tamper: impl Fn(Algorithm, &mut Vec<f32>),
) -> Result<TuningRecord> {
    let mut random = seeded_random(0x7a9e);
    let input = random("tuning input", geometry.input_shape_4d().iter().product())?;
    let weight = random("tuning weight", geometry.weight_len())?;
    let bias = random("tuning bias", geometry.output_channels().max(1))?;
    let device = ctx.adapter_info().device_type;
    let direct = ForwardPass::new(ctx, *geometry, ForwardKernel::Direct)?;
    // Uploaded once for every run.
    let data = [
        upload(ctx, "tuning input", &input),
        upload(ctx, "tuning weight", &weight),
        upload(ctx, "tuning bias", &bias),
    ];
    let data = [&*data[0], &*data[1], &*data[2]];
    let reference = run(ctx, &direct, has_bias, data).await?;
    let magnitudes = [
        upload(ctx, "tuning |input|", &absolute("tuning input", &input)?),
        upload(ctx, "tuning |weight|", &absolute("tuning weight", &weight)?),
        upload(ctx, "tuning |bias|", &absolute("tuning bias", &bias)?),
    ];
    let magnitude = run(
        ctx,
        &direct,
        has_bias,
        [&*magnitudes[0], &*magnitudes[1], &*magnitudes[2]],
    )
    .await?;
    drop(magnitudes);
    let terms = geometry.in_channels_per_group() * geometry.height.kernel * geometry.width.kernel
        + usize::from(has_bias);
    let direct_bound = |m: f32| (terms as f32 + 2.0) * f32::EPSILON * m;
    // Winograd's normwise bound on this data: the largest absolute sum of
    // one output channel's weights, the largest input and bias.
    let largest = |v: &[f32]| v.iter().fold(0.0f64, |a, &x| a.max(f64::from(x.abs())));
    let weight_l1 = weight
        .chunks((geometry.weight_len() / geometry.out_channels.max(1)).max(1))
        .map(|w| w.iter().map(|x| f64::from(x.abs())).sum::<f64>())
        .fold(0.0f64, f64::max);
    let winograd_bound = normwise_bound(
        geometry.in_channels_per_group(),
        weight_l1,
        largest(&input),
        if has_bias { largest(&bias) } else { 0.0 },
    ) as f32;
    // The candidate's bound at its precision, plus the direct kernel's own.
    let tolerance = |algorithm: Algorithm, m: f32| match algorithm.precision() {
        Precision::Highest => 2.0 * direct_bound(m),
        Precision::High => winograd_bound + direct_bound(m),
        Precision::Medium => bf16_operand_bound(terms, f64::from(m)) as f32 + direct_bound(m),
    };

    let mut candidates = Vec::new();
    for algorithm in candidates_at(precision) {
        if algorithm.check(geometry).is_err() {
            continue;
        }
        let measured = if algorithm == Algorithm::Direct {
            Ok(reference.ms)
        } else {
            let ran = match algorithm
                .kernel(geometry, device, precision)
                .and_then(|kernel| ForwardPass::new(ctx, *geometry, kernel))
            {
                Ok(pass) => run(ctx, &pass, has_bias, data).await,
                Err(e) => Err(e),
            };
            ran.map_err(|e| e.to_string()).and_then(|mut candidate| {
                tamper(algorithm, &mut candidate.output);
                candidate.agreeing("output", (&reference, &magnitude), |m| {
                    tolerance(algorithm, m)
                })
            })
        };
        candidates.push((algorithm.name().to_string(), measured));
    }
    Ok(fastest(key, candidates, Algorithm::Direct.name()))
}

/// Runs `pass` once on `[input, weight, bias]` (on the GPU): its output, and
/// its kernel time (the weight packed beforehand, as a layer caches it).
async fn run(
    ctx: &GpuContext,
    pass: &ForwardPass,
    has_bias: bool,
    [input, weight, bias]: [&wgpu::Buffer; 3],
) -> Result<Run> {
    let scopes = Scopes::push(ctx);
    let mut rec = Recorder::new(ctx);
    let call = rec.uniform("tuning call", &ConvParams::new(&pass.geometry, has_bias)?);
    let weight = match pass.kernel.packed_weight_len(&pass.geometry) {
        Some(len) => {
            let packed = rec.scratch("tuning packed weight", len);
            pass.kernel
                .encode_pack(&mut rec, &pass.geometry, &call, (weight, false), &packed)?;
            packed
        }
        None => wgpu::Buffer::clone(weight),
    };
    rec.submit();
    let mut rec = Recorder::timed(ctx);
    let call = rec.uniform("tuning call", &ConvParams::new(&pass.geometry, has_bias)?);
    let output = rec.scratch("tuning output", pass.elements);
    let readback = staging(ctx, pass.elements);
    pass.encode(
        &mut rec,
        &ForwardBuffers {
            call: &call,
            input,
            padded: None,
            weight: &weight,
            bias,
            output: &output,
        },
    )?;
    rec.copy(&output, 0, &readback, 0, pass.elements);
    Run::submit(ctx, rec, scopes, &readback, pass.elements).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Conv2dConfig;

    /// A weight gradient that disagrees with the direct kernel's on the
    /// tuning run is discarded, with its reason; a table may name the
    /// weight-gradient candidates only for a weight-gradient class.
    #[test]
    fn a_weight_gradient_that_disagrees_is_discarded() {
        let ctx = GpuContext::new().expect("a GPU adapter (see ADAPTER_HELP)");
        let config = Conv2dConfig::new(8, 8, 3).with_padding(1);
        let geometry = Conv2dGeometry::new(&config, &[2, 8, 12, 12]).unwrap();
        let record = pollster::block_on(tune_weight(
            &ctx,
            &geometry,
            "test".into(),
            |algorithm, output| {
                if algorithm == BackwardAlgorithm::ImplicitGemm {
                    output[3] += 0.1;
                }
            },
        ))
        .unwrap();
        let gemm = record
            .candidates
            .iter()
            .find(|(name, _)| name == "implicit-gemm")
            .unwrap();
        let reason = gemm.1.as_ref().unwrap_err();
        assert!(reason.contains("grad_weight 3"), "{reason}");
        assert_ne!(record.chosen, "implicit-gemm");
        assert!(known_choice("weight-gradient n1 c1", "implicit-gemm"));
        assert!(!known_choice("weight-gradient n1 c1", "winograd"));
        assert!(!known_choice("weight-gradient n1 c1", "auto"));
        assert!(!known_choice("n1 c1", "blocked (backward)"));
    }

    /// A candidate whose output is wrong on the tuning run is discarded and
    /// its reason recorded, even when it is the fastest; the rest still
    /// compete.
    #[test]
    fn a_candidate_that_disagrees_with_the_direct_kernel_is_discarded() {
        let ctx = GpuContext::new().expect("a GPU adapter (see ADAPTER_HELP)");
        let config = Conv2dConfig::new(16, 16, 3).with_padding(1);
        let geometry = Conv2dGeometry::new(&config, &[1, 16, 24, 24]).unwrap();
        let record = pollster::block_on(tune(
            &ctx,
            &geometry,
            true,
            "test".into(),
            Precision::Highest,
            |algorithm, output| {
                if algorithm == Algorithm::Blocked {
                    output[7] += 1e-3;
                }
            },
        ))
        .unwrap();
        let blocked = record
            .candidates
            .iter()
            .find(|(name, _)| name == "blocked")
            .unwrap();
        let reason = blocked.1.as_ref().unwrap_err();
        assert!(reason.starts_with("output 7 is "), "{reason}");
        assert_ne!(record.chosen, "blocked");
        assert!(
            record
                .candidates
                .iter()
                .any(|(name, ms)| *name == record.chosen && ms.is_ok())
        );
        // Untampered, every candidate agrees.
        let record = pollster::block_on(tune(
            &ctx,
            &geometry,
            true,
            "test".into(),
            Precision::Highest,
            |_, _| {},
        ))
        .unwrap();
        assert!(
            record.candidates.iter().all(|(_, ms)| ms.is_ok()),
            "{record:?}"
        );
    }

    /// Tunes 1×16×24×24 → 16, 3×3, padding 1, at `precision`, adding `off`
    /// to output `at` of `victim`'s run.
    fn tune_tampered(
        ctx: &GpuContext,
        precision: Precision,
        victim: Algorithm,
        (at, off): (usize, f32),
    ) -> TuningRecord {
        let config = Conv2dConfig::new(16, 16, 3).with_padding(1);
        let geometry = Conv2dGeometry::new(&config, &[1, 16, 24, 24]).unwrap();
        let tamper = |algorithm, output: &mut Vec<f32>| {
            if algorithm == victim {
                output[at] += off;
            }
        };
        pollster::block_on(tune(ctx, &geometry, true, "test".into(), precision, tamper)).unwrap()
    }

    /// What `record` says of the candidate `name`: its time, or why it was
    /// discarded; `None` where it was not a candidate.
    fn candidate(record: &TuningRecord, name: &str) -> Option<std::result::Result<f64, String>> {
        (record.candidates.iter())
            .find(|(n, _)| n == name)
            .map(|(_, ms)| ms.clone())
    }

    /// Under `High` Winograd is a candidate, held to its normwise bound: it
    /// passes untouched, and is discarded when one output is off by more.
    /// Under `Highest` it is not timed at all.
    #[test]
    fn winograd_competes_under_high_precision_only() {
        let ctx = GpuContext::new().expect("a GPU adapter (see ADAPTER_HELP)");
        let tune_at =
            |precision, off| tune_tampered(&ctx, precision, Algorithm::Winograd, (5, off));
        let strict = tune_at(Precision::Highest, 0.0);
        assert_eq!(candidate(&strict, "winograd"), None, "{strict:?}");
        let high = tune_at(Precision::High, 0.0);
        assert!(
            matches!(candidate(&high, "winograd"), Some(Ok(_))),
            "{high:?}"
        );
        // The normwise bound on this data is at most 0.8 (16 channels: 54
        // roundings of 860·Σ|w_k|·max|x| + max|b|, with Σ|w_k| ≤ 144 and
        // max|x|, max|b| ≤ 1).
        let wrong = tune_at(Precision::High, 1.0);
        let reason = candidate(&wrong, "winograd").unwrap().unwrap_err();
        assert!(reason.starts_with("output 5 is "), "{reason}");
    }

    /// Under `Medium` blocked-bf16 is a candidate (and Winograd still is),
    /// held to its bound on bfloat16 operands: it passes untouched and is
    /// discarded when one output is off by more. Under `High` it is not
    /// timed.
    #[test]
    fn blocked_bf16_competes_under_medium_precision_only() {
        let ctx = GpuContext::new().expect("a GPU adapter (see ADAPTER_HELP)");
        let tune_at =
            |precision, off| tune_tampered(&ctx, precision, Algorithm::BlockedBf16, (7, off));
        let high = tune_at(Precision::High, 0.0);
        assert_eq!(candidate(&high, "blocked-bf16"), None, "{high:?}");
        let medium = tune_at(Precision::Medium, 0.0);
        assert!(
            matches!(candidate(&medium, "blocked-bf16"), Some(Ok(_))),
            "{medium:?}"
        );
        assert!(
            matches!(candidate(&medium, "winograd"), Some(Ok(_))),
            "{medium:?}"
        );
        // Its bound here is about 1.14 at most (145 terms of at most 1
        // each, times 2·2⁻⁸ and a little): 4 is past it.
        let wrong = tune_at(Precision::Medium, 4.0);
        let reason = candidate(&wrong, "blocked-bf16").unwrap().unwrap_err();
        assert!(reason.starts_with("output 7 is "), "{reason}");
    }

    /// A table's Winograd choice is taken for a shape class tuned at `High`
    /// or `Medium` only, its blocked-bf16 choice at `Medium` only.
    #[test]
    fn a_table_names_each_algorithm_only_for_the_levels_that_allow_it() {
        let ctx = GpuContext::new().expect("a GPU adapter (see ADAPTER_HELP)");
        let config = Conv2dConfig::new(16, 16, 3).with_padding(1);
        let geometry = Conv2dGeometry::new(&config, &[1, 16, 24, 24]).unwrap();
        let adapter = ctx.adapter_identity();
        let high = shape_class(&geometry, true, Precision::High);
        let highest = shape_class(&geometry, true, Precision::Highest);
        assert_eq!(high, format!("{highest}{HIGH_SUFFIX}"));
        ctx.load_tuning_text(&format!("{adapter}\t{high}\twinograd\n"))
            .unwrap();
        assert_eq!(ctx.tuning().get(&high).as_deref(), Some("winograd"));
        let err = ctx
            .load_tuning_text(&format!("{adapter}\t{highest}\twinograd\n"))
            .unwrap_err();
        assert!(
            err.to_string().contains("unknown choice 'winograd'"),
            "{err}"
        );
        // blocked-bf16 for a Medium class only; Winograd there too.
        let medium = shape_class(&geometry, true, Precision::Medium);
        assert_eq!(medium, format!("{highest}{MEDIUM_SUFFIX}"));
        ctx.load_tuning_text(&format!("{adapter}\t{medium}\tblocked-bf16\n"))
            .unwrap();
        assert_eq!(ctx.tuning().get(&medium).as_deref(), Some("blocked-bf16"));
        ctx.load_tuning_text(&format!("{adapter}\t{medium}\twinograd\n"))
            .unwrap();
        for class in [&high, &highest] {
            let err = ctx
                .load_tuning_text(&format!("{adapter}\t{class}\tblocked-bf16\n"))
                .unwrap_err();
            assert!(
                err.to_string().contains("unknown choice 'blocked-bf16'"),
                "{err}"
            );
        }
    }
}
