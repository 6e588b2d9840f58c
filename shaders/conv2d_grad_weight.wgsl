// Weight gradient, first pass: one invocation per (split, weight element) sums
// grad_output · input over one block of `split_rows` output rows (n, i), reading
// the input through the padding index map. A second pass (reduce_splits.wgsl)
// adds the blocks in order: deterministic, and O(output) extra memory.
//
// A dispatch covers the weight rows of its output channels [out_c_begin,
// +out_channels) and sees only the input channels [in_c_begin, +in_channels)
// of its batch items; weight entries of other input channels get 0 here and
// their share from another dispatch.

@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> grad_output: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;

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
    let taps = p.kernel_h * p.kernel_w;
    let weight_len = p.out_channels * p.in_per_group * taps;
    let k = index % weight_len;
    let split = index / weight_len;
    let e = k % p.kernel_w;
    var rest = k / p.kernel_w;
    let a = rest % p.kernel_h;
    rest = rest / p.kernel_h;
    let c = rest % p.in_per_group;
    let o_local = rest / p.in_per_group;
    let ch = ((p.out_c_begin + o_local) / p.out_per_group) * p.in_per_group + c;
    if (ch < p.in_c_begin || ch >= p.in_c_begin + p.in_channels) {
        partials[index] = 0.0;
        return;
    }

    let row_begin = split * p.split_rows;
    let row_end = min(row_begin + p.split_rows, p.batch * p.out_h);
    var acc = 0.0;
    for (var row = row_begin; row < row_end; row++) {
        let n = row / p.out_h;
        let i = row % p.out_h;
        let y = source_coord(i32(i * p.stride_h + a * p.dilation_h), p.lead_h, p.src_first_h, p.src_len_h);
        let go_base = ((n * p.out_channels + o_local) * p.out_h + i) * p.out_w;
        let plane = (n * p.in_channels + ch - p.in_c_begin) * p.in_h * p.in_w;
        for (var j = 0u; j < p.out_w; j++) {
            let x = source_coord(i32(j * p.stride_w + e * p.dilation_w), p.lead_w, p.src_first_w, p.src_len_w);
            var v = 0.0;
            if (y >= 0 && x >= 0) {
                v = input[plane + u32(y) * p.in_w + u32(x)];
            }
            acc = fma(grad_output[go_base + j], v, acc);
        }
    }
    partials[index] = acc;
}
