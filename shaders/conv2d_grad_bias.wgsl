// Bias gradient: one invocation per output channel of the dispatch sums its
// grad_output over batch and positions, in order, onto what an earlier
// dispatch (earlier batch items) stored when `accumulate` is set.

@group(0) @binding(1) var<storage, read> grad_output: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad_bias: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let o = invocation_index(wg, groups, local);
    if (o >= p.out_channels) {
        return;
    }
    let plane = p.out_h * p.out_w;
    var acc = 0.0;
    if (p.accumulate != 0u) {
        acc = grad_bias[p.out_c_begin + o];
    }
    for (var n = 0u; n < p.batch; n++) {
        let base = (n * p.out_channels + o) * plane;
        for (var m = 0u; m < plane; m++) {
            acc = acc + grad_output[base + m];
        }
    }
    grad_bias[p.out_c_begin + o] = acc;
}
