// The weight of the transposed convolution whose forward pass is the input
// gradient (stride 1): within each group, input and output channels swapped
// and the taps flipped in space. One invocation per element of the result,
// shaped (in_channels, out_channels / groups, kernel_h, kernel_w).

@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> transposed: array<f32>;

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
    let e = index % p.kernel_w;
    var rest = index / p.kernel_w;
    let a = rest % p.kernel_h;
    rest = rest / p.kernel_h;
    let o = rest % p.out_per_group;
    let ch = rest / p.out_per_group;
    let g = ch / p.in_per_group;
    let c = ch % p.in_per_group;
    let source = (((g * p.out_per_group + o) * p.in_per_group + c) * p.kernel_h
        + (p.kernel_h - 1u - a)) * p.kernel_w + (p.kernel_w - 1u - e);
    transposed[index] = weight[source];
}
