// Gradient of the padded input: one invocation per padded element (n, c, p, q),
// gathering every (output, tap) that read it. No atomics: each element is
// written once, summed in a fixed order, so results are bit-identical run to run.
//
// A dispatch may hold a block of the input channels [in_c_begin, +in_channels)
// and sum over a block of the output channels [out_c_begin, +out_channels);
// later output blocks add to the sums stored by earlier ones (`accumulate`), in
// the same order as one dispatch would, so splitting changes no bit. Within a
// dispatch the reduction rows (output channel o, kernel row a) run over the
// slice [slice_begin, slice_end) and the kernel columns over [inner_begin,
// inner_end), which keeps the loops under the driver's limit (src/gpu/runtime/loops.rs).

@group(0) @binding(2) var<storage, read> grad_output: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad_padded: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = invocation_index(wg, groups, local);
    if (index >= d.total) {
        return;
    }
    let q = index % p.padded_w;
    var rest = index / p.padded_w;
    let row = rest % p.padded_h;
    rest = rest / p.padded_h;
    let ch = d.in_c_begin + rest % d.in_channels;
    let n = rest / d.in_channels;
    let g = ch / p.in_per_group;
    let c = ch % p.in_per_group;
    // This input's group, intersected with the output channels this dispatch holds.
    let o_lo = max(g * p.out_per_group, d.out_c_begin);
    let o_hi = min((g + 1u) * p.out_per_group, d.out_c_begin + d.out_channels);

    var acc = 0.0;
    if (d.accumulate != 0u) {
        acc = grad_padded[index];
    }
    let rows = select(0u, (o_hi - o_lo) * p.kernel_h, o_hi > o_lo);
    let row_end = min(d.slice_end, rows);
    var o = o_lo + d.slice_begin / p.kernel_h;
    var a = d.slice_begin % p.kernel_h;
    for (var r = d.slice_begin; r < row_end; r++) {
        // The output row that reads this padded row through kernel row a, if any.
        let da = a * p.dilation_h;
        let ti = row - min(da, row);
        let i = ti / p.stride_h;
        if (da <= row && ti % p.stride_h == 0u && i < p.out_h) {
            let go_row = ((n * d.out_channels + o - d.out_c_begin) * p.out_h + i) * p.out_w;
            let w_row = ((o * p.in_per_group + c) * p.kernel_h + a) * p.kernel_w;
            for (var e = d.inner_begin; e < d.inner_end; e++) {
                let de = e * p.dilation_w;
                if (de > q) {
                    break;
                }
                let tj = q - de;
                let j = tj / p.stride_w;
                if (tj % p.stride_w != 0u || j >= p.out_w) {
                    continue;
                }
                acc = fma(weight[w_row + e], grad_output[go_row + j], acc);
            }
        }
        a++;
        if (a == p.kernel_h) {
            a = 0u;
            o++;
        }
    }
    grad_padded[index] = acc;
}
