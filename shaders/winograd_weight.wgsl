// Winograd F(m×m, 3×3), weight transform: U = G g Gᵀ for every (group, input
// channel, output channel) of the layer, laid out for the GEMM
// (winograd_gemm.wgsl) as ALPHA² planes of [groups][blocks][in_per_group][KB]:
// the output channels of a group padded with zeros to whole blocks of the
// GEMM's KB, a block's values for one input channel side by side (one vec4
// load gives four output channels'), its input channels in turn (one GEMM
// invocation streams its block's weights in order).
// One invocation per (group, input channel, four padded output channels):
// the transform runs on vec4s of the four channels' taps and each transformed
// value is stored as one vec4, and the index arithmetic (integer divisions,
// lane by lane on llvmpipe) is shared by four (8×512×7×7 layer's weight:
// 19.1–20.5 ms, against 28.9–33.0 at one channel per invocation with scalar
// stores; docs/benchmarks.md).
// The transform is unrolled (src/gpu/conv/forward/winograd/codegen.rs). Run
// once per weight and cached, as the blocked kernel's packed weight is. With
// TRANSPOSED set it reads the forward weight through the input gradient's
// transposition (channels swapped, taps flipped) and writes that
// convolution's transformed weight without a transposed copy, as
// pack_weight.wgsl does.

@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> transformed: array<vec4<f32>>;

// Nonzero: transform the weight of the transposed convolution (the input
// gradient's) from the forward one's.
override TRANSPOSED: u32;

//{constants}

// Output channel `k`'s weight at `at`, or zero past the group's last.
fn channel_tap(k: u32, at: u32) -> f32 {
    if (k < p.out_per_group) {
        return weight[at];
    }
    return 0.0;
}

// Tap `tap` (row-major) of output channels k0 to k0 + 3, whose taps start at
// `base` and lie `apart` from one channel to the next.
fn quad_tap(base: u32, apart: u32, k0: u32, tap: u32) -> vec4<f32> {
    var at = base + tap;
    if (TRANSPOSED != 0u) {
        at = base + 8u - tap;
    }
    return vec4<f32>(
        channel_tap(k0, at),
        channel_tap(k0 + 1u, at + apart),
        channel_tap(k0 + 2u, at + 2u * apart),
        channel_tap(k0 + 3u, at + 3u * apart),
    );
}

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
    let k0 = (index % (kp / 4u)) * 4u;
    let rest = index / (kp / 4u);
    let c = rest % p.in_per_group;
    let g = rest / p.in_per_group;
    var apart = p.in_per_group * 9u;
    var base = ((g * p.out_per_group + k0) * p.in_per_group + c) * 9u;
    if (TRANSPOSED != 0u) {
        // `weight` is that of the stride-1 convolution whose transpose this
        // one is: its input and output channels swapped within the group.
        apart = 9u;
        base = ((g * p.in_per_group + c) * p.out_per_group + k0) * 9u;
    }
//{transform}
    let plane = p.groups * p.in_per_group * (kp / 4u);
    let into = ((g * (kp / KB) + k0 / KB) * p.in_per_group + c) * (KB / 4u) + (k0 % KB) / 4u;
//{store}
}
