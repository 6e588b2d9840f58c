// The blocked kernel's weight: for each block of BLOCK output channels of one
// group, the taps in (input channel, ky, kx) order, each tap the BLOCK channels'
// weights side by side (zero past the group's last channel), so one vec4 load
// gives four output channels' weights. One invocation per tap of a block: it
// writes the tap's BLOCK weights as vec4s. (One invocation per element cost
// five integer divisions per element, which llvmpipe does lane by lane: 12 ms
// of the 8×512×7×7 layer's call.) Each vec4 is stored as `StoredQuad` says
// (shaders/quad_f32.wgsl, or shaders/quad_bf16.wgsl for `Precision::Medium`).

@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> packed: array<StoredQuad>;

override BLOCK: u32;

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
    let rest = index / taps;
    let c = rest % p.in_per_group;
    let block = rest / p.in_per_group;
    let blocks_per_group = (p.out_per_group + BLOCK - 1u) / BLOCK;
    let g = block / blocks_per_group;
    let first = (block % blocks_per_group) * BLOCK;
    // Consecutive output channels' weights for one tap lie this far apart.
    let apart = p.in_per_group * taps;
    let base = ((g * p.out_per_group + first) * p.in_per_group + c) * taps + tap;
    for (var q = 0u; q < BLOCK / 4u; q++) {
        let o = first + 4u * q;
        let at = base + 4u * q * apart;
        packed[index * (BLOCK / 4u) + q] = stored_quad(vec4<f32>(
            block_weight(o, at),
            block_weight(o + 1u, at + apart),
            block_weight(o + 2u, at + 2u * apart),
            block_weight(o + 3u, at + 3u * apart),
        ));
    }
}
