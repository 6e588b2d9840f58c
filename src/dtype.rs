//! [`DType`]: the element type of a tensor, `float32`, `float16` or
//! `bfloat16`, and rounding to it.

use std::fmt;
use std::str::FromStr;

use half::{bf16, f16};

use crate::error::{Conv2dError, Result};

/// The element type of a tensor, as PyTorch's `torch.float32`,
/// `torch.float16` and `torch.bfloat16`.
///
/// Every dtype's values are `f32` values, so host [`Tensor`](crate::Tensor)s
/// keep them in `f32` slots (rounded to the dtype); the GPU stores the half
/// types in 16 bits. Every kernel accumulates in `f32` and rounds each
/// result to the dtype once, round to nearest, ties to even, as PyTorch's CPU
/// kernels do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DType {
    /// IEEE binary32: 24-bit significand.
    #[default]
    F32,
    /// IEEE binary16: 11-bit significand, largest finite 65504.
    F16,
    /// bfloat16: float32's exponent range, 8-bit significand.
    BF16,
}

impl DType {
    /// Every dtype.
    pub const ALL: [DType; 3] = [DType::F32, DType::F16, DType::BF16];

    /// PyTorch's name: `float32`, `float16` or `bfloat16`.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
        }
    }

    /// The short name the CLI prints: `f32`, `f16` or `bf16`.
    pub fn short_name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
        }
    }

    /// Bytes per element on the GPU.
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
        }
    }

    /// Whether it is one of the 16-bit types.
    pub fn is_half(self) -> bool {
        self != DType::F32
    }

    /// `x` rounded to this dtype (to nearest, ties to even; beyond the
    /// largest finite value, ±infinity; NaN stays NaN).
    pub fn round(self, x: f32) -> f32 {
        match self {
            DType::F32 => x,
            DType::F16 => f16::from_f32(x).to_f32(),
            DType::BF16 => bf16::from_f32(x).to_f32(),
        }
    }

    /// Every value of `values` rounded to this dtype, in place.
    pub fn round_all(self, values: &mut [f32]) {
        if self.is_half() {
            for v in values {
                *v = self.round(*v);
            }
        }
    }

    /// The spacing of this dtype's values at magnitude `x` (one unit in the
    /// last place; the subnormal spacing below the smallest normal): a
    /// result rounded once is within half of it.
    pub fn ulp(self, x: f32) -> f32 {
        let (bits, min_exp) = match self {
            DType::F32 => (24, -126),
            DType::F16 => (11, -14),
            DType::BF16 => (8, -126),
        };
        let x = f64::from(x.abs());
        let exp = if x > 0.0 {
            (x.log2().floor() as i32).max(min_exp)
        } else {
            min_exp
        };
        2f64.powi(exp - (bits - 1)) as f32
    }
}

/// The error PyTorch 2.15's CPU `F.conv2d` gives when the weight's dtype
/// (`what == "weight"`) or the bias's (`"bias"`) is not the input's; its
/// wording differs by case, and is matched here word for word.
pub(crate) fn mismatch(input: DType, what: &'static str, other: DType) -> Conv2dError {
    let scalar = |d: DType| match d {
        DType::F32 => "float",
        DType::F16 => "c10::Half",
        DType::BF16 => "c10::BFloat16",
    };
    let tensor = |d: DType| match d {
        DType::F32 => "torch.FloatTensor",
        DType::F16 => "torch.HalfTensor",
        DType::BF16 => "CPUBFloat16Type",
    };
    Conv2dError::DTypeMismatch(match (what, input) {
        ("weight", DType::F32) => format!(
            "expected scalar type Float but found {}",
            scalar(other).trim_start_matches("c10::")
        ),
        ("weight", _) => format!(
            "Input type ({}) and weight type ({}) should be the same or input should be a MKLDNN tensor and weight is a dense tensor",
            tensor(input),
            tensor(other)
        ),
        _ => format!(
            "Input type ({}) and {what} type ({}) should be the same",
            scalar(input),
            scalar(other)
        ),
    })
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DType {
    type Err = Conv2dError;

    /// `f32`, `f16`, `bf16`, or PyTorch's names (`float32`, `float16`,
    /// `half`, `bfloat16`).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" | "float32" | "float" => Ok(DType::F32),
            "f16" | "float16" | "half" => Ok(DType::F16),
            "bf16" | "bfloat16" => Ok(DType::BF16),
            _ => Err(Conv2dError::UnknownDType(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_round_trip() {
        for d in DType::ALL {
            assert_eq!(d.name().parse::<DType>().unwrap(), d);
            assert_eq!(d.short_name().parse::<DType>().unwrap(), d);
        }
        assert_eq!(
            "f8".parse::<DType>().unwrap_err().to_string(),
            "unknown dtype 'f8' (expected f32, f16 or bf16)"
        );
    }

    /// PyTorch 2.15's words, as its CPU F.conv2d printed them.
    #[test]
    fn mismatches_say_what_pytorch_says() {
        let cases = [
            (
                DType::F32,
                "weight",
                DType::F16,
                "expected scalar type Float but found Half",
            ),
            (
                DType::F32,
                "bias",
                DType::F16,
                "Input type (float) and bias type (c10::Half) should be the same",
            ),
            (
                DType::BF16,
                "weight",
                DType::F32,
                "Input type (CPUBFloat16Type) and weight type (torch.FloatTensor) should be the same or input should be a MKLDNN tensor and weight is a dense tensor",
            ),
            (
                DType::BF16,
                "bias",
                DType::F32,
                "Input type (c10::BFloat16) and bias type (float) should be the same",
            ),
            (
                DType::F16,
                "weight",
                DType::BF16,
                "Input type (torch.HalfTensor) and weight type (CPUBFloat16Type) should be the same or input should be a MKLDNN tensor and weight is a dense tensor",
            ),
            (
                DType::F16,
                "bias",
                DType::BF16,
                "Input type (c10::Half) and bias type (c10::BFloat16) should be the same",
            ),
        ];
        for (input, what, other, want) in cases {
            assert_eq!(mismatch(input, what, other).to_string(), want);
        }
    }

    #[test]
    fn rounding_is_to_nearest_even_with_overflow_to_infinity() {
        // 1 + 2⁻¹¹ is halfway between f16's 1 and 1 + 2⁻¹⁰: ties to even (1).
        assert_eq!(DType::F16.round(1.0 + 2f32.powi(-11)), 1.0);
        assert_eq!(
            DType::F16.round(1.0 + 3.0 * 2f32.powi(-11)),
            1.0 + 2.0 * 2f32.powi(-10)
        );
        assert_eq!(DType::F16.round(65520.0), f32::INFINITY);
        assert_eq!(DType::F16.round(65519.0), 65504.0);
        assert_eq!(DType::BF16.round(1.0 + 2f32.powi(-8)), 1.0);
        assert_eq!(DType::BF16.round(f32::MAX), f32::INFINITY);
        assert!(DType::F16.round(f32::NAN).is_nan());
        assert_eq!(DType::F32.round(0.1), 0.1);
    }

    #[test]
    fn ulp_is_the_spacing_at_a_magnitude() {
        assert_eq!(DType::F16.ulp(1.0), 2f32.powi(-10));
        assert_eq!(DType::F16.ulp(1.5), 2f32.powi(-10));
        assert_eq!(DType::F16.ulp(0.0), 2f32.powi(-24));
        assert_eq!(DType::F16.ulp(60000.0), 32.0);
        assert_eq!(DType::BF16.ulp(1.0), 2f32.powi(-7));
        assert_eq!(DType::F32.ulp(1.0), f32::EPSILON);
    }
}
