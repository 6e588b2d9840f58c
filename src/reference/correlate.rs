//! Cross-correlation of a padded input with the weight, accumulated in `f64`.

use super::pad::Padded;
use crate::geometry::Conv2dGeometry;

/// Writes `out[n,o,i,j] = b[o] + Σ_{c,a,e} w[o,c,a,e] · xpad[n, g·Cg + c, i·sH + a·dH, j·sW + e·dW]`
/// into `output`, the `(N, C_out, OH, OW)` data.
pub fn correlate(
    padded: &Padded,
    weight: &[f64],
    bias: Option<&[f64]>,
    geometry: &Conv2dGeometry,
    output: &mut [f64],
) {
    let [batch, out_channels, out_h, out_w] = geometry.output_shape_4d();
    let (hp, wp) = (padded.height, padded.width);
    let cg_in = geometry.in_channels_per_group();
    let cg_out = geometry.out_channels_per_group();
    let (kh, kw) = (geometry.height.kernel, geometry.width.kernel);
    let (sh, sw) = (geometry.height.stride, geometry.width.stride);
    let (dh, dw) = (geometry.height.dilation, geometry.width.dilation);

    for n in 0..batch {
        for o in 0..out_channels {
            let group = o / cg_out;
            for i in 0..out_h {
                for j in 0..out_w {
                    let mut acc = bias.map_or(0.0, |b| b[o]);
                    for c in 0..cg_in {
                        let plane = (n * geometry.in_channels + group * cg_in + c) * hp * wp;
                        for a in 0..kh {
                            let row = plane + (i * sh + a * dh) * wp;
                            for e in 0..kw {
                                let x = padded.data[row + j * sw + e * dw];
                                let w = weight[((o * cg_in + c) * kh + a) * kw + e];
                                acc += w * x;
                            }
                        }
                    }
                    output[((n * out_channels + o) * out_h + i) * out_w + j] = acc;
                }
            }
        }
    }
}
