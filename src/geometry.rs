//! The resolved geometry of one convolution call: every shape formula of the
//! crate lives here (output size, the `'same'` split, the crop of negative
//! padding), together with the checks that need the input's shape.

use crate::config::{Conv2dConfig, Padding, PaddingMode};
use crate::error::{Conv2dError, Result};

/// Largest spatial size, padding or channel count accepted; keeps every derived
/// quantity far inside `i64` and the GPU's 32-bit indices meaningful.
const DIM_LIMIT: u64 = 1 << 40;

/// One spatial axis (height or width) of a convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Axis {
    pub(crate) input: usize,
    pub(crate) kernel: usize,
    pub(crate) stride: usize,
    pub(crate) dilation: usize,
    pub(crate) pad_before: i64,
    pub(crate) pad_after: i64,
    pub(crate) output: usize,
}

/// Input columns (or rows) that `outputs` consecutive outputs read along one
/// axis: `(outputs − 1)·stride + d·(k − 1) + 1`. The register-blocked kernels
/// size the spans they hold by it.
pub(crate) fn input_span(outputs: usize, stride: usize, kernel: usize, dilation: usize) -> usize {
    (outputs.max(1) - 1) * stride + dilation * (kernel.max(1) - 1) + 1
}

impl Axis {
    /// Input size along this axis.
    pub fn input(&self) -> usize {
        self.input
    }

    /// Kernel size.
    pub fn kernel(&self) -> usize {
        self.kernel
    }

    /// Stride.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Dilation.
    pub fn dilation(&self) -> usize {
        self.dilation
    }

    /// Padding before (top / left); negative crops.
    pub fn pad_before(&self) -> i64 {
        self.pad_before
    }

    /// Padding after (bottom / right); negative crops.
    pub fn pad_after(&self) -> i64 {
        self.pad_after
    }

    /// Output size along this axis.
    pub fn output(&self) -> usize {
        self.output
    }

    /// Extent of the dilated kernel: `d·(k−1)+1`.
    pub fn dilated_kernel(&self) -> usize {
        self.dilation * (self.kernel - 1) + 1
    }

    /// Size of the padded input.
    pub fn padded(&self) -> i64 {
        self.input as i64 + self.pad_before + self.pad_after
    }

    /// Rows/columns of real padding before the data (negative padding becomes 0).
    pub fn lead(&self) -> usize {
        self.pad_before.max(0) as usize
    }

    /// The part of the input the padding mode sees, `(first, len)`: negative
    /// padding crops first, as PyTorch's `F.pad` does.
    pub fn source_window(&self) -> (usize, i64) {
        let first = (-self.pad_before).max(0);
        let len = self.input as i64 - first - (-self.pad_after).max(0);
        (first as usize, len)
    }

    /// Of `strips` strips of padded positions `step` apart, each reading
    /// `span` positions from its start (strip r: `r·step + [0, span)`), the
    /// ones whose positions all lie inside the source window: where a kernel
    /// reads the data directly, with no padding mode's index map.
    pub(crate) fn interior_strips(
        &self,
        step: usize,
        span: usize,
        strips: usize,
    ) -> std::ops::Range<usize> {
        let lead = self.lead();
        let first = lead.div_ceil(step.max(1)).min(strips);
        // r·step − lead ≥ 0 and r·step − lead + span ≤ len.
        let end = usize::try_from(self.source_window().1)
            .ok()
            .and_then(|len| (lead + len).checked_sub(span))
            .map_or(first, |last| (last / step.max(1) + 1).clamp(first, strips));
        first..end
    }

    /// `(in + pad_before + pad_after − (d·(k−1)+1)) / s + 1`, PyTorch's
    /// `conv_output_size`; `None` when the window does not fit.
    fn output_len(&self) -> Option<usize> {
        let span = self.padded() - self.dilated_kernel() as i64;
        (span >= 0).then(|| (span as usize) / self.stride + 1)
    }
}

/// Padding per side for one axis. `explicit` is this axis' value of
/// `Padding::Explicit`; `'same'` puts the extra unit of an odd total at the end
/// (bottom/right), dilation included.
fn axis_padding(padding: Padding, explicit: i64, kernel: usize, dilation: usize) -> (i64, i64) {
    match padding {
        Padding::Valid => (0, 0),
        Padding::Explicit { .. } => (explicit, explicit),
        Padding::Same => {
            let total = (dilation * (kernel - 1)) as i64;
            let before = total / 2;
            (before, total - before)
        }
    }
}

/// Everything a kernel needs to know about one forward call, checked: only
/// [`Conv2dGeometry::new`] makes one, and its parts are read through getters,
/// so a geometry is always one PyTorch would accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dGeometry {
    pub(crate) batch: usize,
    pub(crate) unbatched: bool,
    pub(crate) in_channels: usize,
    pub(crate) out_channels: usize,
    pub(crate) groups: usize,
    pub(crate) height: Axis,
    pub(crate) width: Axis,
    pub(crate) padding_mode: PaddingMode,
}

impl Conv2dGeometry {
    /// Resolves `config` against an input shape, running PyTorch's forward checks
    /// in PyTorch's order (for non-`zeros` modes the explicit pad comes first).
    pub fn new(config: &Conv2dConfig, input_shape: &[usize]) -> Result<Self> {
        config.validate()?;
        let (batch, unbatched, channels, in_h, in_w) = match *input_shape {
            [c, h, w] => (1, true, c, h, w),
            [n, c, h, w] => (n, false, c, h, w),
            _ => return Err(Conv2dError::InputRank(input_shape.to_vec())),
        };
        if let Some(&big) = input_shape.iter().find(|&&d| d as u64 > DIM_LIMIT) {
            return Err(Conv2dError::ValueTooLarge {
                what: "input dimension",
                value: big.to_string(),
            });
        }
        let (explicit_h, explicit_w) = match config.padding {
            Padding::Explicit { h, w } => (h, w),
            _ => (0, 0),
        };
        let (k, d) = (config.kernel_size, config.dilation);
        let (pad_top, pad_bottom) = axis_padding(config.padding, explicit_h, k.h, d.h);
        let (pad_left, pad_right) = axis_padding(config.padding, explicit_w, k.w, d.w);
        let mut height = Axis {
            input: in_h,
            kernel: config.kernel_size.h,
            stride: config.stride.h,
            dilation: config.dilation.h,
            pad_before: pad_top,
            pad_after: pad_bottom,
            output: 0,
        };
        let mut width = Axis {
            input: in_w,
            kernel: config.kernel_size.w,
            stride: config.stride.w,
            dilation: config.dilation.w,
            pad_before: pad_left,
            pad_after: pad_right,
            output: 0,
        };

        if config.padding_mode != PaddingMode::Zeros {
            check_explicit_pad(config.padding_mode, input_shape, &height, &width)?;
        }

        let expected = config.in_channels;
        if channels != expected {
            return Err(Conv2dError::ChannelMismatch {
                groups: config.groups,
                weight_shape: config.weight_shape().to_vec(),
                input_shape: batched_shape(input_shape),
                expected,
                got: channels,
            });
        }

        match (height.output_len(), width.output_len()) {
            (Some(oh), Some(ow)) => {
                height.output = oh;
                width.output = ow;
            }
            _ => {
                return Err(Conv2dError::KernelTooLarge {
                    padded: (height.padded(), width.padded()),
                    kernel: (height.dilated_kernel(), width.dilated_kernel()),
                });
            }
        }

        if batch > 0 && channels > 0 && (in_h == 0 || in_w == 0) {
            return Err(Conv2dError::EmptySpatial(batched_shape(input_shape)));
        }

        Ok(Self {
            batch,
            unbatched,
            in_channels: channels,
            out_channels: config.out_channels,
            groups: config.groups,
            height,
            width,
            padding_mode: config.padding_mode,
        })
    }

    /// Batch size (1 for unbatched input).
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Whether the input was 3-D `(C, H, W)`; the output then is too.
    pub fn is_unbatched(&self) -> bool {
        self.unbatched
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }

    /// Output channels of the layer (the output tensor has 0 channels when
    /// `in_channels == 0`, see [`output_channels`](Self::output_channels)).
    pub fn out_channels(&self) -> usize {
        self.out_channels
    }

    /// Channel groups.
    pub fn groups(&self) -> usize {
        self.groups
    }

    /// The height axis.
    pub fn height(&self) -> &Axis {
        &self.height
    }

    /// The width axis.
    pub fn width(&self) -> &Axis {
        &self.width
    }

    /// The padding mode.
    pub fn padding_mode(&self) -> PaddingMode {
        self.padding_mode
    }

    /// Input channels per group.
    pub fn in_channels_per_group(&self) -> usize {
        self.in_channels / self.groups
    }

    /// Output channels per group.
    pub fn out_channels_per_group(&self) -> usize {
        self.out_channels / self.groups
    }

    /// Channels of the output tensor: PyTorch gives 0 when the input has 0 channels.
    pub fn output_channels(&self) -> usize {
        if self.in_channels == 0 {
            0
        } else {
            self.out_channels
        }
    }

    /// The input shape as 4-D `(N, C, H, W)`.
    pub fn input_shape_4d(&self) -> [usize; 4] {
        [
            self.batch,
            self.in_channels,
            self.height.input,
            self.width.input,
        ]
    }

    /// The output shape as 4-D `(N, C_out, OH, OW)`.
    pub fn output_shape_4d(&self) -> [usize; 4] {
        [
            self.batch,
            self.output_channels(),
            self.height.output,
            self.width.output,
        ]
    }

    /// The output shape with the input's rank (3-D for unbatched input).
    pub fn output_shape(&self) -> Vec<usize> {
        let s = self.output_shape_4d();
        if self.unbatched {
            s[1..].to_vec()
        } else {
            s.to_vec()
        }
    }

    /// Whether the convolution is pointwise: a 1×1 kernel, stride 1 and no
    /// padding, so that each output reads the input at its own position.
    pub(crate) fn is_pointwise(&self) -> bool {
        [&self.height, &self.width]
            .iter()
            .all(|a| a.kernel == 1 && a.stride == 1 && a.pad_before == 0 && a.pad_after == 0)
    }

    /// For a pointwise convolution, the same convolution over planes of one
    /// row `H·W` long: the same tensors in memory, and longer rows for the
    /// kernels that work along rows.
    pub(crate) fn flattened(&self) -> Self {
        let plane = self.height.input * self.width.input;
        let row = |length: usize| Axis {
            input: length,
            kernel: 1,
            stride: 1,
            dilation: 1,
            pad_before: 0,
            pad_after: 0,
            output: length,
        };
        Self {
            height: row(1),
            width: row(plane),
            ..*self
        }
    }

    /// Fails unless `shape` is this call's output shape (for a gradient of the output).
    pub fn check_grad_output(&self, shape: &[usize]) -> Result<()> {
        let expected = self.output_shape();
        if shape != expected {
            return Err(Conv2dError::GradOutputShape {
                expected,
                got: shape.to_vec(),
            });
        }
        Ok(())
    }

    /// Elements of the weight: `C_out·(C_in/G)·kH·kW`.
    pub fn weight_len(&self) -> usize {
        self.out_channels * self.in_channels_per_group() * self.height.kernel * self.width.kernel
    }

    /// Elements of one padded input plane (after negative padding crops).
    pub fn padded_plane(&self) -> usize {
        self.height.padded().max(0) as usize * self.width.padded().max(0) as usize
    }

    /// Multiply-adds of the whole call: `N·C_out·OH·OW·(C_in/G)·kH·kW`.
    pub fn macs(&self) -> u64 {
        [
            self.batch,
            self.output_channels(),
            self.height.output,
            self.width.output,
            self.in_channels_per_group(),
            self.height.kernel,
            self.width.kernel,
        ]
        .iter()
        .fold(1u64, |acc, &d| acc.saturating_mul(d as u64))
    }

    /// Floating-point operations, counted as `2 · macs`.
    pub fn flops(&self) -> u64 {
        self.macs().saturating_mul(2)
    }
}

/// A 3-D shape gets its batch dimension back, as PyTorch prints it after `batchify`.
fn batched_shape(shape: &[usize]) -> Vec<usize> {
    if shape.len() == 3 {
        std::iter::once(1).chain(shape.iter().copied()).collect()
    } else {
        shape.to_vec()
    }
}

/// The checks `F.pad` runs before the convolution for reflect / replicate / circular.
fn check_explicit_pad(
    mode: PaddingMode,
    shape: &[usize],
    height: &Axis,
    width: &Axis,
) -> Result<()> {
    let rank = shape.len();
    if mode != PaddingMode::Circular && shape[rank - 3..].contains(&0) {
        return Err(Conv2dError::PadEmptyInput(shape.to_vec()));
    }
    // PyTorch checks the width (last dimension) first.
    for (axis, dim) in [(width, rank - 1), (height, rank - 2)] {
        let pad = (axis.pad_before, axis.pad_after);
        let input_shape = shape.to_vec();
        let too_large = match mode {
            PaddingMode::Reflect => pad.0.max(pad.1) >= axis.input as i64,
            PaddingMode::Circular => pad.0.max(pad.1) > axis.input as i64,
            _ => false,
        };
        if too_large && mode == PaddingMode::Reflect {
            return Err(Conv2dError::ReflectPadTooLarge {
                pad,
                dim,
                input_shape,
            });
        }
        if too_large {
            return Err(Conv2dError::CircularPadTooLarge {
                pad,
                dim,
                input_shape,
            });
        }
        // Circular cropping to exactly nothing passes the pad (the kernel-size
        // check then fails); cropping past nothing does not.
        if mode == PaddingMode::Circular && axis.padded() < 0 {
            return Err(Conv2dError::CropEmpties {
                pad,
                dim,
                input_shape,
            });
        }
    }
    if mode != PaddingMode::Circular && (height.padded() < 1 || width.padded() < 1) {
        return Err(Conv2dError::PadOutputEmpty {
            padded: (height.padded(), width.padded()),
            input: (height.input, width.input),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geo(config: Conv2dConfig, shape: &[usize]) -> Result<Conv2dGeometry> {
        Conv2dGeometry::new(&config, shape)
    }

    #[test]
    fn same_puts_the_extra_pad_at_the_end() {
        // [verified 2.15] k=4 -> (1, 2); k=4, d=2 -> (3, 3); k=(2,5), d=(2,1) -> H (1,1), W (2,2).
        let g = geo(
            Conv2dConfig::new(1, 1, 4).with_padding(Padding::Same),
            &[1, 1, 5, 5],
        )
        .unwrap();
        assert_eq!((g.height.pad_before, g.height.pad_after), (1, 2));
        assert_eq!(g.output_shape(), vec![1, 1, 5, 5]);
        let g = geo(
            Conv2dConfig::new(1, 1, 4)
                .with_padding(Padding::Same)
                .with_dilation(2),
            &[1, 1, 5, 5],
        )
        .unwrap();
        assert_eq!((g.width.pad_before, g.width.pad_after), (3, 3));
        let g = geo(
            Conv2dConfig::new(1, 1, (2, 5))
                .with_padding(Padding::Same)
                .with_dilation((2, 1)),
            &[1, 1, 5, 5],
        )
        .unwrap();
        assert_eq!((g.height.pad_before, g.height.pad_after), (1, 1));
        assert_eq!((g.width.pad_before, g.width.pad_after), (2, 2));
    }

    #[test]
    fn output_size_is_floored() {
        let g = geo(Conv2dConfig::new(3, 2, 3).with_stride(2), &[3, 7, 7]).unwrap();
        assert_eq!(g.output_shape(), vec![2, 3, 3]);
        let g = geo(Conv2dConfig::new(1, 1, 3).with_stride(2), &[1, 1, 6, 6]).unwrap();
        assert_eq!(g.output_shape(), vec![1, 1, 2, 2]);
    }

    #[test]
    fn zero_input_channels_give_zero_output_channels() {
        let g = geo(Conv2dConfig::new(0, 33, 3).with_stride(2), &[2, 0, 50, 100]).unwrap();
        assert_eq!(g.output_shape(), vec![2, 0, 24, 49]);
    }

    #[test]
    fn negative_padding_crops_in_non_zero_modes() {
        let g = geo(
            Conv2dConfig::new(1, 1, 3)
                .with_padding(-1)
                .with_padding_mode(PaddingMode::Reflect),
            &[1, 1, 6, 6],
        )
        .unwrap();
        assert_eq!(g.output_shape(), vec![1, 1, 2, 2]);
        assert_eq!(g.height.source_window(), (1, 4));
    }
}
