// Winograd F(m×m, 3×3), weight transform: U = G g Gᵀ for every (group, input
// channel, output channel) of the layer, laid out for the GEMM
// (winograd_gemm.wgsl) as ALPHA² planes of [groups][blocks][in_per_group][KB]:
// the output channels of a group padded with zeros to whole blocks of the
// GEMM's KB, a block's values for one input channel side by side (one vec4
// load gives four output channels'), its input channels in turn (one GEMM
// invocation streams its block's weights in order).
// One invocation per (group, input channel, padded output channel); the
// transform is unrolled (src/gpu/conv/forward/winograd/codegen.rs). Run once
// per weight and cached, as the blocked kernel's packed weight is.

@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> transformed: array<f32>;

//{constants}

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
    let kp = (p.out_per_group + KB - 1u) / KB * KB;
    let k = index % kp;
    let rest = index / kp;
    let c = rest % p.in_per_group;
    let g = rest / p.in_per_group;
    // A padded output channel's taps are zeros.
    let real = k < p.out_per_group;
    let at = select(0u, ((g * p.out_per_group + k) * p.in_per_group + c) * 9u, real);
    let scale = select(0.0, 1.0, real);
//{transform}
    let plane = p.groups * p.in_per_group * kp;
    let into = ((g * (kp / KB) + k / KB) * p.in_per_group + c) * KB + k % KB;
//{store}
}
