//! What the user asks for ([`Algorithm`], [`BackwardAlgorithm`]) and what
//! runs ([`ForwardKernel`], [`BackwardKernels`]): `Auto`'s fixed rules, the
//! checks a forced algorithm must pass, and `Auto` measured instead ([`tune`]).

mod tune;

use std::fmt;
use std::str::FromStr;

use super::backward::BackwardKernels;
use super::backward::grad_input::transposed_geometry;
use super::backward::grad_weight::WeightKernel;
use super::backward::grad_weight::blocked::WeightVariant;
use super::forward::ForwardKernel;
use super::forward::blocked::{self, Variant};
use super::forward::depthwise::DepthwiseVariant;
use super::forward::winograd::WinogradVariant;
use crate::error::{Conv2dError, Result};
use crate::geometry::Conv2dGeometry;
use crate::precision::Precision;

/// Which GPU kernel computes the forward pass. Every algorithm gives PyTorch's
/// result within fp32 rounding (Winograd within its own bound, see
/// [`Precision`]); they differ in speed and in what they accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Algorithm {
    /// Chosen by shape for each call (see [`Algorithm::choose`]).
    #[default]
    Auto,
    /// One invocation per output element: the always-correct baseline, for every configuration.
    Direct,
    /// Tiled implicit GEMM: 64 × 64 output tiles per workgroup from workgroup-shared
    /// tiles of weight and gathered input, a 4 × 4 register block per invocation.
    /// Every configuration (per group for grouped convolutions, every padding mode).
    ImplicitGemm,
    /// The tiled GEMM specialised for 1 × 1 convolutions with stride 1 and no
    /// padding, where the input is the GEMM operand itself.
    Gemm1x1,
    /// Depthwise convolutions (`groups == in_channels`, any channel multiplier):
    /// a kernel of its own for kernels of up to 64 taps (up to 16 adjacent
    /// outputs along a row for up to 64 rows per invocation, read straight
    /// from the input), larger ones (kernel width up to 16) the blocked
    /// kernel with one output channel.
    Depthwise,
    /// Register-blocked direct convolution: up to 28 adjacent outputs along a
    /// row (24 at strides above 1) for 16 output channels per invocation (8
    /// or 4 where a group has at most that many, with up to 16 or 24
    /// outputs), read from a padded, aligned copy of the input and a packed
    /// weight with vec4 loads; generated per kernel width, stride and
    /// dilation along the row. Every padding mode and grouping; kernel width
    /// up to 16.
    Blocked,
    /// Winograd F(4×4, 3×3), or F(2×2, 3×3) on small planes: 3×3 kernels with
    /// stride 1 and dilation 1, every padding mode and grouping. Up to 4× fewer
    /// multiplications than the direct convolution, at a larger rounding
    /// error: see the README's accuracy notes.
    Winograd,
    /// The blocked kernel on operands rounded to bfloat16, summed in f32
    /// (PyTorch's `medium` precision): its padded input copy and packed
    /// weight hold bfloat16 values, half the bytes, widened exactly in the
    /// kernel. Within [`Precision::Medium`]'s bound. Where the blocked kernel
    /// runs and packs its weight (a block of four output channels or more).
    BlockedBf16,
}

/// Below this many outputs the direct kernel's single pass is quickest: the
/// others add a padding or packing pass that costs more than it saves.
const DIRECT_MAX_OUTPUTS: usize = 4096;

/// Output channels per group from which a 64-wide GEMM tile is worth filling.
const GEMM_MIN_OUT_PER_GROUP: usize = 16;

/// Input and output channels per group from which Winograd is at least as
/// fast as the blocked kernel on CPU adapters. Measured on lavapipe at batch
/// 8 (docs/bench/winograd_rule.jsonl), since the blocked kernel covers rows of
/// 28 and 56 with seven vec4s: at 16 channels Winograd took 1.2–1.6× its time
/// on planes of 14, 28 and 56; at 32, 1.15–1.17× on 28 and 56; at 48 they
/// tie; at 64, 0.89–0.98× on 28 and 56 (0.74× on 14); at 128 to 512,
/// 0.41–0.75×. On an NVIDIA H200 (docs/bench/device) Winograd took
/// 0.24–0.42× the implicit GEMM's time on the four ResNet layers (64 to 512
/// channels).
const WINOGRAD_MIN_CHANNELS_PER_GROUP: usize = 64;

impl Algorithm {
    /// The algorithms that name a kernel, in the order benchmarks list them.
    pub const KERNELS: [Algorithm; 7] = [
        Algorithm::Direct,
        Algorithm::ImplicitGemm,
        Algorithm::Gemm1x1,
        Algorithm::Depthwise,
        Algorithm::Blocked,
        Algorithm::Winograd,
        Algorithm::BlockedBf16,
    ];

    /// The name the CLI and benchmarks use: `auto`, `direct`, `implicit-gemm`,
    /// `gemm-1x1`, `depthwise`, `blocked`, `winograd`, `blocked-bf16`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Auto => "auto",
            Algorithm::Direct => "direct",
            Algorithm::ImplicitGemm => "implicit-gemm",
            Algorithm::Gemm1x1 => "gemm-1x1",
            Algorithm::Depthwise => "depthwise",
            Algorithm::Blocked => "blocked",
            Algorithm::Winograd => "winograd",
            Algorithm::BlockedBf16 => "blocked-bf16",
        }
    }

    /// Why this algorithm cannot compute `geometry`, if it cannot.
    pub fn check(self, geometry: &Conv2dGeometry) -> Result<()> {
        let (h, w) = (&geometry.height, &geometry.width);
        let reason = match self {
            Algorithm::Auto | Algorithm::Direct | Algorithm::ImplicitGemm => None,
            Algorithm::Gemm1x1 => {
                let pointwise = |a: &crate::geometry::Axis| {
                    a.kernel == 1 && a.stride == 1 && a.lead() == 0 && a.output == a.input
                };
                (!(pointwise(h) && pointwise(w))).then(|| {
                    format!(
                        "it needs a 1x1 kernel, stride 1 and no padding, got kernel_size=({}, {}), stride=({}, {}), padding=({}, {})",
                        h.kernel, w.kernel, h.stride, w.stride, h.lead(), w.lead()
                    )
                })
            }
            Algorithm::Blocked | Algorithm::BlockedBf16 => Variant::blocked(geometry).unsupported(),
            Algorithm::Depthwise => match geometry.in_channels_per_group() {
                // Its own kernel, else the blocked kernel with one channel.
                1 if DepthwiseVariant::new(geometry).is_some() => None,
                1 => Variant::new(geometry, 1).unsupported(),
                _ => Some(format!(
                    "it needs groups == in_channels, got in_channels={}, groups={}",
                    geometry.in_channels, geometry.groups
                )),
            },
            Algorithm::Winograd => WinogradVariant::new(geometry).err(),
        };
        match reason {
            None => Ok(()),
            Some(reason) => Err(Conv2dError::UnsupportedAlgorithm {
                algorithm: self.name(),
                reason,
            }),
        }
    }

    /// The loosest [`Precision`] whose bound this algorithm's results meet:
    /// `High` for Winograd, `Medium` for blocked-bf16, `Highest` for the
    /// others.
    pub fn precision(self) -> Precision {
        match self {
            Algorithm::Winograd => Precision::High,
            Algorithm::BlockedBf16 => Precision::Medium,
            _ => Precision::Highest,
        }
    }

    /// The algorithm [`Algorithm::Auto`] picks for `geometry` on a `device` of
    /// this type under `precision`: direct for tiny convolutions (under 4096
    /// outputs); for depthwise convolutions with few outputs per channel, on
    /// CPU adapters the depthwise kernel, on GPUs the blocked kernel at
    /// stride 1 and else direct; under [`Precision::High`], Winograd where it
    /// runs and a group has at least 64 input and 64 output channels; on CPU
    /// adapters the blocked kernel wherever it runs (on lavapipe it was
    /// measured fastest, 4–20× the direct kernel even with 3 to 8 output
    /// channels per group); on GPUs the tiled GEMMs when a
    /// group has enough output channels to fill a tile; else direct. Where
    /// it picks the blocked kernel, under [`Precision::Medium`] its bfloat16
    /// operands where it pads or aligns its input anyway (about 0.8× its
    /// float32 time).
    ///
    /// The GPU rules are an NVIDIA H200's measurements (docs/bench/device):
    /// there the depthwise kernel, whose invocations walk long rows to
    /// spare llvmpipe's loads, took 5.8× the blocked kernel's time at
    /// stride 1 (8×144×56×56) and 12× the direct kernel's at stride 2
    /// (8×96×112×112), the blocked kernel twice the direct one's.
    pub fn choose(
        geometry: &Conv2dGeometry,
        device: wgpu::DeviceType,
        precision: Precision,
    ) -> Algorithm {
        let out_per_group = geometry.out_channels_per_group();
        let outputs = geometry
            .output_shape_4d()
            .iter()
            .fold(1usize, |acc, &d| acc.saturating_mul(d));
        if outputs < DIRECT_MAX_OUTPUTS {
            Algorithm::Direct
        } else if Algorithm::Depthwise.check(geometry).is_ok()
            && out_per_group < GEMM_MIN_OUT_PER_GROUP
        {
            let unit_stride = geometry.height.stride == 1 && geometry.width.stride == 1;
            if device == wgpu::DeviceType::Cpu {
                Algorithm::Depthwise
            } else if unit_stride && Algorithm::Blocked.check(geometry).is_ok() {
                Algorithm::blocked_under(geometry, precision)
            } else {
                Algorithm::Direct
            }
        } else if precision >= Precision::High
            && geometry.in_channels_per_group() >= WINOGRAD_MIN_CHANNELS_PER_GROUP
            && out_per_group >= WINOGRAD_MIN_CHANNELS_PER_GROUP
            && Algorithm::Winograd.check(geometry).is_ok()
        {
            Algorithm::Winograd
        } else if device == wgpu::DeviceType::Cpu && Algorithm::Blocked.check(geometry).is_ok() {
            Algorithm::blocked_under(geometry, precision)
        } else if out_per_group < GEMM_MIN_OUT_PER_GROUP {
            Algorithm::Direct
        } else if Algorithm::Gemm1x1.check(geometry).is_ok() {
            Algorithm::Gemm1x1
        } else {
            Algorithm::ImplicitGemm
        }
    }

    /// The blocked kernel where `Auto` picks it: under [`Precision::Medium`]
    /// on bfloat16 operands where it pads or aligns its input anyway. Their
    /// rounded copy of the input costs more than it saves where the float32
    /// kernel reads the input in place (lavapipe, 1×1 8×64×56×56 → 256:
    /// 33.8 ms and 1.8 for the copy, against 32.3). Where it copies anyway they took 0.73–0.84×
    /// the float32 kernel's time on lavapipe (docs/bench/medium.jsonl) and
    /// 0.88× on an NVIDIA H200's one blocked pick, the depthwise 8×144×56×56
    /// (docs/bench/device/device_trace_2.jsonl).
    fn blocked_under(geometry: &Conv2dGeometry, precision: Precision) -> Algorithm {
        let variant = Variant::blocked(geometry);
        if precision >= Precision::Medium
            && !variant.reads_input_in_place(geometry)
            && variant.on_bf16().is_some()
        {
            Algorithm::BlockedBf16
        } else {
            Algorithm::Blocked
        }
    }

    /// The kernel that runs for `geometry` on a `device` of this type: what
    /// [`choose`](Self::choose) picks for `Auto` under `precision`, else this
    /// algorithm's kernel if it can run `geometry`, else an
    /// `UnsupportedAlgorithm` error.
    pub(crate) fn kernel(
        self,
        geometry: &Conv2dGeometry,
        device: wgpu::DeviceType,
        precision: Precision,
    ) -> Result<ForwardKernel> {
        let algorithm = match self {
            Algorithm::Auto => Algorithm::choose(geometry, device, precision),
            other => {
                other.check(geometry)?;
                other
            }
        };
        Ok(match algorithm {
            Algorithm::Auto | Algorithm::Direct => ForwardKernel::Direct,
            Algorithm::ImplicitGemm => ForwardKernel::Gemm { pointwise: false },
            Algorithm::Gemm1x1 => ForwardKernel::Gemm { pointwise: true },
            Algorithm::Depthwise => match DepthwiseVariant::new(geometry) {
                Some(variant) => ForwardKernel::Depthwise(variant),
                None => ForwardKernel::Blocked(Variant::new(geometry, 1)),
            },
            Algorithm::Blocked => ForwardKernel::Blocked(match device {
                wgpu::DeviceType::Cpu => Variant::blocked(geometry).on_cpu(geometry),
                _ => Variant::blocked(geometry),
            }),
            Algorithm::BlockedBf16 => ForwardKernel::Blocked(
                Variant::blocked(geometry)
                    .on_bf16()
                    .expect("blocks of the blocked algorithm pack their weight"),
            ),
            Algorithm::Winograd => {
                let variant = WinogradVariant::new(geometry).map_err(|reason| {
                    Conv2dError::UnsupportedAlgorithm {
                        algorithm: "winograd",
                        reason,
                    }
                })?;
                ForwardKernel::Winograd(match device {
                    wgpu::DeviceType::Cpu => variant.on_cpu(geometry),
                    _ => variant,
                })
            }
        })
    }

    /// The algorithm whose kernel `kernel` is.
    pub(crate) fn of(kernel: ForwardKernel) -> Algorithm {
        match kernel {
            ForwardKernel::Direct => Algorithm::Direct,
            ForwardKernel::Gemm { pointwise: false } => Algorithm::ImplicitGemm,
            ForwardKernel::Gemm { pointwise: true } => Algorithm::Gemm1x1,
            ForwardKernel::Blocked(variant) if variant.block() == 1 => Algorithm::Depthwise,
            ForwardKernel::Blocked(variant) if variant.operands() == blocked::Operands::Bf16 => {
                Algorithm::BlockedBf16
            }
            ForwardKernel::Depthwise(_) => Algorithm::Depthwise,
            ForwardKernel::Blocked(_) => Algorithm::Blocked,
            ForwardKernel::Winograd(_) => Algorithm::Winograd,
        }
    }

    /// The algorithm that runs for `geometry` on a `device` of this type (what
    /// `Auto` picks under `precision`), or why this one cannot run it.
    pub fn resolve(
        self,
        geometry: &Conv2dGeometry,
        device: wgpu::DeviceType,
        precision: Precision,
    ) -> Result<Algorithm> {
        self.kernel(geometry, device, precision).map(Algorithm::of)
    }

    /// The smallest storage binding, in bytes, under which this algorithm can
    /// still split `geometry` (see [`GpuContext::with_max_binding_bytes`]):
    /// one input or output plane, the weight, and for the blocked kernel one
    /// plane of its padded input copy and its packed weight (for `Auto`, of
    /// what it picks under `precision`).
    ///
    /// [`GpuContext::with_max_binding_bytes`]: crate::GpuContext::with_max_binding_bytes
    pub fn min_binding_bytes(
        self,
        geometry: &Conv2dGeometry,
        device: wgpu::DeviceType,
        precision: Precision,
    ) -> Result<u64> {
        let (h, w) = (&geometry.height, &geometry.width);
        let mut elements = (h.input * w.input)
            .max(h.output * w.output)
            .max(geometry.weight_len());
        let kernel = self.kernel(geometry, device, precision)?;
        let [(input, _), (output, _)] = kernel.held_planes(&kernel.kernel_geometry(geometry));
        elements = elements.max(input).max(output);
        if let Some(len) = kernel.packed_weight_len(geometry) {
            elements = elements.max(len);
        }
        Ok(elements as u64 * 4)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = Conv2dError;

    fn from_str(s: &str) -> Result<Self> {
        std::iter::once(Algorithm::Auto)
            .chain(Algorithm::KERNELS)
            .find(|a| a.name() == s)
            .ok_or_else(|| Conv2dError::UnknownAlgorithm(s.to_string()))
    }
}

/// Which GPU kernels compute the gradients. Every algorithm gives PyTorch's
/// gradients within fp32 rounding; they differ in speed and in what they accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum BackwardAlgorithm {
    /// The blocked kernels for each gradient where they can run it, else
    /// direct; on GPUs the weight gradient on the direct kernel but for
    /// pointwise (1×1, stride 1, unpadded) layers, as measured there. On a
    /// context that autotunes ([`GpuContext::with_autotune`](crate::GpuContext::with_autotune)),
    /// the weight gradient's kernel is measured per shape class instead
    /// (direct, blocked or the tiled GEMM).
    #[default]
    Auto,
    /// Gather kernels: one invocation per padded input element (input
    /// gradient) and per weight element and block of positions (weight
    /// gradient). The always-correct baseline, for every configuration.
    Direct,
    /// The input gradient as the transposed convolution on the forward
    /// kernels (one per phase of the stride), the weight gradient on the
    /// register-blocked kernel (kernel width up to 16).
    Blocked,
    /// The input gradient as for `Blocked` (the transposed convolution on
    /// the forward kernels), the weight gradient as a tiled GEMM:
    /// grad_output times the input gathered through the padding index map,
    /// 64 × 64 tiles of the weight per workgroup over blocks of positions.
    /// Every configuration.
    ImplicitGemm,
}

impl BackwardAlgorithm {
    /// Every backward algorithm, `Auto` first.
    pub const ALL: [BackwardAlgorithm; 4] = [
        BackwardAlgorithm::Auto,
        BackwardAlgorithm::Direct,
        BackwardAlgorithm::Blocked,
        BackwardAlgorithm::ImplicitGemm,
    ];

    /// The name the CLI uses: `auto`, `direct`, `blocked`, `implicit-gemm`.
    pub fn name(self) -> &'static str {
        match self {
            BackwardAlgorithm::Auto => "auto",
            BackwardAlgorithm::Direct => "direct",
            BackwardAlgorithm::Blocked => "blocked",
            BackwardAlgorithm::ImplicitGemm => "implicit-gemm",
        }
    }

    /// Why this algorithm cannot compute the gradients of `geometry`, if it cannot.
    pub fn check(self, geometry: &Conv2dGeometry) -> Result<()> {
        if self != BackwardAlgorithm::Blocked {
            return Ok(());
        }
        let w = &geometry.width;
        let reason = if WeightVariant::new(geometry).is_none() {
            Some(format!(
                "its weight gradient needs a kernel width of at most 16 and at most 128 input columns per 4 outputs, got kernel_size[1]={}, stride[1]={}, dilation[1]={}",
                w.kernel, w.stride, w.dilation
            ))
        } else {
            None
        };
        match reason {
            None => Ok(()),
            Some(reason) => Err(Conv2dError::UnsupportedAlgorithm {
                algorithm: "blocked (backward)",
                reason,
            }),
        }
    }

    /// The kernels that run for `geometry` on a `device` of this type (the
    /// input gradient's phases on what `Auto` picks under `precision`), or
    /// why the forced algorithm cannot.
    pub(crate) fn kernels(
        self,
        geometry: &Conv2dGeometry,
        device: wgpu::DeviceType,
        precision: Precision,
    ) -> Result<BackwardKernels> {
        self.check(geometry)?;
        if self == BackwardAlgorithm::Direct {
            return Ok(BackwardKernels {
                input: None,
                weight: WeightKernel::Direct,
                forced: false,
            });
        }
        // Each phase of the transposed convolution on the forward kernel Auto
        // picks for it; on CPU adapters the blocked one even for a phase of
        // under 4096 outputs, which Auto gives the direct kernel: the phases
        // then share one padded copy of grad_output.
        // Medium's bfloat16 operands are for the forward only: the phases
        // run at most at High.
        let precision = precision.min(Precision::High);
        let phase_kernel = |g: &Conv2dGeometry| -> Result<ForwardKernel> {
            let auto = Algorithm::Auto.kernel(g, device, precision)?;
            if auto == ForwardKernel::Direct
                && device == wgpu::DeviceType::Cpu
                && Algorithm::Blocked.check(g).is_ok()
            {
                Algorithm::Blocked.kernel(g, device, precision)
            } else {
                Ok(auto)
            }
        };
        let input = transposed_geometry(geometry).and_then(|t| {
            let kernels = t
                .phases
                .iter()
                .map(|phase| phase.geometry.as_ref().map(phase_kernel).transpose())
                .collect::<Result<Vec<_>>>()
                .ok()?;
            Some((t, kernels))
        });
        // On an NVIDIA H200 (docs/bench/device/device_trace.jsonl) the blocked
        // weight gradient, up to 576 accumulators per invocation, took
        // 1.15–4.5× the direct kernel's time on the ResNet 3×3 layers at batch
        // 8, 0.63× on the pointwise 8×64×56×56 → 256, 0.9× on the stem and on
        // a depthwise layer, 2× on a stride-2 depthwise one.
        let gpu = device != wgpu::DeviceType::Cpu;
        let weight = match self {
            BackwardAlgorithm::Auto if gpu && !geometry.is_pointwise() => WeightKernel::Direct,
            BackwardAlgorithm::Auto => BackwardAlgorithm::Blocked.weight_kernel(geometry),
            other => other.weight_kernel(geometry),
        };
        Ok(BackwardKernels {
            input,
            weight,
            forced: self == BackwardAlgorithm::Blocked,
        })
    }
}

impl BackwardAlgorithm {
    /// The weight gradient's kernel of this algorithm, forced: the blocked
    /// one where it runs (else direct), the tiled GEMM, direct (`Auto`'s
    /// rules are in [`kernels`](Self::kernels)).
    pub(crate) fn weight_kernel(self, geometry: &Conv2dGeometry) -> WeightKernel {
        match self {
            BackwardAlgorithm::Blocked => {
                WeightVariant::new(geometry).map_or(WeightKernel::Direct, WeightKernel::Blocked)
            }
            BackwardAlgorithm::ImplicitGemm => WeightKernel::Gemm,
            BackwardAlgorithm::Auto | BackwardAlgorithm::Direct => WeightKernel::Direct,
        }
    }

    /// Which kernels run for `geometry`: `blocked` or `direct`, or for `Auto`
    /// on a convolution where only one gradient has a blocked kernel, which;
    /// `winograd input` where Winograd runs the input gradient's phases.
    /// (For the benchmarks, which are native only.)
    /// Under autotuning, `Auto`'s weight gradient is what the tuner chose
    /// (measured now if it has not been).
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn describe(
        self,
        ctx: &crate::GpuContext,
        geometry: &Conv2dGeometry,
        precision: Precision,
    ) -> Result<String> {
        let kernels = pollster::block_on(self.kernels_on(ctx, geometry, precision))?;
        Ok(describe_kernels(&kernels))
    }
}

/// What [`BackwardAlgorithm::describe`] says of `kernels`.
#[cfg(not(target_arch = "wasm32"))]
fn describe_kernels(kernels: &BackwardKernels) -> String {
    let winograd = kernels.input.as_ref().is_some_and(|(_, phases)| {
        phases
            .iter()
            .flatten()
            .any(|k| matches!(k, ForwardKernel::Winograd(_)))
    });
    let input = match (kernels.input.is_some(), winograd) {
        (_, true) => "winograd",
        (true, false) => "blocked",
        (false, false) => "direct",
    };
    let weight = match kernels.weight {
        WeightKernel::Direct => "direct",
        WeightKernel::Blocked(_) => "blocked",
        WeightKernel::Gemm => "implicit-gemm",
    };
    if input == weight {
        input.to_string()
    } else {
        format!("{input} input, {weight} weight")
    }
}

impl fmt::Display for BackwardAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackwardAlgorithm {
    type Err = Conv2dError;

    fn from_str(s: &str) -> Result<Self> {
        BackwardAlgorithm::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| Conv2dError::UnknownBackwardAlgorithm(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Conv2dConfig;

    const CPU: wgpu::DeviceType = wgpu::DeviceType::Cpu;
    const GPU: wgpu::DeviceType = wgpu::DeviceType::DiscreteGpu;
    const HIGHEST: Precision = Precision::Highest;

    fn geometry(config: Conv2dConfig, shape: &[usize]) -> Conv2dGeometry {
        Conv2dGeometry::new(&config, shape).unwrap()
    }

    #[test]
    fn names_round_trip() {
        for a in std::iter::once(Algorithm::Auto).chain(Algorithm::KERNELS) {
            assert_eq!(a.name().parse::<Algorithm>().unwrap(), a);
        }
        assert_eq!(
            "fft".parse::<Algorithm>().unwrap_err().to_string(),
            "unknown algorithm 'fft' (expected auto, direct, implicit-gemm, gemm-1x1, depthwise, blocked, winograd or blocked-bf16)"
        );
    }

    #[test]
    fn auto_picks_by_shape() {
        let resnet = geometry(
            Conv2dConfig::new(64, 64, 3).with_padding(1),
            &[8, 64, 56, 56],
        );
        assert_eq!(
            Algorithm::choose(&resnet, GPU, HIGHEST),
            Algorithm::ImplicitGemm
        );
        assert_eq!(Algorithm::choose(&resnet, CPU, HIGHEST), Algorithm::Blocked);
        let pointwise = geometry(Conv2dConfig::new(64, 256, 1), &[1, 64, 56, 56]);
        assert_eq!(
            Algorithm::choose(&pointwise, GPU, HIGHEST),
            Algorithm::Gemm1x1
        );
        let depthwise = geometry(
            Conv2dConfig::new(32, 32, 3).with_padding(1).with_groups(32),
            &[1, 32, 112, 112],
        );
        let strided_depthwise = geometry(
            Conv2dConfig::new(96, 96, 3)
                .with_padding(1)
                .with_stride(2)
                .with_groups(96),
            &[8, 96, 112, 112],
        );
        // The depthwise kernel on CPU adapters; on GPUs the blocked kernel at
        // stride 1, direct at stride 2.
        for (g, on_gpu) in [
            (depthwise, Algorithm::Blocked),
            (strided_depthwise, Algorithm::Direct),
        ] {
            assert_eq!(Algorithm::choose(&g, CPU, HIGHEST), Algorithm::Depthwise);
            assert_eq!(Algorithm::choose(&g, GPU, HIGHEST), on_gpu);
        }
        let single_channel = geometry(Conv2dConfig::new(1, 1, 2), &[1, 1, 65, 65]);
        assert_eq!(
            Algorithm::choose(&single_channel, CPU, HIGHEST),
            Algorithm::Depthwise
        );
        let tiny = geometry(Conv2dConfig::new(1, 1, 2), &[1, 1, 6, 8]);
        assert_eq!(Algorithm::choose(&tiny, CPU, HIGHEST), Algorithm::Direct);
        let few_outputs = geometry(Conv2dConfig::new(4, 2, 3), &[1, 4, 9, 9]);
        assert_eq!(
            Algorithm::choose(&few_outputs, CPU, HIGHEST),
            Algorithm::Direct
        );
        let few_channels = geometry(Conv2dConfig::new(32, 4, 3), &[8, 32, 56, 56]);
        assert_eq!(
            Algorithm::choose(&few_channels, CPU, HIGHEST),
            Algorithm::Blocked
        );
        assert_eq!(
            Algorithm::choose(&few_channels, GPU, HIGHEST),
            Algorithm::Direct
        );
    }

    /// The backward's Auto: on CPU adapters the blocked kernels for both
    /// gradients; on GPUs the input gradient on the forward kernels and the
    /// weight gradient on the direct kernel, but for pointwise layers.
    #[test]
    fn backward_auto_picks_the_weight_gradient_by_device() {
        let resnet = geometry(
            Conv2dConfig::new(64, 64, 3).with_padding(1),
            &[8, 64, 56, 56],
        );
        let pointwise = geometry(Conv2dConfig::new(64, 256, 1), &[8, 64, 56, 56]);
        let describe = |g: &Conv2dGeometry, a: BackwardAlgorithm, d| {
            describe_kernels(&a.kernels(g, d, HIGHEST).unwrap())
        };
        assert_eq!(describe(&resnet, BackwardAlgorithm::Auto, CPU), "blocked");
        assert_eq!(
            describe(&resnet, BackwardAlgorithm::Auto, GPU),
            "blocked input, direct weight"
        );
        assert_eq!(
            describe(&resnet, BackwardAlgorithm::Blocked, GPU),
            "blocked"
        );
        assert_eq!(
            describe(&pointwise, BackwardAlgorithm::Auto, GPU),
            "blocked"
        );
        assert_eq!(describe(&resnet, BackwardAlgorithm::Direct, GPU), "direct");
    }

    /// Under `High`, Auto picks Winograd where it runs and a group has 64 or
    /// more input and output channels, on CPU adapters and GPUs; under
    /// `Highest`, never.
    #[test]
    fn high_precision_lets_auto_pick_winograd_where_it_was_measured_faster() {
        let high = Precision::High;
        let resnet = geometry(
            Conv2dConfig::new(64, 64, 3).with_padding(1),
            &[8, 64, 56, 56],
        );
        assert_eq!(Algorithm::choose(&resnet, CPU, high), Algorithm::Winograd);
        assert_eq!(Algorithm::choose(&resnet, CPU, HIGHEST), Algorithm::Blocked);
        assert_eq!(Algorithm::choose(&resnet, GPU, high), Algorithm::Winograd);
        assert_eq!(
            Algorithm::choose(&resnet, GPU, HIGHEST),
            Algorithm::ImplicitGemm
        );
        let grouped = geometry(
            Conv2dConfig::new(128, 128, 3)
                .with_padding(1)
                .with_groups(2),
            &[1, 128, 28, 28],
        );
        assert_eq!(Algorithm::choose(&grouped, CPU, high), Algorithm::Winograd);
        for (c, k) in [(8, 64), (64, 8), (3, 64), (32, 64), (64, 48)] {
            let few = geometry(Conv2dConfig::new(c, k, 3).with_padding(1), &[1, c, 64, 64]);
            assert_eq!(
                Algorithm::choose(&few, CPU, high),
                Algorithm::Blocked,
                "{c}->{k}"
            );
        }
        let strided = geometry(
            Conv2dConfig::new(64, 64, 3).with_padding(1).with_stride(2),
            &[1, 64, 56, 56],
        );
        assert_eq!(Algorithm::choose(&strided, CPU, high), Algorithm::Blocked);
        let tiny = geometry(Conv2dConfig::new(16, 16, 3), &[1, 16, 8, 8]);
        assert_eq!(Algorithm::choose(&tiny, CPU, high), Algorithm::Direct);
        assert_eq!(Algorithm::Winograd.precision(), Precision::High);
        assert_eq!(Algorithm::Blocked.precision(), Precision::Highest);
    }

    /// Under `Medium`, Auto on CPU adapters puts the blocked kernel on
    /// bfloat16 operands where it copies its input anyway (padding, or rows
    /// not a whole number of vec4s), not where it reads it in place, and
    /// keeps Winograd where `High` picks it; on GPUs likewise where it
    /// picks the blocked kernel (depthwise layers at stride 1), else what
    /// `High` does. The backward's phases stay at `High`.
    #[test]
    fn medium_precision_puts_the_blocked_kernel_on_bfloat16_where_it_copies_anyway() {
        let medium = Precision::Medium;
        let padded = geometry(
            Conv2dConfig::new(32, 32, 3).with_padding(1),
            &[8, 32, 56, 56],
        );
        assert_eq!(
            Algorithm::choose(&padded, CPU, medium),
            Algorithm::BlockedBf16
        );
        assert_eq!(
            Algorithm::choose(&padded, GPU, medium),
            Algorithm::choose(&padded, GPU, Precision::High)
        );
        let depthwise = Conv2dConfig::new(144, 144, 3)
            .with_padding(1)
            .with_groups(144);
        let depthwise = geometry(depthwise, &[8, 144, 56, 56]);
        assert_eq!(
            Algorithm::choose(&depthwise, GPU, Precision::High),
            Algorithm::Blocked
        );
        assert_eq!(
            Algorithm::choose(&depthwise, GPU, medium),
            Algorithm::BlockedBf16
        );
        let pointwise = geometry(Conv2dConfig::new(64, 256, 1), &[8, 64, 56, 56]);
        assert_eq!(
            Algorithm::choose(&pointwise, CPU, medium),
            Algorithm::Blocked
        );
        let odd_rows = geometry(Conv2dConfig::new(32, 32, (3, 1)), &[8, 32, 30, 30]);
        assert_eq!(
            Algorithm::choose(&odd_rows, CPU, medium),
            Algorithm::BlockedBf16
        );
        let resnet = geometry(
            Conv2dConfig::new(64, 64, 3).with_padding(1),
            &[8, 64, 56, 56],
        );
        assert_eq!(Algorithm::choose(&resnet, CPU, medium), Algorithm::Winograd);
        let phases = |precision| {
            let kernels = BackwardAlgorithm::Auto
                .kernels(&padded, CPU, precision)
                .unwrap();
            kernels.input.map(|(_, phases)| phases)
        };
        assert!(phases(medium).is_some());
        assert_eq!(phases(medium), phases(Precision::High));
        assert_eq!(Algorithm::BlockedBf16.precision(), Precision::Medium);
        assert_eq!(
            "blocked-bf16".parse::<Algorithm>().unwrap(),
            Algorithm::BlockedBf16
        );
    }

    #[test]
    fn forced_algorithms_say_what_they_need() {
        let strided = geometry(Conv2dConfig::new(4, 4, 1).with_stride(2), &[1, 4, 8, 8]);
        assert_eq!(
            Algorithm::Gemm1x1
                .resolve(&strided, GPU, HIGHEST)
                .unwrap_err()
                .to_string(),
            "algorithm 'gemm-1x1' cannot run this convolution: it needs a 1x1 kernel, stride 1 and no padding, got kernel_size=(1, 1), stride=(2, 2), padding=(0, 0)"
        );
        assert!(
            Algorithm::Depthwise
                .resolve(&strided, GPU, HIGHEST)
                .is_err()
        );
        assert_eq!(
            Algorithm::ImplicitGemm
                .resolve(&strided, GPU, HIGHEST)
                .unwrap(),
            Algorithm::ImplicitGemm
        );
    }
}
