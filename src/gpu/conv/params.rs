//! The two uniform blocks every convolution kernel reads: [`ConvParams`], the
//! geometry of one call, written once per call, and [`DispatchParams`], what
//! one dispatch computes. Rust twins of the WGSL structs in
//! `shaders/common.wgsl`, field by field (a test checks naga's layout).
//!
//! Every narrowing to `u32` is checked: a size the shaders' 32-bit indices
//! cannot hold is a [`Conv2dError`], never a wrap.

use std::ops::Range;

use bytemuck::{Pod, Zeroable};

use super::plan::Chunk;
use crate::config::PaddingMode;
use crate::error::{Conv2dError, Result};
use crate::geometry::{Axis, Conv2dGeometry};

/// `value` as a `u32`, or an error naming `what`.
pub(crate) fn to_u32(what: &'static str, value: usize) -> Result<u32> {
    u32::try_from(value).map_err(|_| Conv2dError::ValueTooLarge {
        what,
        value: format!("{value} (the GPU kernels index with 32 bits)"),
    })
}

/// The geometry of one call. All `u32`, so the layout is the same under
/// `#[repr(C)]` and WGSL's uniform rules.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub(crate) struct ConvParams {
    pub in_h: u32,
    pub in_w: u32,
    pub out_h: u32,
    pub out_w: u32,
    pub groups: u32,
    pub in_per_group: u32,
    pub out_per_group: u32,
    pub kernel_h: u32,
    pub kernel_w: u32,
    pub stride_h: u32,
    pub stride_w: u32,
    pub dilation_h: u32,
    pub dilation_w: u32,
    pub lead_h: u32,
    pub lead_w: u32,
    pub src_first_h: u32,
    pub src_first_w: u32,
    pub src_len_h: u32,
    pub src_len_w: u32,
    pub padding_mode: u32,
    pub has_bias: u32,
    pub padded_h: u32,
    pub padded_w: u32,
    pub _pad0: u32,
}

/// The shader's numbering of the padding modes (`MODE_*` constants in WGSL).
pub(crate) fn mode_code(mode: PaddingMode) -> u32 {
    match mode {
        PaddingMode::Zeros => 0,
        PaddingMode::Reflect => 1,
        PaddingMode::Replicate => 2,
        PaddingMode::Circular => 3,
    }
}

impl ConvParams {
    /// The parameters of `geometry`.
    pub(crate) fn new(geometry: &Conv2dGeometry, has_bias: bool) -> Result<Self> {
        let (h, w) = (&geometry.height, &geometry.width);
        let size = |what, v: usize| to_u32(what, v);
        let window = |axis: &Axis| -> Result<(u32, u32)> {
            let (first, len) = axis.source_window();
            Ok((
                size("crop", first)?,
                size("input size", len.max(0) as usize)?,
            ))
        };
        let padded = |axis: &Axis| size("padded input size", axis.padded().max(0) as usize);
        let (src_first_h, src_len_h) = window(h)?;
        let (src_first_w, src_len_w) = window(w)?;
        Ok(Self {
            in_h: size("input height", h.input)?,
            in_w: size("input width", w.input)?,
            out_h: size("output height", h.output)?,
            out_w: size("output width", w.output)?,
            groups: size("groups", geometry.groups)?,
            in_per_group: size("in_channels / groups", geometry.in_channels_per_group())?,
            out_per_group: size("out_channels / groups", geometry.out_channels_per_group())?,
            kernel_h: size("kernel height", h.kernel)?,
            kernel_w: size("kernel width", w.kernel)?,
            stride_h: size("stride", h.stride)?,
            stride_w: size("stride", w.stride)?,
            dilation_h: size("dilation", h.dilation)?,
            dilation_w: size("dilation", w.dilation)?,
            lead_h: size("padding", h.lead())?,
            lead_w: size("padding", w.lead())?,
            src_first_h,
            src_first_w,
            src_len_h,
            src_len_w,
            padding_mode: mode_code(geometry.padding_mode),
            has_bias: u32::from(has_bias),
            padded_h: padded(h)?,
            padded_w: padded(w)?,
            _pad0: 0,
        })
    }
}

/// What one dispatch computes: its block of the tensors and its slice of the
/// work. Built from a chunk, then narrowed with the `with_*` setters.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub(crate) struct DispatchParams {
    pub batch: u32,
    pub in_channels: u32,
    pub out_channels: u32,
    pub in_c_begin: u32,
    pub out_c_begin: u32,
    pub accumulate: u32,
    pub total: u32,
    pub splits: u32,
    pub split_len: u32,
    pub row_len: u32,
    pub slice_begin: u32,
    pub slice_end: u32,
    pub inner_begin: u32,
    pub inner_end: u32,
    pub result_offset: u32,
    pub out_row_len: u32,
}

impl DispatchParams {
    /// The block of `chunk`, adding onto earlier results when it does.
    pub(crate) fn for_chunk(chunk: &Chunk) -> Result<Self> {
        Ok(Self {
            batch: to_u32("batch block", chunk.batch.len())?,
            in_channels: to_u32("input channel block", chunk.in_channels.len())?,
            out_channels: to_u32("output channel block", chunk.out_channels.len())?,
            in_c_begin: to_u32("input channel", chunk.in_channels.start)?,
            out_c_begin: to_u32("output channel", chunk.out_channels.start)?,
            accumulate: u32::from(chunk.accumulate),
            ..Self::zeroed()
        })
    }

    /// What the shader counts in `total` (invocations, rows or workgroups).
    pub(crate) fn with_total(self, total: usize) -> Result<Self> {
        Ok(Self {
            total: to_u32("invocations of one dispatch", total)?,
            ..self
        })
    }

    /// Add onto what is stored (or not).
    pub(crate) fn with_accumulate(self, accumulate: bool) -> Self {
        Self {
            accumulate: u32::from(accumulate),
            ..self
        }
    }

    /// The slice of the reduction this dispatch adds.
    pub(crate) fn with_slice(self, slice: &Range<usize>) -> Result<Self> {
        Ok(Self {
            slice_begin: to_u32("reduction slice", slice.start)?,
            slice_end: to_u32("reduction slice", slice.end)?,
            ..self
        })
    }

    /// The slice of the innermost loop.
    pub(crate) fn with_inner(self, inner: &Range<usize>) -> Result<Self> {
        Ok(Self {
            inner_begin: to_u32("kernel column slice", inner.start)?,
            inner_end: to_u32("kernel column slice", inner.end)?,
            ..self
        })
    }

    /// `splits` blocks of `split_len` positions.
    pub(crate) fn with_splits(self, splits: usize, split_len: usize) -> Result<Self> {
        Ok(Self {
            splits: to_u32("position blocks", splits)?,
            split_len: to_u32("positions per block", split_len)?,
            ..self
        })
    }

    /// Where a reduction writes its first result.
    pub(crate) fn with_result_offset(self, offset: usize) -> Result<Self> {
        Ok(Self {
            result_offset: to_u32("result offset", offset)?,
            ..self
        })
    }

    /// Row length of the blocked weight gradient's grad_output rows.
    pub(crate) fn with_out_row_len(self, row_len: usize) -> Result<Self> {
        Ok(Self {
            out_row_len: to_u32("grad_output row length", row_len)?,
            ..self
        })
    }

    /// Row length of the blocked kernel's padded input copy.
    pub(crate) fn with_row_len(self, row_len: usize) -> Result<Self> {
        Ok(Self {
            row_len: to_u32("padded row length", row_len)?,
            ..self
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::runtime::registry::tests::assert_mirrors;

    /// Field names of a struct, from its `Debug` output: the Rust side of the
    /// comparison, so that a field added on one side only is caught.
    fn debug_fields(debug: &str) -> Vec<String> {
        let inner = &debug[debug.find('{').unwrap() + 1..debug.rfind('}').unwrap()];
        inner
            .split(',')
            .filter_map(|f| f.split(':').next())
            .map(|f| f.trim().to_string())
            .filter(|f| !f.is_empty())
            .collect()
    }

    #[test]
    fn uniform_blocks_mirror_the_wgsl_structs() {
        let source = include_str!("../../../shaders/common.wgsl");
        let conv = debug_fields(&format!("{:?}", ConvParams::zeroed()));
        let conv: Vec<&str> = conv.iter().map(String::as_str).collect();
        assert_mirrors::<ConvParams>(source, "ConvParams", &conv);
        let dispatch = debug_fields(&format!("{:?}", DispatchParams::zeroed()));
        let dispatch: Vec<&str> = dispatch.iter().map(String::as_str).collect();
        assert_mirrors::<DispatchParams>(source, "DispatchParams", &dispatch);
    }

    #[test]
    fn mode_codes_match_wgsl_constants() {
        let source = include_str!("../../../shaders/common.wgsl");
        for (mode, name) in [
            (PaddingMode::Zeros, "MODE_ZEROS"),
            (PaddingMode::Reflect, "MODE_REFLECT"),
            (PaddingMode::Replicate, "MODE_REPLICATE"),
            (PaddingMode::Circular, "MODE_CIRCULAR"),
        ] {
            let decl = format!("const {name}: u32 = {}u;", mode_code(mode));
            assert!(source.contains(&decl), "missing `{decl}` in the shader");
        }
    }

    #[test]
    fn sizes_past_32_bits_are_errors() {
        assert!(to_u32("x", u32::MAX as usize).is_ok());
        let err = to_u32("invocations of one dispatch", u32::MAX as usize + 1).unwrap_err();
        assert!(matches!(err, Conv2dError::ValueTooLarge { .. }), "{err}");
    }
}
