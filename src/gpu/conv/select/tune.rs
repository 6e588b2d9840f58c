//! `Auto` under autotuning ([`GpuContext::with_autotune`]): per shape class,
//! every algorithm `Auto` may pick is run once on the real shape with seeded
//! random data and timed (GPU timestamps where the adapter has them, else
//! submit-and-wait); one whose output disagrees with the direct kernel's
//! beyond twice the fp32 bound `(terms + 2)·2⁻²³·Σ|w·x|` (both carry up to one
//! bound of rounding) is discarded, and the fastest of the rest is kept in
//! the context's table. Winograd is not a candidate: its error can exceed
//! that bound, so it is never picked without being asked for.

use std::cmp::Ordering;
// The browser has no `std::time::Instant`; `web_time`'s is it on native.
use web_time::Instant;

use rand::{RngExt, SeedableRng, rngs::StdRng};

use super::Algorithm;
use crate::error::Result;
use crate::geometry::{Axis, Conv2dGeometry};
use crate::gpu::conv::forward::{ForwardBuffers, ForwardKernel, ForwardPass};
use crate::gpu::conv::params::ConvParams;
use crate::gpu::runtime::buffers::{Scopes, read_mapped, staging, upload};
use crate::gpu::runtime::{GpuContext, Recorder, TuningRecord};
use crate::tensor::try_with_capacity;

/// What the tuner times: the algorithms `Auto` may pick.
const CANDIDATES: [Algorithm; 5] = [
    Algorithm::Direct,
    Algorithm::ImplicitGemm,
    Algorithm::Gemm1x1,
    Algorithm::Depthwise,
    Algorithm::Blocked,
];

impl Algorithm {
    /// The kernel for `geometry` on `ctx`: for `Auto` on a context that
    /// autotunes, the measured choice of its shape class (measured now when
    /// there is none); else [`kernel`](Self::kernel)'s.
    pub(crate) async fn kernel_on(
        self,
        ctx: &GpuContext,
        geometry: &Conv2dGeometry,
        has_bias: bool,
    ) -> Result<ForwardKernel> {
        let device = ctx.adapter_info().device_type;
        if self != Algorithm::Auto {
            return self.kernel(geometry, device);
        }
        if !ctx.autotunes() || geometry.output_shape().contains(&0) {
            // The fixed rules, on a device that can run what they pick (a
            // downlevel device may not fit the tiled GEMMs).
            let kernel = self.kernel(geometry, device)?;
            return if kernel.fits(ctx) {
                Ok(kernel)
            } else {
                Algorithm::Direct.kernel(geometry, device)
            };
        }
        let key = shape_class(geometry, has_bias);
        let chosen = match ctx.tuning().get(&key) {
            Some(name) => name,
            None => {
                let record = tune(ctx, geometry, has_bias, key, |_, _| {}).await?;
                let chosen = record.chosen.clone();
                ctx.tuning().insert(record);
                chosen
            }
        };
        // Names in the table were checked when loaded or written.
        chosen
            .parse::<Algorithm>()
            .unwrap_or(Algorithm::Direct)
            .kernel(geometry, device)
            .or_else(|_| Algorithm::Auto.kernel(geometry, device))
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

/// Whether a table's choice is an algorithm the tuner may choose.
fn known_choice(name: &str) -> bool {
    name.parse::<Algorithm>()
        .is_ok_and(|a| CANDIDATES.contains(&a))
}

/// The shape class of a call: the layer's hyper-parameters and the input
/// shape, as a table key.
pub(crate) fn shape_class(g: &Conv2dGeometry, has_bias: bool) -> String {
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
    )
}

/// One run of a candidate: its output and its kernel time.
struct Run {
    output: Vec<f32>,
    ms: f64,
}

/// Times every candidate on `geometry` with seeded random data; the record
/// names the fastest that agrees with the direct kernel. `tamper` sees each
/// candidate's output before it is checked (tests make one wrong).
async fn tune(
    ctx: &GpuContext,
    geometry: &Conv2dGeometry,
    has_bias: bool,
    key: String,
    tamper: impl Fn(Algorithm, &mut Vec<f32>),
) -> Result<TuningRecord> {
    let mut rng = StdRng::seed_from_u64(0x7a9e);
    let mut random = |what: &'static str, len: usize| -> Result<Vec<f32>> {
        let mut data = try_with_capacity(what, len)?;
        data.extend((0..len).map(|_| rng.random_range(-1.0f32..1.0)));
        Ok(data)
    };
    let input = random("tuning input", geometry.input_shape_4d().iter().product())?;
    let weight = random("tuning weight", geometry.weight_len())?;
    let bias = random("tuning bias", geometry.output_channels().max(1))?;
    let abs = |what: &'static str, v: &[f32]| -> Result<Vec<f32>> {
        let mut data = try_with_capacity(what, v.len())?;
        data.extend(v.iter().map(|x| x.abs()));
        Ok(data)
    };
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
        upload(ctx, "tuning |input|", &abs("tuning input", &input)?),
        upload(ctx, "tuning |weight|", &abs("tuning weight", &weight)?),
        upload(ctx, "tuning |bias|", &abs("tuning bias", &bias)?),
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
    let tolerance = |m: f32| 2.0 * (terms as f32 + 2.0) * f32::EPSILON * m;

    let mut candidates = Vec::new();
    for algorithm in CANDIDATES {
        if algorithm.check(geometry).is_err() {
            continue;
        }
        let measured = if algorithm == Algorithm::Direct {
            Ok(reference.ms)
        } else {
            let ran = match algorithm
                .kernel(geometry, device)
                .and_then(|kernel| ForwardPass::new(ctx, *geometry, kernel))
            {
                Ok(pass) => run(ctx, &pass, has_bias, data).await,
                Err(e) => Err(e),
            };
            ran.map_err(|e| e.to_string()).and_then(|mut candidate| {
                tamper(algorithm, &mut candidate.output);
                let bad = candidate
                    .output
                    .iter()
                    .zip(&reference.output)
                    .zip(&magnitude.output)
                    // A NaN difference is a disagreement.
                    .position(|((&got, &want), &m)| {
                        !matches!(
                            (got - want).abs().partial_cmp(&tolerance(m)),
                            Some(Ordering::Less | Ordering::Equal)
                        )
                    });
                match bad {
                    None => Ok(candidate.ms),
                    Some(k) => Err(format!(
                        "output {k} is {}, the direct kernel's {} (bound {})",
                        candidate.output[k],
                        reference.output[k],
                        tolerance(magnitude.output[k])
                    )),
                }
            })
        };
        candidates.push((algorithm.name().to_string(), measured));
    }
    let chosen = candidates
        .iter()
        .filter_map(|(name, ms)| ms.as_ref().ok().map(|ms| (name, *ms)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map_or_else(
            || Algorithm::Direct.name().to_string(),
            |(name, _)| name.clone(),
        );
    Ok(TuningRecord {
        key,
        chosen,
        candidates,
    })
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
                .encode_pack(&mut rec, &pass.geometry, &call, weight, &packed)?;
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
    let start = Instant::now();
    let pending = rec.submit_timed();
    scopes.pop().await?;
    let output = read_mapped(ctx, &readback, pass.elements).await?;
    let wall = start.elapsed().as_secs_f64() * 1e3;
    let ms = match pending {
        Some(pending) => pending.millis(ctx).await?,
        None => wall,
    };
    Ok(Run { output, ms })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Conv2dConfig;

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
        let record =
            pollster::block_on(tune(&ctx, &geometry, true, "test".into(), |_, _| {})).unwrap();
        assert!(
            record.candidates.iter().all(|(_, ms)| ms.is_ok()),
            "{record:?}"
        );
    }
}
