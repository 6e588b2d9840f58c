//! The fp32 error bound of Winograd F(m×m, 3×3), per output element, derived
//! the way the direct kernels' bound is (Higham's γ_n over the longest chain
//! of roundings) but over what Winograd actually sums: every product of an
//! input value of the output's tile window with a tap, weighted by the
//! transforms' absolute coefficients. Written from Lavin & Gray's matrices,
//! independently of the crate's kernels.

use wgpu_conv2d::{Conv2d, Conv2dGeometry, PaddingMode, Tensor};

/// A matrix, by rows.
type Matrix = Vec<Vec<f64>>;

/// (Bᵀ, G, Aᵀ) of F(2×2, 3×3) and F(4×4, 3×3).
fn transforms(m: usize) -> (Matrix, Matrix, Matrix) {
    let rows = |r: &[&[f64]]| r.iter().map(|row| row.to_vec()).collect::<Vec<_>>();
    if m == 2 {
        (
            rows(&[
                &[1., 0., -1., 0.],
                &[0., 1., 1., 0.],
                &[0., -1., 1., 0.],
                &[0., 1., 0., -1.],
            ]),
            rows(&[
                &[1., 0., 0.],
                &[0.5, 0.5, 0.5],
                &[0.5, -0.5, 0.5],
                &[0., 0., 1.],
            ]),
            rows(&[&[1., 1., 1., 0.], &[0., 1., -1., -1.]]),
        )
    } else {
        let s = 1.0 / 6.0;
        rows_f4(s)
    }
}

fn rows_f4(s: f64) -> (Matrix, Matrix, Matrix) {
    (
        vec![
            vec![4., 0., -5., 0., 1., 0.],
            vec![0., -4., -4., 1., 1., 0.],
            vec![0., 4., -4., -1., 1., 0.],
            vec![0., -2., -1., 2., 1., 0.],
            vec![0., 2., -1., -2., 1., 0.],
            vec![0., 4., 0., -5., 0., 1.],
        ],
        vec![
            vec![0.25, 0., 0.],
            vec![-s, -s, -s],
            vec![-s, s, -s],
            vec![1. / 24., 1. / 12., s],
            vec![1. / 24., -1. / 12., s],
            vec![0., 0., 1.],
        ],
        vec![
            vec![1., 1., 1., 1., 1., 0.],
            vec![0., 1., -1., 2., -2., 0.],
            vec![0., 1., 1., 4., 4., 0.],
            vec![0., 1., -1., 8., -8., 1.],
        ],
    )
}

/// `|x|` of every plane padded as the layer pads it (negative padding crops
/// first; the mode then pads the rest), in f64.
fn padded_abs(g: &Conv2dGeometry, input: &Tensor) -> (Vec<f64>, usize, usize) {
    let (h, w) = (g.height(), g.width());
    let map = |p: i64, axis: &wgpu_conv2d::Axis| -> Option<usize> {
        let first = (-axis.pad_before()).max(0);
        let len = axis.input() as i64 - first - (-axis.pad_after()).max(0);
        let mut t = p - axis.pad_before().max(0);
        if t < 0 || t >= len {
            match g.padding_mode() {
                PaddingMode::Zeros => return None,
                PaddingMode::Reflect => t = if t < 0 { -t } else { 2 * (len - 1) - t },
                PaddingMode::Replicate => t = t.clamp(0, len - 1),
                PaddingMode::Circular => t = if t < 0 { t + len } else { t - len },
            }
        }
        Some((first + t) as usize)
    };
    let (ph, pw) = (h.padded() as usize, w.padded() as usize);
    let planes = g.batch() * g.in_channels();
    let mut out = vec![0.0; planes * ph * pw];
    for plane in 0..planes {
        for y in 0..ph {
            let Some(sy) = map(y as i64, h) else { continue };
            for x in 0..pw {
                if let Some(sx) = map(x as i64, w) {
                    out[(plane * ph + y) * pw + x] =
                        f64::from(input.data()[(plane * h.input() + sy) * w.input() + sx].abs());
                }
            }
        }
    }
    (out, ph, pw)
}

/// The bound on `|winograd(x) − conv(x)|` for every output of `layer` on
/// `input`, whichever tile (2 or 4) the kernel picks: `(T + 2)·2⁻²³·(S + |b|)`
/// with `S = Σ_c Σ_{r,s,u,v} |g_rs| |x_uv| w(i,r,u) w(j,s,v)` over the output's
/// tile window, `w(i,r,u) = Σ_a |Aᵀ_ia| |G_ar| |Bᵀ_au|` (the transforms'
/// coefficients of that product in output (i, j) of the tile), and `T` the
/// roundings on the longest chain: the channel sum, four transform sums of
/// up to α terms, and the products and inexact constants along the way.
pub fn winograd_bound(layer: &Conv2d, input: &Tensor) -> Tensor {
    let g = Conv2dGeometry::new(layer.config(), input.shape()).unwrap();
    let (xs, ph, pw) = padded_abs(&g, input);
    let [n_batch, k_all, oh, ow] = g.output_shape_4d();
    let (cpg, kpg) = (g.in_channels_per_group(), g.out_channels_per_group());
    let weight = layer.weight().data();
    let mut bound = vec![0.0f64; n_batch * k_all * oh * ow];
    for m in [2, 4] {
        let (bt, gm, at) = transforms(m);
        let alpha = m + 2;
        // w1[i][r][u]
        let w1 = |i: usize, r: usize, u: usize| -> f64 {
            (0..alpha)
                .map(|a| at[i][a].abs() * gm[a][r].abs() * bt[a][u].abs())
                .sum()
        };
        let w1s: Vec<f64> = (0..m)
            .flat_map(|i| (0..3).flat_map(move |r| (0..alpha).map(move |u| (i, r, u))))
            .map(|(i, r, u)| w1(i, r, u))
            .collect();
        let w1at = |i: usize, r: usize, u: usize| w1s[(i * 3 + r) * alpha + u];
        let terms = cpg + 4 * alpha + 12;
        let mut mag = vec![0.0f64; bound.len()];
        for n in 0..n_batch {
            for c in 0..g.in_channels() {
                let group = c / cpg;
                let plane = &xs[(n * g.in_channels() + c) * ph * pw..][..ph * pw];
                for ty in (0..oh).step_by(m) {
                    for tx in (0..ow).step_by(m) {
                        let x = |u: usize, v: usize| {
                            let (y, xx) = (ty + u, tx + v);
                            if y < ph && xx < pw {
                                plane[y * pw + xx]
                            } else {
                                0.0
                            }
                        };
                        // q[i][j][r][s] = Σ_{u,v} |x_uv| w(i,r,u) w(j,s,v)
                        let mut q = vec![0.0; m * m * 9];
                        for i in 0..m {
                            for r in 0..3 {
                                let row: Vec<f64> = (0..alpha)
                                    .map(|v| (0..alpha).map(|u| w1at(i, r, u) * x(u, v)).sum())
                                    .collect();
                                for j in 0..m {
                                    for s in 0..3 {
                                        q[((i * m + j) * 3 + r) * 3 + s] =
                                            (0..alpha).map(|v| row[v] * w1at(j, s, v)).sum();
                                    }
                                }
                            }
                        }
                        for kk in 0..kpg {
                            let k = group * kpg + kk;
                            let taps = &weight[(k * cpg + c % cpg) * 9..][..9];
                            for i in 0..m.min(oh - ty) {
                                for j in 0..m.min(ow - tx) {
                                    let s: f64 = (0..9)
                                        .map(|t| f64::from(taps[t].abs()) * q[(i * m + j) * 9 + t])
                                        .sum();
                                    mag[((n * k_all + k) * oh + ty + i) * ow + tx + j] += s;
                                }
                            }
                        }
                    }
                }
            }
        }
        for (at, b) in bound.iter_mut().enumerate() {
            let k = (at / (oh * ow)) % k_all;
            let bias = layer.bias().map_or(0.0, |b| f64::from(b.data()[k].abs()));
            let tol = (terms as f64 + 2.0) * f64::from(f32::EPSILON) * (mag[at] + bias);
            *b = b.max(tol);
        }
    }
    Tensor::new(g.output_shape(), bound.iter().map(|&b| b as f32).collect()).unwrap()
}

/// The normwise check beside the per-element bound: Winograd's largest error
/// over an output, in units of `2⁻²³ · max Σ|w·x|` (the largest output
/// magnitude of the case). Measured up to 14 over the randomized suite (the
/// direct kernel: up to 18 on wide layers), so 32 leaves room for other
/// drivers' rounding while staying about a thousand times tighter than the
/// per-element bound on the same cases.
pub const NORMWISE_UNITS: f64 = 32.0;

/// Asserts Winograd's `got` is within [`NORMWISE_UNITS`] of `want` normwise.
pub fn assert_normwise(what: &str, got: &Tensor, want: &Tensor, magnitude: &Tensor) {
    let units = super::normwise_error(got, want, magnitude);
    assert!(
        units <= NORMWISE_UNITS,
        "{what}: normwise error {units:.1} units of 2^-23·max Σ|w·x| exceeds {NORMWISE_UNITS}"
    );
}

/// κ: the largest `Σ_u w(i,r,u)` over the outputs `i` of a tile and taps
/// `r`, over both tile sizes: how far the transforms amplify one tap's
/// products along one axis.
pub fn growth() -> f64 {
    let mut kappa = 0.0f64;
    for m in [2, 4] {
        let (bt, gm, at) = transforms(m);
        // Σ_u |Bᵀ_au| per row a.
        let row: Vec<f64> = bt.iter().map(|r| r.iter().map(|b| b.abs()).sum()).collect();
        for out in &at {
            let largest = (0..3)
                .map(|r| {
                    (0..m + 2)
                        .map(|a| out[a].abs() * gm[a][r].abs() * row[a])
                        .sum()
                })
                .fold(0.0f64, f64::max);
            kappa = kappa.max(largest);
        }
    }
    kappa
}

/// The normwise form of [`winograd_bound`] that `Precision::High` documents:
/// every output within `(C/groups + 38)·2⁻²³·(κ²·max_k Σ|w_k|·max|x| + max|b|)`
/// (the per-output magnitude `S` is at most `κ²·Σ|w_k|·max|x|`; the terms are
/// the channel sum's, `4α + 12` with α = 6, and 2).
pub fn normwise_bound(layer: &Conv2d, input: &Tensor) -> f32 {
    let config = layer.config();
    let cpg = config.in_channels / config.groups;
    let weight = layer.weight().data();
    let per_channel = weight.len() / config.out_channels;
    let l1 = weight
        .chunks(per_channel)
        .map(|w| w.iter().map(|v| f64::from(v.abs())).sum::<f64>())
        .fold(0.0, f64::max);
    let largest = |v: &[f32]| v.iter().fold(0.0f64, |a, &x| a.max(f64::from(x.abs())));
    let x = largest(input.data());
    let b = layer.bias().map_or(0.0, |b| largest(b.data()));
    let kappa = growth();
    ((cpg as f64 + 38.0) * f64::from(f32::EPSILON) * (kappa * kappa * l1 * x + b)) as f32
}
