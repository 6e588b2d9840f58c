// The blocked kernel's weight: for each block of BLOCK output channels of one
// group, the taps in (input channel, ky, kx) order, each tap the BLOCK channels'
// weights side by side (zero past the group's last channel), so one vec4 load
// gives four output channels' weights. One invocation per tap of a block: it
// writes the tap's BLOCK weights as vec4s. (One invocation per element cost
// five integer divisions per element, which llvmpipe does lane by lane: 12 ms
// of the 8×512×7×7 layer's call.) Each vec4 is stored as `StoredQuad` says
// (shaders/quad_f32.wgsl, or shaders/quad_bf16.wgsl for `Precision::Medium`).
// With TRANSPOSED set it reads the forward weight through the input
// gradient's transposition (channels swapped, taps flipped) and writes that
// convolution's packed weight: on the 8×512×7×7 3×3 layer the separate
// transposed copy it saves took 10 ms.

@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> packed: array<StoredQuad>;

override BLOCK: u32;
// Nonzero: pack the weight of the transposed convolution (the input
// gradient's) from the forward one's, without a transposed copy.
override TRANSPOSED: u32;

// Output channel `o` of the group's weight at `at`, or zero past the group.
fn block_weight(o: u32, at: u32) -> f32 {
    if (o < p.out_per_group) {
        return weight[at];
    }
    return 0.0;
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
    let taps = p.kernel_h * p.kernel_w;
    let tap = index % taps;
    var rest = index / taps;
    let blocks_per_group = (p.out_per_group + BLOCK - 1u) / BLOCK;
    // The packed weight's order: (block, input channel, tap). Invocations
    // take it, but for TRANSPOSED, whose invocations take (group, input
    // channel, block, tap), so that neighbours read neighbouring weights.
    var c = rest % p.in_per_group;
    var block = rest / p.in_per_group;
    if (TRANSPOSED != 0u) {
        let b = rest % blocks_per_group;
        rest = rest / blocks_per_group;
        c = rest % p.in_per_group;
        block = (rest / p.in_per_group) * blocks_per_group + b;
    }
    let g = block / blocks_per_group;
    let first = (block % blocks_per_group) * BLOCK;
    let packed_at = ((block * p.in_per_group + c) * taps + tap) * (BLOCK / 4u);
    // Consecutive output channels' weights for one tap lie this far apart.
    var apart = p.in_per_group * taps;
    var base = ((g * p.out_per_group + first) * p.in_per_group + c) * taps + tap;
    if (TRANSPOSED != 0u) {
        // `weight` is that of the stride-1 convolution whose transpose this
        // one is: its input and output channels swapped within the group,
        // its taps flipped.
        apart = taps;
        base = ((g * p.in_per_group + c) * p.out_per_group + first) * taps + taps - 1u - tap;
    }
    for (var q = 0u; q < BLOCK / 4u; q++) {
        let o = first + 4u * q;
        let at = base + 4u * q * apart;
        packed[packed_at + q] = stored_quad(vec4<f32>(
            block_weight(o, at),
            block_weight(o + 1u, at + apart),
            block_weight(o + 2u, at + 2u * apart),
            block_weight(o + 3u, at + 3u * apart),
        ));
    }
}
