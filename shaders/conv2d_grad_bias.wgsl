// Bias gradient, first pass: one invocation per (split, output channel of the
// dispatch) sums its grad_output over one block of `split_len` positions (n, m)
// in order, the blocks of this dispatch starting at position `slice_begin`;
// reduce_splits.wgsl then adds the blocks in order. Every invocation's loop is
// at most `split_len` long (the driver's loop limit, src/gpu/runtime/loops.rs), however
// many positions a training batch has.

@group(0) @binding(2) var<storage, read> grad_output: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;

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
    let o = index % d.out_channels;
    let split = index / d.out_channels;
    let plane = p.out_h * p.out_w;
    let begin = d.slice_begin + split * d.split_len;
    let end = min(begin + d.split_len, d.slice_end);
    var m = begin % plane;
    var n = begin / plane;
    var acc = 0.0;
    for (var t = begin; t < end; t++) {
        acc = acc + grad_output[(n * d.out_channels + o) * plane + m];
        m++;
        if (m == plane) {
            m = 0u;
            n++;
        }
    }
    partials[index] = acc;
}
