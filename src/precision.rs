//! [`Precision`]: how much accuracy `Algorithm::Auto` may trade for speed,
//! the crate's counterpart of PyTorch's
//! `torch.set_float32_matmul_precision` and `torch.backends.cudnn.allow_tf32`.

use std::fmt;
use std::str::FromStr;

use crate::error::{Conv2dError, Result};

/// The accuracy `Algorithm::Auto` must keep: which algorithms it may pick,
/// and so which error bound its results are held to. Set on the context
/// ([`GpuContext::with_precision`](crate::GpuContext::with_precision)) and
/// overridable per layer
/// ([`GpuConv2d::with_precision`](crate::GpuConv2d::with_precision)). A
/// forced algorithm runs whatever the precision; the policy governs `Auto`
/// only.
///
/// With `u = 2⁻²³`, `T` the terms of one output's sum (`C/groups·kH·kW`,
/// plus one for the bias) and `Σ|w·x|` the sum of the absolute values of
/// its terms:
///
/// | level | `Auto` may pick | each output within |
/// |---|---|---|
/// | `Highest` | direct, implicit-gemm, gemm-1x1, depthwise, blocked | `(T + 2)·u·Σ|w·x|` |
/// | `High` | those, and Winograd (forward, and the input gradient's phase convolutions) | Winograd's bound, below |
/// | `Medium` | those, and blocked-bf16 (forward only) | Winograd's bound where Winograd runs; else `((2u_b + u_b²)(1 + (T + 2)·u) + (T + 2)·u)·Σ|w·x|`, `u_b = 2⁻⁸` |
///
/// Winograd F(m×m, 3×3) sums transformed products whose rounding spreads
/// between the outputs of a tile, so its bound weighs each input of the
/// output's tile window by the transforms' coefficients instead of taking
/// the output's own `Σ|w·x|`; normwise it gives, for every output,
/// `|ŷ − y| ≤ (C/groups + 38)·u·(κ²·max_k Σ|w_k|·max|x| + max|b|)`, with
/// `Σ|w_k|` the absolute sum of output channel `k`'s weights and `κ = 88/3`
/// the largest row sum of F(4×4, 3×3)'s combined coefficients (`κ² ≈ 860`;
/// F(2×2, 3×3)'s is 4). The autotuner holds a Winograd candidate to that
/// normwise bound (plus the direct reference's own), and the test suite
/// holds every Winograd result to the per-output bound it comes from.
///
/// `Medium` is PyTorch's `medium`: products of the input and weight rounded
/// to bfloat16 (8 significant bits, f32's range), exact in f32, summed in
/// f32. Each rounded operand is within `u_b·|x|` of its value, so each
/// product within `(2u_b + u_b²)·|w·x|`, and the f32 sum adds the direct
/// bound over the rounded terms. bfloat16 rather than float16: its range is
/// f32's, so no finite operand overflows to infinity (float16's would past
/// 65504), and on llvmpipe widening it is two integer operations per pair,
/// where float16's conversion gained less (0.81–0.95× the float32 kernel's
/// time against 0.67–0.70×, docs/benchmarks.md). The bias is added
/// unrounded.
///
/// Levels are ordered strictest first: `Highest < High < Medium`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[non_exhaustive]
pub enum Precision {
    /// Every output within the fp32 bound of a direct sum: the default.
    #[default]
    Highest,
    /// `Auto` may also pick Winograd wherever it is faster, under Winograd's
    /// bound (see the table above).
    High,
    /// `Auto` may also compute the forward on bfloat16 operands with f32
    /// sums (`blocked-bf16`) wherever it is faster (see the table above).
    Medium,
}

impl Precision {
    /// Every level, strictest first.
    pub const ALL: [Precision; 3] = [Precision::Highest, Precision::High, Precision::Medium];

    /// The name the CLI and the web package use: `highest`, `high` or
    /// `medium`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Highest => "highest",
            Precision::High => "high",
            Precision::Medium => "medium",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = Conv2dError;

    fn from_str(s: &str) -> Result<Self> {
        Precision::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| Conv2dError::UnknownPrecision(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Precision::ALL {
            assert_eq!(p.name().parse::<Precision>().unwrap(), p);
        }
        assert_eq!(Precision::default(), Precision::Highest);
        assert!(Precision::Highest < Precision::High && Precision::High < Precision::Medium);
        assert_eq!(
            "low".parse::<Precision>().unwrap_err().to_string(),
            "unknown precision 'low' (expected highest, high or medium)"
        );
    }
}
