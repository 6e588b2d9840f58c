//! Gradients of the convolution, in `f64`: PyTorch's `convolution_backward`
//! followed by the padding's backward.

use super::pad::{Padded, pad, unpad_accumulate, unpad_rounded};
use crate::dtype::DType;
use crate::error::Result;
use crate::geometry::Conv2dGeometry;
use crate::tensor::try_filled;

/// `(grad_input, grad_weight, grad_bias)` of `L = Σ grad_output · conv(input)`.
///
/// The weight and bias gradients correlate the explicitly padded input with the
/// output gradient; the input gradient is scattered onto the padded input and
/// then added back into the positions the padding copied from (for a 16-bit
/// `dtype`, rounding as PyTorch does: [`unpad_rounded`]).
pub fn backward(
    geometry: &Conv2dGeometry,
    input: &[f64],
    weight: &[f64],
    grad_output: &[f64],
    dtype: DType,
) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let [batch, out_channels, out_h, out_w] = geometry.output_shape_4d();
    let cg_in = geometry.in_channels_per_group();
    let cg_out = geometry.out_channels_per_group().max(1);
    let (kh, kw) = (geometry.height.kernel, geometry.width.kernel);
    let (sh, sw) = (geometry.height.stride, geometry.width.stride);
    let (dh, dw) = (geometry.height.dilation, geometry.width.dilation);

    let padded = pad(input, geometry)?;
    let (hp, wp) = (padded.height, padded.width);
    let mut grad_padded = Padded {
        data: try_filled("grad of the padded input (f64)", padded.data.len(), 0.0)?,
        height: hp,
        width: wp,
    };
    let mut grad_weight = try_filled("grad_weight (f64)", weight.len(), 0.0)?;
    let mut grad_bias = try_filled("grad_bias (f64)", geometry.out_channels, 0.0)?;

    for n in 0..batch {
        for o in 0..out_channels {
            let group = o / cg_out;
            for i in 0..out_h {
                for j in 0..out_w {
                    let g = grad_output[((n * out_channels + o) * out_h + i) * out_w + j];
                    grad_bias[o] += g;
                    for c in 0..cg_in {
                        let plane = (n * geometry.in_channels + group * cg_in + c) * hp * wp;
                        for a in 0..kh {
                            let row = plane + (i * sh + a * dh) * wp;
                            for e in 0..kw {
                                let at = row + j * sw + e * dw;
                                let k = ((o * cg_in + c) * kh + a) * kw + e;
                                grad_weight[k] += g * padded.data[at];
                                grad_padded.data[at] += g * weight[k];
                            }
                        }
                    }
                }
            }
        }
    }
    let grad_input = if dtype.is_half() {
        unpad_rounded(&grad_padded, geometry, dtype)?
    } else {
        unpad_accumulate(&grad_padded, geometry)?
    };
    Ok((grad_input, grad_weight, grad_bias))
}

#[cfg(test)]
mod tests {
    use rand::{RngExt, SeedableRng, rngs::StdRng};

    use super::*;
    use crate::config::{Conv2dConfig, Padding, PaddingMode};
    use crate::reference::forward_f64;

    /// `Σ g · conv(x, w, b)` in f64.
    fn loss(g: &Conv2dGeometry, x: &[f64], w: &[f64], b: &[f64], go: &[f64]) -> f64 {
        forward_f64(g, x, w, Some(b))
            .unwrap()
            .iter()
            .zip(go)
            .map(|(y, d)| y * d)
            .sum()
    }

    /// Central differences of the loss along every coordinate of `v`. The loss is
    /// linear in each argument, so the difference quotient is exact up to rounding.
    fn numeric(v: &[f64], mut f: impl FnMut(&[f64]) -> f64) -> Vec<f64> {
        let h = 1e-3;
        (0..v.len())
            .map(|k| {
                let mut plus = v.to_vec();
                plus[k] += h;
                let mut minus = v.to_vec();
                minus[k] -= h;
                (f(&plus) - f(&minus)) / (2.0 * h)
            })
            .collect()
    }

    fn assert_close(what: &str, analytic: &[f64], numeric: &[f64]) {
        let scale = numeric.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for (k, (a, n)) in analytic.iter().zip(numeric).enumerate() {
            assert!(
                (a - n).abs() <= 1e-9 * scale,
                "{what}[{k}]: analytic {a}, numeric {n}"
            );
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = StdRng::seed_from_u64(42);
        let mut checked = 0;
        while checked < 40 {
            let groups = rng.random_range(1..3);
            let mode = PaddingMode::ALL[checked % 4];
            let same = rng.random_bool(0.3);
            let config = Conv2dConfig::new(
                groups * rng.random_range(1..3),
                groups * rng.random_range(1..3),
                (rng.random_range(1..4), rng.random_range(1..4)),
            )
            .with_stride(if same {
                (1, 1)
            } else {
                (rng.random_range(1..3), rng.random_range(1..3))
            })
            .with_dilation((rng.random_range(1..3), rng.random_range(1..3)))
            .with_padding(if same {
                Padding::Same
            } else {
                Padding::from((rng.random_range(0..3), rng.random_range(0..3)))
            })
            .with_groups(groups)
            .with_padding_mode(mode);
            let shape = [
                rng.random_range(1..3),
                config.in_channels,
                rng.random_range(3..7),
                rng.random_range(3..7),
            ];
            let Ok(g) = Conv2dGeometry::new(&config, &shape) else {
                continue;
            };
            let mut draw =
                |n: usize| -> Vec<f64> { (0..n).map(|_| rng.random_range(-1.0..1.0)).collect() };
            let x = draw(shape.iter().product());
            let w = draw(config.weight_shape().iter().product());
            let b = draw(config.out_channels);
            let go = draw(g.output_shape_4d().iter().product());
            let (gx, gw, gb) = backward(&g, &x, &w, &go, DType::F32).unwrap();
            assert_close(
                "grad_input",
                &gx,
                &numeric(&x, |x| loss(&g, x, &w, &b, &go)),
            );
            assert_close(
                "grad_weight",
                &gw,
                &numeric(&w, |w| loss(&g, &x, w, &b, &go)),
            );
            assert_close("grad_bias", &gb, &numeric(&b, |b| loss(&g, &x, &w, b, &go)));
            checked += 1;
        }
    }

    #[test]
    fn pad_backward_counts_match_pytorch() {
        // All-ones upstream through a (3, 3) pad of a length-5 row, 1x1 kernel
        // [verified 2.15]: reflect [1,3,3,3,1], replicate [4,1,1,1,4], circular [2,2,3,2,2].
        for (mode, want) in [
            (PaddingMode::Reflect, [1.0, 3.0, 3.0, 3.0, 1.0]),
            (PaddingMode::Replicate, [4.0, 1.0, 1.0, 1.0, 4.0]),
            (PaddingMode::Circular, [2.0, 2.0, 3.0, 2.0, 2.0]),
        ] {
            let config = Conv2dConfig::new(1, 1, 1)
                .with_padding((0, 3))
                .with_padding_mode(mode);
            let g = Conv2dGeometry::new(&config, &[1, 1, 1, 5]).unwrap();
            let (gx, _, _) = backward(&g, &[0.0; 5], &[1.0], &[1.0; 11], DType::F32).unwrap();
            assert_eq!(gx, want, "{mode}");
        }
    }
}
