//! Explicit padding, as `F.pad(input, pads, mode)` produces it.

use crate::config::PaddingMode;
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
    for plane in input.chunks_exact(h * w).take(planes) {
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
                    plane[r * w + c] += grads[p * cols.len() + q];
                }
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
