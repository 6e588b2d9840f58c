// Direct Conv2d forward: one invocation per output element.
//
// The always-correct baseline. Every geometry parameter comes from the uniform
// buffer, and the padding modes are index maps, so no padded copy of the input
// is made.

@group(0) @binding(2) var<storage, read> input: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> output: array<f32>;

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
    let j = index % p.out_w;
    var rest = index / p.out_w;
    let i = rest % p.out_h;
    rest = rest / p.out_h;
    let o = d.out_c_begin + rest % d.out_channels;
    let n = rest / d.out_channels;
    let group_first = (o / p.out_per_group) * p.in_per_group;
    // This output's group, intersected with the channels this dispatch holds.
    let c_lo = max(group_first, d.in_c_begin);
    let c_hi = min(group_first + p.in_per_group, d.in_c_begin + d.in_channels);

    var acc = 0.0;
    if (d.accumulate != 0u) {
        acc = output[index];
    } else if (p.has_bias != 0u) {
        acc = bias[o];
    }
    let row0 = i32(i * p.stride_h);
    let col0 = i32(j * p.stride_w);
    // This dispatch's slice of the reduction rows (channel c, kernel row a) in
    // order, and of the kernel columns: the host keeps the loops under the
    // driver's limit (src/gpu/runtime/loops.rs) and later slices add onto this one.
    let rows = select(0u, (c_hi - c_lo) * p.kernel_h, c_hi > c_lo);
    let row_end = min(d.slice_end, rows);
    var c = c_lo + d.slice_begin / p.kernel_h;
    var a = d.slice_begin % p.kernel_h;
    for (var r = d.slice_begin; r < row_end; r++) {
        let plane = (n * d.in_channels + c - d.in_c_begin) * p.in_h * p.in_w;
        let w_row = ((o * p.in_per_group + c - group_first) * p.kernel_h + a) * p.kernel_w;
        let y = source_coord(row0 + i32(a * p.dilation_h), p.lead_h, p.src_first_h, p.src_len_h);
        for (var e = d.inner_begin; e < d.inner_end; e++) {
            let x = source_coord(col0 + i32(e * p.dilation_w), p.lead_w, p.src_first_w, p.src_len_w);
            // A zero tap still multiplies, as an explicitly padded tensor would,
            // so Inf weights give NaN exactly as in the CPU reference.
            var v = 0.0;
            if (y >= 0 && x >= 0) {
                v = input[plane + u32(y) * p.in_w + u32(x)];
            }
            acc = fma(weight[w_row + e], v, acc);
        }
        a++;
        if (a == p.kernel_h) {
            a = 0u;
            c++;
        }
    }
    output[index] = acc;
}
