//! The user-facing parameters of a convolution and their validation.
//!
//! [`Conv2dConfig`] mirrors the arguments of `torch.nn.Conv2d`. It checks what
//! PyTorch checks without seeing an input (groups, divisibility, `'same'` with a
//! stride, non-positive sizes); the checks that need the input live in
//! [`crate::geometry`].

use std::fmt;
use std::str::FromStr;

use crate::error::{Conv2dError, Result};

/// A (height, width) pair: kernel size, stride or dilation.
///
/// Built from one number (`2` means `(2, 2)`, as in PyTorch) or a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Size2 {
    /// Along the height (rows).
    pub h: usize,
    /// Along the width (columns).
    pub w: usize,
}

impl Size2 {
    /// A pair of `(h, w)`.
    pub const fn new(h: usize, w: usize) -> Self {
        Self { h, w }
    }

    /// The same value for both dimensions.
    pub const fn square(v: usize) -> Self {
        Self { h: v, w: v }
    }
}

impl From<usize> for Size2 {
    fn from(v: usize) -> Self {
        Self::square(v)
    }
}

impl From<(usize, usize)> for Size2 {
    fn from((h, w): (usize, usize)) -> Self {
        Self { h, w }
    }
}

impl From<[usize; 2]> for Size2 {
    fn from([h, w]: [usize; 2]) -> Self {
        Self { h, w }
    }
}

impl fmt::Display for Size2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {})", self.h, self.w)
    }
}

impl FromStr for Size2 {
    type Err = String;

    /// Parses `2` or `2,1` (height, width).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let parse = |p: &str| {
            p.parse::<usize>()
                .map_err(|_| format!("expected a non-negative integer or 'h,w', got '{s}'"))
        };
        match parts.as_slice() {
            [v] => Ok(Self::square(parse(v)?)),
            [h, w] => Ok(Self::new(parse(h)?, parse(w)?)),
            _ => Err(format!(
                "expected a single integer value or a list of 2 values, got '{s}'"
            )),
        }
    }
}

/// How much to pad, as `nn.Conv2d`'s `padding` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Padding {
    /// The same number of rows on top and bottom and columns left and right.
    ///
    /// Negative values crop, as PyTorch does for the non-`zeros` padding modes;
    /// in `zeros` mode they are an error.
    Explicit {
        /// Rows added on top and on the bottom.
        h: i64,
        /// Columns added on the left and on the right.
        w: i64,
    },
    /// Output as large as the input (stride must be 1). Odd total padding puts
    /// the extra row/column at the bottom/right, dilation included.
    Same,
    /// No padding.
    #[default]
    Valid,
}

impl Padding {
    /// `padding=p`: the same amount on every side.
    pub const fn uniform(p: i64) -> Self {
        Self::Explicit { h: p, w: p }
    }
}

impl From<i32> for Padding {
    fn from(p: i32) -> Self {
        Self::uniform(p.into())
    }
}

impl From<(i32, i32)> for Padding {
    fn from((h, w): (i32, i32)) -> Self {
        Self::Explicit {
            h: h.into(),
            w: w.into(),
        }
    }
}

impl From<(i64, i64)> for Padding {
    fn from((h, w): (i64, i64)) -> Self {
        Self::Explicit { h, w }
    }
}

impl fmt::Display for Padding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Explicit { h, w } => write!(f, "({h}, {w})"),
            Self::Same => f.write_str("'same'"),
            Self::Valid => f.write_str("'valid'"),
        }
    }
}

impl FromStr for Padding {
    type Err = Conv2dError;

    /// Parses `1`, `1,2`, `same` or `valid`.
    fn from_str(s: &str) -> Result<Self> {
        let invalid = || Conv2dError::InvalidPaddingString(s.to_string());
        match s.trim() {
            "same" => return Ok(Self::Same),
            "valid" => return Ok(Self::Valid),
            _ => {}
        }
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let parse = |p: &str| p.parse::<i64>().map_err(|_| invalid());
        match parts.as_slice() {
            [v] => Ok(Self::uniform(parse(v)?)),
            [h, w] => Ok(Self::Explicit {
                h: parse(h)?,
                w: parse(w)?,
            }),
            _ => Err(invalid()),
        }
    }
}

/// What the padded border contains, as `nn.Conv2d`'s `padding_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PaddingMode {
    /// Zeros.
    #[default]
    Zeros,
    /// Mirror without repeating the edge (`d c b | a b c d | c b a`).
    Reflect,
    /// Repeat the edge (`a a a | a b c d | d d d`).
    Replicate,
    /// Wrap around (`b c d | a b c d | a b c`).
    Circular,
}

impl PaddingMode {
    /// The name PyTorch uses.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Zeros => "zeros",
            Self::Reflect => "reflect",
            Self::Replicate => "replicate",
            Self::Circular => "circular",
        }
    }

    /// Every mode, in PyTorch's documentation order.
    pub const ALL: [PaddingMode; 4] = [
        PaddingMode::Zeros,
        PaddingMode::Reflect,
        PaddingMode::Replicate,
        PaddingMode::Circular,
    ];
}

impl fmt::Display for PaddingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PaddingMode {
    type Err = Conv2dError;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| Conv2dError::InvalidPaddingMode(s.to_string()))
    }
}

/// The parameters of one `torch.nn.Conv2d` layer.
///
/// ```
/// use wgpu_conv2d::{Conv2dConfig, Padding, PaddingMode};
/// let config = Conv2dConfig::new(16, 32, (3, 3))
///     .with_stride(1)
///     .with_padding(Padding::Same)
///     .with_padding_mode(PaddingMode::Reflect)
///     .with_groups(4);
/// assert!(config.validate().is_ok());
/// assert_eq!(config.weight_shape(), [32, 4, 3, 3]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv2dConfig {
    /// Channels of the input.
    pub in_channels: usize,
    /// Channels of the output (number of filters).
    pub out_channels: usize,
    /// Kernel (height, width).
    pub kernel_size: Size2,
    /// Step between windows. Default 1.
    pub stride: Size2,
    /// Padding. Default 0 (`Valid`).
    pub padding: Padding,
    /// Spacing between kernel taps. Default 1.
    pub dilation: Size2,
    /// Channel groups. Default 1; `in_channels` for depthwise.
    pub groups: usize,
    /// Whether the layer has a bias. Default true.
    pub bias: bool,
    /// What the padding contains. Default zeros.
    pub padding_mode: PaddingMode,
}

impl Conv2dConfig {
    /// A configuration with PyTorch's defaults: stride 1, no padding, dilation 1,
    /// one group, with bias, zero padding mode.
    pub fn new(in_channels: usize, out_channels: usize, kernel_size: impl Into<Size2>) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel_size: kernel_size.into(),
            stride: Size2::square(1),
            padding: Padding::Valid,
            dilation: Size2::square(1),
            groups: 1,
            bias: true,
            padding_mode: PaddingMode::Zeros,
        }
    }

    /// Sets the stride.
    pub fn with_stride(mut self, stride: impl Into<Size2>) -> Self {
        self.stride = stride.into();
        self
    }

    /// Sets the padding (`1`, `(1, 2)`, `Padding::Same`, ...).
    pub fn with_padding(mut self, padding: impl Into<Padding>) -> Self {
        self.padding = padding.into();
        self
    }

    /// Sets the dilation.
    pub fn with_dilation(mut self, dilation: impl Into<Size2>) -> Self {
        self.dilation = dilation.into();
        self
    }

    /// Sets the number of groups.
    pub fn with_groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    /// Sets whether the layer has a bias.
    pub fn with_bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Sets the padding mode.
    pub fn with_padding_mode(mut self, padding_mode: PaddingMode) -> Self {
        self.padding_mode = padding_mode;
        self
    }

    /// The weight's shape: `(out_channels, in_channels / groups, kH, kW)`.
    ///
    /// Meaningful once [`validate`](Self::validate) passes (it uses `groups` as a divisor).
    pub fn weight_shape(&self) -> [usize; 4] {
        [
            self.out_channels,
            self.in_channels / self.groups.max(1),
            self.kernel_size.h,
            self.kernel_size.w,
        ]
    }

    /// `fan_in = (in_channels / groups) * kH * kW`, the denominator of PyTorch's default init.
    pub fn fan_in(&self) -> usize {
        let [_, c, kh, kw] = self.weight_shape();
        c * kh * kw
    }

    /// Checks everything that does not depend on the input, in PyTorch's order:
    /// the module constructor's checks first, then the forward checks on
    /// stride, dilation, kernel size, padding and the weight's first dimension.
    pub fn validate(&self) -> Result<()> {
        let Self {
            in_channels,
            out_channels,
            groups,
            stride,
            dilation,
            kernel_size,
            ..
        } = *self;
        if groups == 0 {
            return Err(Conv2dError::NonPositiveGroups(groups));
        }
        if in_channels % groups != 0 {
            return Err(Conv2dError::InChannelsNotDivisible {
                in_channels,
                groups,
            });
        }
        if out_channels % groups != 0 {
            return Err(Conv2dError::OutChannelsNotDivisible {
                out_channels,
                groups,
            });
        }
        if self.padding == Padding::Same && (stride.h != 1 || stride.w != 1) {
            return Err(Conv2dError::SameWithStride(stride.h, stride.w));
        }
        if let Padding::Explicit { h, w } = self.padding {
            if self.padding_mode == PaddingMode::Zeros && (h < 0 || w < 0) {
                return Err(Conv2dError::NegativePadding(h, w));
            }
            // PyTorch's own bound is INT64_MAX / 2; ours keeps every derived size in i64.
            const LIMIT: i64 = 1 << 40;
            if h.abs() > LIMIT || w.abs() > LIMIT {
                return Err(Conv2dError::ValueTooLarge {
                    what: "padding",
                    value: self.padding.to_string(),
                });
            }
        }
        if stride.h == 0 || stride.w == 0 {
            return Err(Conv2dError::NonPositiveStride(stride.h, stride.w));
        }
        if dilation.h == 0 || dilation.w == 0 {
            return Err(Conv2dError::NonPositiveDilation(dilation.h, dilation.w));
        }
        if kernel_size.h == 0 || kernel_size.w == 0 {
            return Err(Conv2dError::NonPositiveKernel(kernel_size.h, kernel_size.w));
        }
        const SIZE_LIMIT: usize = 1 << 31;
        for (what, v) in [
            ("stride", stride),
            ("dilation", dilation),
            ("kernel_size", kernel_size),
        ] {
            if v.h > SIZE_LIMIT || v.w > SIZE_LIMIT {
                return Err(Conv2dError::ValueTooLarge {
                    what,
                    value: v.to_string(),
                });
            }
        }
        if out_channels < groups {
            return Err(Conv2dError::TooFewOutChannels {
                groups,
                weight_shape: self.weight_shape().to_vec(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cli_forms() {
        assert_eq!("2".parse::<Size2>().unwrap(), Size2::new(2, 2));
        assert_eq!("2,1".parse::<Size2>().unwrap(), Size2::new(2, 1));
        assert!("2,1,3".parse::<Size2>().is_err());
        assert!("-1".parse::<Size2>().is_err());
        assert_eq!("same".parse::<Padding>().unwrap(), Padding::Same);
        assert_eq!("valid".parse::<Padding>().unwrap(), Padding::Valid);
        assert_eq!("1,2".parse::<Padding>().unwrap(), Padding::from((1, 2)));
        assert_eq!("-1".parse::<Padding>().unwrap(), Padding::uniform(-1));
        assert!(matches!(
            "foo".parse::<Padding>(),
            Err(Conv2dError::InvalidPaddingString(_))
        ));
        assert_eq!(
            "circular".parse::<PaddingMode>().unwrap(),
            PaddingMode::Circular
        );
        let err = "xyz".parse::<PaddingMode>().unwrap_err().to_string();
        assert!(err.contains("padding_mode='xyz'"), "{err}");
    }

    #[test]
    fn literals_convert() {
        let c = Conv2dConfig::new(1, 1, 3)
            .with_stride((2, 1))
            .with_padding(1)
            .with_dilation(2);
        assert_eq!(c.kernel_size, Size2::new(3, 3));
        assert_eq!(c.stride, Size2::new(2, 1));
        assert_eq!(c.padding, Padding::uniform(1));
        assert_eq!(c.dilation, Size2::new(2, 2));
    }
}
