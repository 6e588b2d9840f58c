//! Explicit padding, as `F.pad(input, pads, mode)` produces it.

use crate::config::PaddingMode;
use crate::geometry::{Axis, Conv2dGeometry};

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
/// `input` is the `(N, C, H, W)` data described by `geometry`.
pub fn pad(input: &[f64], geometry: &Conv2dGeometry) -> Padded {
    let rows = source_map(&geometry.height, geometry.padding_mode);
    let cols = source_map(&geometry.width, geometry.padding_mode);
    let (h, w) = (geometry.height.input, geometry.width.input);
    let planes = geometry.batch * geometry.in_channels;
    let mut data = Vec::with_capacity(planes * rows.len() * cols.len());
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
    Padded {
        data,
        height: rows.len(),
        width: cols.len(),
    }
}

/// Adds every padded position's value into the input position it was copied
/// from: the gradient of [`pad`], accumulating as PyTorch's pad backward does.
pub fn unpad_accumulate(padded: &Padded, geometry: &Conv2dGeometry) -> Vec<f64> {
    let rows = source_map(&geometry.height, geometry.padding_mode);
    let cols = source_map(&geometry.width, geometry.padding_mode);
    let (h, w) = (geometry.height.input, geometry.width.input);
    let planes = geometry.batch * geometry.in_channels;
    let mut input = vec![0.0; planes * h * w];
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
    input
}

/// For each padded position along one axis, the input index it copies, or
/// `None` for a zero. Built as PyTorch defines the pad: crop the negative
/// sides, then extend each side by the mode's rule.
fn source_map(axis: &Axis, mode: PaddingMode) -> Vec<Option<usize>> {
    let crop_front = (-axis.pad_before).max(0) as usize;
    let crop_back = (-axis.pad_after).max(0) as usize;
    let kept: Vec<usize> = (crop_front..axis.input - crop_back).collect();
    let front = axis.pad_before.max(0) as usize;
    let back = axis.pad_after.max(0) as usize;
    let n = kept.len();

    let before: Vec<Option<usize>> = (0..front)
        .map(|k| {
            // k-th position to the left of the data, counted from the data outwards.
            let d = front - k;
            match mode {
                PaddingMode::Zeros => None,
                PaddingMode::Reflect => Some(kept[d]),
                PaddingMode::Replicate => Some(kept[0]),
                PaddingMode::Circular => Some(kept[n - d]),
            }
        })
        .collect();
    let after = (1..=back).map(|d| match mode {
        PaddingMode::Zeros => None,
        PaddingMode::Reflect => Some(kept[n - 1 - d]),
        PaddingMode::Replicate => Some(kept[n - 1]),
        PaddingMode::Circular => Some(kept[d - 1]),
    });
    before
        .into_iter()
        .chain(kept.iter().map(|&i| Some(i)))
        .chain(after)
        .collect()
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
