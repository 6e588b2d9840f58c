// Weight gradient, first pass: one invocation per (split, weight element) sums
// grad_output · input over one block of `split_len` output positions (n, i, j),
// reading the input through the padding index map. The blocks of this dispatch
// start at position `slice_begin`; a second pass (reduce_splits.wgsl) adds them
// in order: deterministic, with bounded extra memory, and every invocation's
// loop is at most `split_len` long (the driver's loop limit, src/gpu/runtime/loops.rs).
//
// A dispatch covers the weight rows of its output channels [out_c_begin,
// +out_channels) and sees only the input channels [in_c_begin, +in_channels)
// of its batch items; weight entries of other input channels get 0 here and
// their share from another dispatch.

@group(0) @binding(2) var<storage, read> input: array<f32>;
@group(0) @binding(3) var<storage, read> grad_output: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;

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
    let taps = p.kernel_h * p.kernel_w;
    let weight_len = d.out_channels * p.in_per_group * taps;
    let k = index % weight_len;
    let split = index / weight_len;
    let e = k % p.kernel_w;
    var rest = k / p.kernel_w;
    let a = rest % p.kernel_h;
    rest = rest / p.kernel_h;
    let c = rest % p.in_per_group;
    let o_local = rest / p.in_per_group;
    let ch = ((d.out_c_begin + o_local) / p.out_per_group) * p.in_per_group + c;
    if (ch < d.in_c_begin || ch >= d.in_c_begin + d.in_channels) {
        partials[index] = 0.0;
        return;
    }

    let begin = d.slice_begin + split * d.split_len;
    let end = min(begin + d.split_len, d.slice_end);
    // Walk positions (n, i, j) in order from `begin`.
    var j = begin % p.out_w;
    rest = begin / p.out_w;
    var i = rest % p.out_h;
    var n = rest / p.out_h;
    var y = source_coord(i32(i * p.stride_h + a * p.dilation_h), p.lead_h, p.src_first_h, p.src_len_h);
    var acc = 0.0;
    for (var t = begin; t < end; t++) {
        let x = source_coord(i32(j * p.stride_w + e * p.dilation_w), p.lead_w, p.src_first_w, p.src_len_w);
        var v = 0.0;
        if (y >= 0 && x >= 0) {
            let plane = (n * d.in_channels + ch - d.in_c_begin) * p.in_h * p.in_w;
            v = input[plane + u32(y) * p.in_w + u32(x)];
        }
        let go = ((n * d.out_channels + o_local) * p.out_h + i) * p.out_w + j;
        acc = fma(grad_output[go], v, acc);
        j++;
        if (j == p.out_w) {
            j = 0u;
            i++;
            if (i == p.out_h) {
                i = 0u;
                n++;
            }
            y = source_coord(i32(i * p.stride_h + a * p.dilation_h), p.lead_h, p.src_first_h, p.src_len_h);
        }
    }
    partials[index] = acc;
}
