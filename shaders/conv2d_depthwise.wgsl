// Depthwise Conv2d forward (groups = input channels, any channel multiplier):
// one invocation per run of OUTS adjacent outputs along a row. The kernel row's
// index map and each weight are computed once for the run, and windows that
// lie wholly inside the data skip the map for their columns. Interior runs of
// the common 3-wide, stride-1 kernel row load its six inputs once for all four
// outputs.

@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> output: array<f32>;

const OUTS: u32 = 4u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = invocation_index(wg, groups, local);
    if (index >= p.total) {
        return;
    }
    let runs = (p.out_w + OUTS - 1u) / OUTS;
    let run = index % runs;
    var rest = index / runs;
    let i = rest % p.out_h;
    rest = rest / p.out_h;
    let o_local = rest % p.out_channels;
    let n = rest / p.out_channels;
    let o = p.out_c_begin + o_local;
    let c = o / p.out_per_group;
    let j0 = run * OUTS;
    let out_row = ((n * p.out_channels + o_local) * p.out_h + i) * p.out_w;
    let count = min(OUTS, p.out_w - j0);

    var acc = vec4<f32>(0.0);
    for (var q = 0u; q < count; q++) {
        if (p.accumulate != 0u) {
            acc[q] = output[out_row + j0 + q];
        } else if (p.has_bias != 0u) {
            acc[q] = bias[o];
        }
    }
    if (c >= p.in_c_begin && c < p.in_c_begin + p.in_channels) {
        let plane = (n * p.in_channels + c - p.in_c_begin) * p.in_h * p.in_w;
        let sw = p.stride_w;
        let col0 = i32(j0 * sw);
        let span = i32((OUTS - 1u) * sw + (p.kernel_w - 1u) * p.dilation_w);
        let interior = col0 >= i32(p.lead_w) && col0 + span < i32(p.lead_w + p.src_len_w);
        let shift = i32(p.src_first_w) - i32(p.lead_w);
        let row3 = interior && p.kernel_w == 3u && sw == 1u && p.dilation_w == 1u;
        for (var a = 0u; a < p.kernel_h; a++) {
            let y = source_coord(i32(i * p.stride_h + a * p.dilation_h), p.lead_h, p.src_first_h, p.src_len_h);
            let row = plane + u32(max(y, 0)) * p.in_w;
            if (row3) {
                let w = o * p.kernel_h * 3u + a * 3u;
                var v0 = vec4<f32>(0.0);
                var v1 = vec2<f32>(0.0);
                if (y >= 0) {
                    let x = row + u32(col0 + shift);
                    v0 = vec4<f32>(input[x], input[x + 1u], input[x + 2u], input[x + 3u]);
                    v1 = vec2<f32>(input[x + 4u], input[x + 5u]);
                }
                acc = fma(vec4<f32>(weight[w]), v0, acc);
                acc = fma(vec4<f32>(weight[w + 1u]), vec4<f32>(v0.yzw, v1.x), acc);
                acc = fma(vec4<f32>(weight[w + 2u]), vec4<f32>(v0.zw, v1), acc);
                continue;
            }
            for (var e = 0u; e < p.kernel_w; e++) {
                let w = weight[o * p.kernel_h * p.kernel_w + a * p.kernel_w + e];
                // A zero tap still multiplies, as in the direct kernel (Inf · 0 = NaN).
                var v = vec4<f32>(0.0);
                let col = col0 + i32(e * p.dilation_w);
                if (y >= 0 && interior) {
                    let x = row + u32(col + shift);
                    v = vec4<f32>(input[x], input[x + sw], input[x + 2u * sw], input[x + 3u * sw]);
                } else if (y >= 0) {
                    for (var q = 0u; q < count; q++) {
                        let x = source_coord(col + i32(q * sw), p.lead_w, p.src_first_w, p.src_len_w);
                        if (x >= 0) {
                            v[q] = input[row + u32(x)];
                        }
                    }
                }
                acc = fma(vec4<f32>(w), v, acc);
            }
        }
    }
    for (var q = 0u; q < count; q++) {
        output[out_row + j0 + q] = acc[q];
    }
}
