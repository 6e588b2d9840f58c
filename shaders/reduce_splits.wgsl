// Adds `splits` blocks of `total` partial sums element-wise, in block order,
// into `result` from element `result_offset` on: onto what an earlier dispatch
// stored there when `accumulate` is set. The host keeps `splits` small (the
// driver's loop limit, src/gpu/runtime/loops.rs) and adds larger sets pass by pass.

@group(0) @binding(2) var<storage, read> partials: array<f32>;
@group(0) @binding(3) var<storage, read_write> result: array<f32>;

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
    let at = d.result_offset + index;
    var acc = 0.0;
    if (d.accumulate != 0u) {
        acc = result[at];
    }
    for (var s = 0u; s < d.splits; s++) {
        acc = acc + partials[s * d.total + index];
    }
    result[at] = acc;
}
