//! The uniform block every convolution kernel reads: the Rust twin of the
//! WGSL `ConvParams` struct in `shaders/conv2d_direct.wgsl`.

use bytemuck::{Pod, Zeroable};

use super::plan::Chunk;
use crate::config::PaddingMode;
use crate::geometry::{Axis, Conv2dGeometry};

/// Geometry of one dispatch, field by field as in WGSL. All `u32`, so the
/// layout is the same under `#[repr(C)]` and WGSL's uniform rules (checked
/// by a test against naga's layout).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct ConvParams {
    pub batch: u32,
    pub in_channels: u32,
    pub in_h: u32,
    pub in_w: u32,
    pub out_channels: u32,
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
    pub total: u32,
    pub in_c_begin: u32,
    pub out_c_begin: u32,
    pub accumulate: u32,
    pub padded_h: u32,
    pub padded_w: u32,
    pub splits: u32,
    pub split_len: u32,
    pub row_len: u32,
    pub slice_begin: u32,
    pub slice_end: u32,
    pub inner_begin: u32,
    pub inner_end: u32,
    pub result_offset: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}

/// The uniform block of `shaders/sgd.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub struct SgdParams {
    pub lr: f32,
    pub len: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}

/// The shader's numbering of the padding modes (`MODE_*` constants in WGSL).
pub fn mode_code(mode: PaddingMode) -> u32 {
    match mode {
        PaddingMode::Zeros => 0,
        PaddingMode::Reflect => 1,
        PaddingMode::Replicate => 2,
        PaddingMode::Circular => 3,
    }
}

impl ConvParams {
    /// The parameters of one chunk of `geometry`. Callers have checked that
    /// every size fits in `u32` (see `buffers::check_fits` and `plan`).
    pub fn new(geometry: &Conv2dGeometry, chunk: &Chunk, has_bias: bool) -> Self {
        let [_, _, out_h, out_w] = geometry.output_shape_4d();
        let (batch, out_channels) = (chunk.batch.len(), chunk.out_channels.len());
        let (h, w) = (&geometry.height, &geometry.width);
        let window = |axis: &Axis| {
            let (first, len) = axis.source_window();
            (first as u32, len.max(0) as u32)
        };
        let (src_first_h, src_len_h) = window(h);
        let (src_first_w, src_len_w) = window(w);
        Self {
            batch: batch as u32,
            in_channels: chunk.in_channels.len() as u32,
            in_h: h.input as u32,
            in_w: w.input as u32,
            out_channels: out_channels as u32,
            out_h: out_h as u32,
            out_w: out_w as u32,
            groups: geometry.groups as u32,
            in_per_group: geometry.in_channels_per_group() as u32,
            out_per_group: geometry.out_channels_per_group() as u32,
            kernel_h: h.kernel as u32,
            kernel_w: w.kernel as u32,
            stride_h: h.stride as u32,
            stride_w: w.stride as u32,
            dilation_h: h.dilation as u32,
            dilation_w: w.dilation as u32,
            lead_h: h.lead() as u32,
            lead_w: w.lead() as u32,
            src_first_h,
            src_first_w,
            src_len_h,
            src_len_w,
            padding_mode: mode_code(geometry.padding_mode),
            has_bias: has_bias as u32,
            total: chunk.output_len(geometry) as u32,
            in_c_begin: chunk.in_channels.start as u32,
            out_c_begin: chunk.out_channels.start as u32,
            accumulate: chunk.accumulate as u32,
            padded_h: h.padded() as u32,
            padded_w: w.padded() as u32,
            splits: 0,
            split_len: 0,
            row_len: 0,
            slice_begin: 0,
            slice_end: 0,
            inner_begin: 0,
            inner_end: 0,
            result_offset: 0,
            _pad0: 0,
            _pad1: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offsets of the members of struct `name` as naga lays out the WGSL struct.
    fn wgsl_layout(source: &str, name: &str) -> (Vec<(String, u32)>, u32) {
        let module = naga::front::wgsl::parse_str(source).expect("shader parses");
        let (_, ty) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some(name))
            .expect("shader declares the struct");
        match &ty.inner {
            naga::TypeInner::Struct { members, span } => (
                members
                    .iter()
                    .map(|m| (m.name.clone().unwrap_or_default(), m.offset))
                    .collect(),
                *span,
            ),
            other => panic!("ConvParams is not a struct: {other:?}"),
        }
    }

    #[test]
    fn rust_struct_mirrors_wgsl_struct() {
        let (members, span) = wgsl_layout(crate::gpu::kernels::DIRECT.source, "ConvParams");
        assert_eq!(span as usize, std::mem::size_of::<ConvParams>());
        let rust: Vec<(&str, usize)> = vec![
            ("batch", std::mem::offset_of!(ConvParams, batch)),
            ("in_channels", std::mem::offset_of!(ConvParams, in_channels)),
            ("in_h", std::mem::offset_of!(ConvParams, in_h)),
            ("in_w", std::mem::offset_of!(ConvParams, in_w)),
            (
                "out_channels",
                std::mem::offset_of!(ConvParams, out_channels),
            ),
            ("out_h", std::mem::offset_of!(ConvParams, out_h)),
            ("out_w", std::mem::offset_of!(ConvParams, out_w)),
            ("groups", std::mem::offset_of!(ConvParams, groups)),
            (
                "in_per_group",
                std::mem::offset_of!(ConvParams, in_per_group),
            ),
            (
                "out_per_group",
                std::mem::offset_of!(ConvParams, out_per_group),
            ),
            ("kernel_h", std::mem::offset_of!(ConvParams, kernel_h)),
            ("kernel_w", std::mem::offset_of!(ConvParams, kernel_w)),
            ("stride_h", std::mem::offset_of!(ConvParams, stride_h)),
            ("stride_w", std::mem::offset_of!(ConvParams, stride_w)),
            ("dilation_h", std::mem::offset_of!(ConvParams, dilation_h)),
            ("dilation_w", std::mem::offset_of!(ConvParams, dilation_w)),
            ("lead_h", std::mem::offset_of!(ConvParams, lead_h)),
            ("lead_w", std::mem::offset_of!(ConvParams, lead_w)),
            ("src_first_h", std::mem::offset_of!(ConvParams, src_first_h)),
            ("src_first_w", std::mem::offset_of!(ConvParams, src_first_w)),
            ("src_len_h", std::mem::offset_of!(ConvParams, src_len_h)),
            ("src_len_w", std::mem::offset_of!(ConvParams, src_len_w)),
            (
                "padding_mode",
                std::mem::offset_of!(ConvParams, padding_mode),
            ),
            ("has_bias", std::mem::offset_of!(ConvParams, has_bias)),
            ("total", std::mem::offset_of!(ConvParams, total)),
            ("in_c_begin", std::mem::offset_of!(ConvParams, in_c_begin)),
            ("out_c_begin", std::mem::offset_of!(ConvParams, out_c_begin)),
            ("accumulate", std::mem::offset_of!(ConvParams, accumulate)),
            ("padded_h", std::mem::offset_of!(ConvParams, padded_h)),
            ("padded_w", std::mem::offset_of!(ConvParams, padded_w)),
            ("splits", std::mem::offset_of!(ConvParams, splits)),
            ("split_len", std::mem::offset_of!(ConvParams, split_len)),
            ("row_len", std::mem::offset_of!(ConvParams, row_len)),
            ("slice_begin", std::mem::offset_of!(ConvParams, slice_begin)),
            ("slice_end", std::mem::offset_of!(ConvParams, slice_end)),
            ("inner_begin", std::mem::offset_of!(ConvParams, inner_begin)),
            ("inner_end", std::mem::offset_of!(ConvParams, inner_end)),
            (
                "result_offset",
                std::mem::offset_of!(ConvParams, result_offset),
            ),
            ("_pad0", std::mem::offset_of!(ConvParams, _pad0)),
            ("_pad1", std::mem::offset_of!(ConvParams, _pad1)),
        ];
        let wgsl: Vec<(&str, usize)> = members
            .iter()
            .map(|(n, o)| (n.as_str(), *o as usize))
            .collect();
        assert_eq!(rust, wgsl, "field names, order and offsets must agree");
        assert_eq!(
            std::mem::size_of::<ConvParams>() % 16,
            0,
            "uniform blocks are 16-byte aligned"
        );
    }

    #[test]
    fn sgd_params_mirror_wgsl() {
        let (members, span) = wgsl_layout(crate::gpu::kernels::SGD.source, "SgdParams");
        assert_eq!(span as usize, std::mem::size_of::<SgdParams>());
        let rust = vec![
            ("lr", std::mem::offset_of!(SgdParams, lr)),
            ("len", std::mem::offset_of!(SgdParams, len)),
            ("_pad0", std::mem::offset_of!(SgdParams, _pad0)),
            ("_pad1", std::mem::offset_of!(SgdParams, _pad1)),
        ];
        let wgsl: Vec<(&str, usize)> = members
            .iter()
            .map(|(n, o)| (n.as_str(), *o as usize))
            .collect();
        assert_eq!(rust, wgsl);
    }

    #[test]
    fn mode_codes_match_wgsl_constants() {
        let source = crate::gpu::kernels::DIRECT.source;
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
}
