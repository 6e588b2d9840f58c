//! The forward kernels and how one is chosen for a convolution.

use std::fmt;
use std::str::FromStr;

use super::kernels::{self, KernelSpec};
use super::plan::Chunk;
use crate::error::{Conv2dError, Result};
use crate::geometry::Conv2dGeometry;

/// Which GPU kernel computes the forward pass. Every algorithm gives PyTorch's
/// result within fp32 rounding; they differ in speed and in what they accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
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
    /// four outputs per invocation along the row.
    Depthwise,
}

/// Output channels per group from which a 64-wide GEMM tile is worth filling.
const GEMM_MIN_OUT_PER_GROUP: usize = 16;

impl Algorithm {
    /// The algorithms that name a kernel, in the order benchmarks list them.
    pub const KERNELS: [Algorithm; 4] = [
        Algorithm::Direct,
        Algorithm::ImplicitGemm,
        Algorithm::Gemm1x1,
        Algorithm::Depthwise,
    ];

    /// The name the CLI and benchmarks use: `auto`, `direct`, `implicit-gemm`, `gemm-1x1`, `depthwise`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Auto => "auto",
            Algorithm::Direct => "direct",
            Algorithm::ImplicitGemm => "implicit-gemm",
            Algorithm::Gemm1x1 => "gemm-1x1",
            Algorithm::Depthwise => "depthwise",
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
            Algorithm::Depthwise => (geometry.in_channels_per_group() != 1).then(|| {
                format!(
                    "it needs groups == in_channels, got in_channels={}, groups={}",
                    geometry.in_channels, geometry.groups
                )
            }),
        };
        match reason {
            None => Ok(()),
            Some(reason) => Err(Conv2dError::UnsupportedAlgorithm {
                algorithm: self.name(),
                reason,
            }),
        }
    }

    /// The kernel [`Algorithm::Auto`] runs for `geometry`: depthwise for
    /// depthwise convolutions with few outputs per channel, the tiled GEMMs
    /// when a group has enough output channels to fill their tiles, else direct.
    pub fn choose(geometry: &Conv2dGeometry) -> Algorithm {
        let out_per_group = geometry.out_channels_per_group();
        if Algorithm::Depthwise.check(geometry).is_ok() && out_per_group < GEMM_MIN_OUT_PER_GROUP {
            Algorithm::Depthwise
        } else if out_per_group < GEMM_MIN_OUT_PER_GROUP {
            Algorithm::Direct
        } else if Algorithm::Gemm1x1.check(geometry).is_ok() {
            Algorithm::Gemm1x1
        } else {
            Algorithm::ImplicitGemm
        }
    }

    /// The kernel that runs for `geometry`: [`choose`](Self::choose) for `Auto`,
    /// else this one if it can, else an `UnsupportedAlgorithm` error.
    pub fn resolve(self, geometry: &Conv2dGeometry) -> Result<Algorithm> {
        match self {
            Algorithm::Auto => Ok(Algorithm::choose(geometry)),
            other => other.check(geometry).map(|()| other),
        }
    }

    /// The kernel, the `total` its shader bounds itself by, and the invocations
    /// to launch for one chunk. Call on a resolved algorithm.
    pub(crate) fn launch(self, geometry: &Conv2dGeometry, chunk: &Chunk) -> Launch {
        let [_, _, out_h, out_w] = geometry.output_shape_4d();
        match self {
            Algorithm::Auto | Algorithm::Direct => {
                Launch::per_invocation(kernels::DIRECT, chunk.output_len(geometry))
            }
            Algorithm::Depthwise => {
                let runs = out_w.div_ceil(4);
                let total = chunk.batch.len() * chunk.out_channels.len() * out_h * runs;
                Launch::per_invocation(kernels::DEPTHWISE, total)
            }
            Algorithm::ImplicitGemm | Algorithm::Gemm1x1 => {
                // Workgroups over (group, channel tile, position tile); see the shader.
                let per_group = geometry.out_channels_per_group();
                let o = &chunk.out_channels;
                let groups = (o.end - 1) / per_group - o.start / per_group + 1;
                let m_tiles = per_group.min(o.len()).div_ceil(64);
                let n_tiles = (chunk.batch.len() * out_h * out_w).div_ceil(64);
                let spec = if self == Algorithm::Gemm1x1 {
                    kernels::GEMM_1X1
                } else {
                    kernels::IMPLICIT_GEMM
                };
                let workgroups = (groups * m_tiles * n_tiles) as u64;
                Launch {
                    spec,
                    total: workgroups,
                    invocations: workgroups * u64::from(spec.workgroup_size),
                }
            }
        }
    }
}

/// One dispatch of a forward kernel.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Launch {
    pub spec: KernelSpec,
    /// What the shader counts in `ConvParams::total` (invocations or workgroups).
    pub total: u64,
    /// Invocations to launch.
    pub invocations: u64,
}

impl Launch {
    fn per_invocation(spec: KernelSpec, total: usize) -> Self {
        Self {
            spec,
            total: total as u64,
            invocations: total as u64,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Conv2dConfig;

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
            "unknown algorithm 'fft' (expected auto, direct, implicit-gemm, gemm-1x1 or depthwise)"
        );
    }

    #[test]
    fn auto_picks_by_shape() {
        let resnet = geometry(
            Conv2dConfig::new(64, 64, 3).with_padding(1),
            &[8, 64, 56, 56],
        );
        assert_eq!(Algorithm::choose(&resnet), Algorithm::ImplicitGemm);
        let pointwise = geometry(Conv2dConfig::new(64, 256, 1), &[1, 64, 56, 56]);
        assert_eq!(Algorithm::choose(&pointwise), Algorithm::Gemm1x1);
        let depthwise = geometry(
            Conv2dConfig::new(32, 32, 3).with_padding(1).with_groups(32),
            &[1, 32, 112, 112],
        );
        assert_eq!(Algorithm::choose(&depthwise), Algorithm::Depthwise);
        let single_channel = geometry(Conv2dConfig::new(1, 1, 2), &[1, 1, 3, 3]);
        assert_eq!(Algorithm::choose(&single_channel), Algorithm::Depthwise);
        let few_outputs = geometry(Conv2dConfig::new(4, 2, 3), &[1, 4, 9, 9]);
        assert_eq!(Algorithm::choose(&few_outputs), Algorithm::Direct);
    }

    #[test]
    fn forced_algorithms_say_what_they_need() {
        let strided = geometry(Conv2dConfig::new(4, 4, 1).with_stride(2), &[1, 4, 8, 8]);
        assert_eq!(
            Algorithm::Gemm1x1
                .resolve(&strided)
                .unwrap_err()
                .to_string(),
            "algorithm 'gemm-1x1' cannot run this convolution: it needs a 1x1 kernel, stride 1 and no padding, got kernel_size=(1, 1), stride=(2, 2), padding=(0, 0)"
        );
        assert!(Algorithm::Depthwise.resolve(&strided).is_err());
        assert_eq!(
            Algorithm::ImplicitGemm.resolve(&strided).unwrap(),
            Algorithm::ImplicitGemm
        );
    }
}
