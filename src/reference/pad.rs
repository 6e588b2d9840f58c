//! Explicit padding, as `F.pad(input, pads, mode)` produces it.

use crate::config::PaddingMode;
use crate::dtype::DType;
use crate::error::Result;
use crate::geometry::{Axis, Conv2dGeometry};
use crate::tensor::{checked_numel, try_filled, try_with_capacity};

/// A padded `(N, C, Hp, Wp)` tensor, in `f64`.
pub struct Padded {
    /// Row-major values.
    pub data: Vec<f64>,
    /// Padded height.
    pub height: usize,
    /// Padded width.
    pub width: usize,
}

/// Pads (and, for negative padding, first crops) every `(n, c)` plane of `input`.
///
/// `input` is the `(N, C, H, W)` data described by `geometry`. The padded copy
/// is allocated fallibly (see [`padded_len`]).
pub fn pad(input: &[f64], geometry: &Conv2dGeometry) -> Result<Padded> {
    let mut data = try_with_capacity("padded input (f64)", padded_len(geometry))?;
    let rows = source_map(&geometry.height, geometry.padding_mode)?;
    let cols = source_map(&geometry.width, geometry.padding_mode)?;
    let (h, w) = (geometry.height.input, geometry.width.input);
    let planes = geometry.batch * geometry.in_channels;
    // Indexed, not chunked: a plane may be empty (H or W of 0, with padding).
    for p in 0..planes {
        let plane = &input[p * h * w..(p + 1) * h * w];
        for row in &rows {
            for col in &cols {
                data.push(match (row, col) {
                    (Some(r), Some(c)) => plane[r * w + c],
                    _ => 0.0,
                });
            }
        }
    }
    Ok(Padded {
        data,
        height: rows.len(),
        width: cols.len(),
    })
}

/// Elements of the padded copy of the whole input, `usize::MAX` when that
/// overflows (the allocation then fails cleanly).
pub fn padded_len(geometry: &Conv2dGeometry) -> usize {
    let side = |axis: &Axis| usize::try_from(axis.padded().max(0)).unwrap_or(usize::MAX);
    checked_numel(&[
        geometry.batch,
        geometry.in_channels,
        side(&geometry.height),
        side(&geometry.width),
    ])
    .unwrap_or(usize::MAX)
}

/// Adds every padded position's value into the input position it was copied
/// from: the gradient of [`pad`], accumulating as PyTorch's pad backward does.
pub fn unpad_accumulate(padded: &Padded, geometry: &Conv2dGeometry) -> Result<Vec<f64>> {
    unpad_with(padded, geometry, |a, b| a + b)
}

/// [`unpad_accumulate`] with `add` summing each copy into its input position,
/// in row-major order of the padded positions.
fn unpad_with(
    padded: &Padded,
    geometry: &Conv2dGeometry,
    add: impl Fn(f64, f64) -> f64,
) -> Result<Vec<f64>> {
    let rows = source_map(&geometry.height, geometry.padding_mode)?;
    let cols = source_map(&geometry.width, geometry.padding_mode)?;
    let (h, w) = (geometry.height.input, geometry.width.input);
    let planes = geometry.batch * geometry.in_channels;
    let mut input = try_filled("grad_input (f64)", planes * h * w, 0.0)?;
    let padded_plane = rows.len() * cols.len();
    for (plane, grads) in input
        .chunks_exact_mut((h * w).max(1))
        .zip(padded.data.chunks_exact(padded_plane.max(1)))
    {
        for (p, row) in rows.iter().enumerate() {
            for (q, col) in cols.iter().enumerate() {
                if let (Some(r), Some(c)) = (row, col) {
                    plane[r * w + c] = add(plane[r * w + c], grads[p * cols.len() + q]);
                }
            }
        }
    }
    Ok(input)
}

/// The gradient of [`pad`] for a 16-bit `dtype`, as PyTorch computes it: the
/// padded gradient is first rounded to the dtype (PyTorch's convolution
/// backward hands it over in the dtype), then the copies are added into the
/// input one at a time, each sum in `f32` rounded to the dtype (`c10::Half` and
/// `c10::BFloat16` arithmetic), in PyTorch's order: for reflect and replicate
/// the padded positions in row-major order (ATen's `cpu_padding_backward`);
/// for circular, autograd undoing `F.pad`'s copies in reverse (bottom rows,
/// top rows, right columns, left columns, each from the padded tensor
/// itself). Zero padding has one copy per input element: its value, rounded.
pub fn unpad_rounded(padded: &Padded, geometry: &Conv2dGeometry, dtype: DType) -> Result<Vec<f64>> {
    let round = |v: f64| -> f32 {
        match dtype {
            DType::F16 => half::f16::from_f64(v).to_f32(),
            DType::BF16 => half::bf16::from_f64(v).to_f32(),
            DType::F32 => v as f32,
        }
    };
    let add = |a: f32, b: f32| dtype.round(a + b);
    let mut rounded = Padded {
        data: try_with_capacity("grad of the padded input (rounded)", padded.data.len())?,
        height: padded.height,
        width: padded.width,
    };
    rounded
        .data
        .extend(padded.data.iter().map(|&v| f64::from(round(v))));
    if geometry.padding_mode != PaddingMode::Circular {
        // Row-major over the padded positions, each sum in f32 rounded.
        return unpad_with(&rounded, geometry, |a, b| {
            f64::from(add(a as f32, b as f32))
        });
    }
    // Circular: undo the copies on each padded plane, then keep the window.
    let (hp, wp) = (rounded.height, rounded.width);
    let (h, w) = (&geometry.height, &geometry.width);
    let lead = |a: &Axis| a.pad_before.max(0) as usize;
    let (first_h, len_h) = h.source_window();
    let (first_w, len_w) = w.source_window();
    let (len_h, len_w) = (len_h.max(0) as usize, len_w.max(0) as usize);
    let (lead_h, lead_w) = (lead(h), lead(w));
    let (trail_h, trail_w) = (hp - lead_h - len_h, wp - lead_w - len_w);
    let planes = geometry.batch * geometry.in_channels;
    let mut input = try_filled("grad_input (f64)", planes * h.input * w.input, 0.0)?;
    for (plane, grads) in input
        .chunks_exact_mut((h.input * w.input).max(1))
        .zip(rounded.data.chunks_exact_mut((hp * wp).max(1)))
    {
        let mut g: Vec<f32> = grads.iter().map(|&v| v as f32).collect();
        // (destination, source) rows, then columns, in the order autograd
        // undoes them: bottom, top, right, left.
        let bottom = (0..trail_h).map(|j| (lead_h + len_h + j, lead_h + j));
        let top = (0..lead_h).map(|j| (j, len_h + j));
        for (dst, src) in bottom.chain(top) {
            for c in 0..wp {
                g[src * wp + c] = add(g[src * wp + c], g[dst * wp + c]);
                g[dst * wp + c] = 0.0;
            }
        }
        let right = (0..trail_w).map(|j| (lead_w + len_w + j, lead_w + j));
        let left = (0..lead_w).map(|j| (j, len_w + j));
        for (dst, src) in right.chain(left) {
            for r in 0..hp {
                g[r * wp + src] = add(g[r * wp + src], g[r * wp + dst]);
                g[r * wp + dst] = 0.0;
            }
        }
        for t in 0..len_h {
            for u in 0..len_w {
                plane[(first_h + t) * w.input + first_w + u] =
                    f64::from(g[(lead_h + t) * wp + lead_w + u]);
            }
        }
    }
    Ok(input)
}

/// For each padded position along one axis, the input index it copies, or
/// `None` for a zero. Built as PyTorch defines the pad: crop the negative
/// sides, then extend each side by the mode's rule.
fn source_map(axis: &Axis, mode: PaddingMode) -> Result<Vec<Option<usize>>> {
    let mut map = try_with_capacity(
        "padding index map",
        usize::try_from(axis.padded().max(0)).unwrap_or(usize::MAX),
    )?;
    let crop_front = (-axis.pad_before).max(0) as usize;
    let crop_back = (-axis.pad_after).max(0) as usize;
    let kept: Vec<usize> = (crop_front..axis.input - crop_back).collect();
    let front = axis.pad_before.max(0) as usize;
    let back = axis.pad_after.max(0) as usize;
    let n = kept.len();

    let before = (0..front).map(|k| {
        // k-th position to the left of the data, counted from the data outwards.
        let d = front - k;
        match mode {
            PaddingMode::Zeros => None,
            PaddingMode::Reflect => Some(kept[d]),
            PaddingMode::Replicate => Some(kept[0]),
            PaddingMode::Circular => Some(kept[n - d]),
        }
    });
    let after = (1..=back).map(|d| match mode {
        PaddingMode::Zeros => None,
        PaddingMode::Reflect => Some(kept[n - 1 - d]),
        PaddingMode::Replicate => Some(kept[n - 1]),
        PaddingMode::Circular => Some(kept[d - 1]),
    });
    map.extend(before.chain(kept.iter().map(|&i| Some(i))).chain(after));
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axis(input: usize, pad_before: i64, pad_after: i64) -> Axis {
        Axis {
            input,
            kernel: 1,
            stride: 1,
            dilation: 1,
            pad_before,
            pad_after,
            output: 0,
        }
    }

    fn map(input: usize, pads: (i64, i64), mode: PaddingMode) -> Vec<usize> {
        source_map(&axis(input, pads.0, pads.1), mode)
            .unwrap()
            .into_iter()
            .map(|i| i.unwrap())
            .collect()
    }

    #[test]
    fn index_maps_match_pytorch() {
        // The sequences verified against PyTorch 2.15 in the semantics reference, section 4.
        assert_eq!(
            map(5, (3, 3), PaddingMode::Reflect),
            [3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1]
        );
        assert_eq!(
            map(5, (3, 7), PaddingMode::Replicate),
            [0, 0, 0, 0, 1, 2, 3, 4, 4, 4, 4, 4, 4, 4, 4]
        );
        assert_eq!(
            map(5, (3, 5), PaddingMode::Circular),
            [2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
        );
        assert_eq!(map(5, (-1, 2), PaddingMode::Reflect), [1, 2, 3, 4, 3, 2]);
        assert_eq!(map(5, (-1, 2), PaddingMode::Circular), [1, 2, 3, 4, 1, 2]);
    }
}
