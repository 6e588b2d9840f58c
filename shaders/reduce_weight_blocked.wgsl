// The blocked weight gradient's partial sums added in split order into the
// result, onto what an earlier dispatch stored when `accumulate` is set.
//
// conv2d_grad_weight_blocked.wgsl stores each invocation's accumulators side
// by side as vec4s (ACCUMULATORS_PADDED floats per invocation, invocations in
// their index order, split after split), unguarded: so that its stores are a
// quarter as many, which is most of its compile time on llvmpipe. This pass
// takes them as they lie: one invocation per PER consecutive vec4s of one
// kernel invocation's accumulators; for each vec4, the same vec4 of every
// split added in order, then its four weights stored at their places
// (o, c, a, e) in the result. Those of the padding (past ACCUMULATORS, or
// padding invocations where lanes shared loads) and of channels or kernel
// rows past the group's, the chunk's or the kernel's end are dropped. (One
// invocation per row of the result, reading scalars at their places, took
// 10–15 ms of the 8×512×7×7 3×3 layer's backward, 7.9 ms this way: the
// divisions by uniform values, which llvmpipe does lane by lane, are shared
// by 4·PER weights, and those within a kernel invocation's block are by
// constants.)

@group(0) @binding(2) var<storage, read> partials: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> result: array<f32>;

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
    // The kernel invocation whose vec4 this is, numbered as the kernel
    // numbers them: row block fastest, then channel block (padded to a
    // multiple of LANES where lanes share loads), then output-channel block.
    let quads = ACCUMULATORS_PADDED / 4u;
    let invocation = (index * PER) / quads;
    let first_quad = (index * PER) % quads;
    let row_blocks = (p.kernel_h + RB - 1u) / RB;
    let per_block = row_blocks * ((p.in_per_group + CB - 1u) / CB);
    let padded_block = (per_block + max(LANES, 1u) - 1u) / max(LANES, 1u) * max(LANES, 1u);
    let inner = invocation % padded_block;
    let a0 = (inner % row_blocks) * RB;
    let c0 = (inner / row_blocks) * CB;
    let blocks_per_group = (p.out_per_group + OB - 1u) / OB;
    let block = out_block(d.out_c_begin, OB) + invocation / padded_block;
    let g = block / blocks_per_group;
    let o0 = g * p.out_per_group + (block % blocks_per_group) * OB;
    // Output channels of the block in the group and in this chunk.
    let o_hi = min(min(o0 + OB, (g + 1u) * p.out_per_group), d.out_c_begin + d.out_channels);

    for (var t = 0u; t < PER; t++) {
        let place = (first_quad + t) * 4u;
        // Each weight's place (k, j, r, e) in the block: OB × CB × RB × KERNEL_W.
        var at = vec4<u32>(0u);
        var kept = vec4<bool>(false);
        var sums = vec4<f32>(0.0);
        for (var i = 0u; i < 4u; i++) {
            let q = place + i;
            let e = q % KERNEL_W;
            let r = (q / KERNEL_W) % RB;
            let j = (q / (KERNEL_W * RB)) % CB;
            let o = o0 + q / (KERNEL_W * RB * CB);
            let c = c0 + j;
            let a = a0 + r;
            kept[i] = inner < per_block && q < OB * CB * RB * KERNEL_W && o >= d.out_c_begin
                && o < o_hi && c < p.in_per_group && a < p.kernel_h;
            at[i] = d.result_offset + (((o - d.out_c_begin) * p.in_per_group + c) * p.kernel_h + a)
                * p.kernel_w + e;
            if (kept[i] && d.accumulate != 0u) {
                sums[i] = result[at[i]];
            }
        }
        // Added in split order, onto what was stored: the order of every
        // other reduction of partial sums here, so that the result does not
        // depend on the blocking.
        for (var s = 0u; s < d.splits; s++) {
            sums = sums + partials[s * d.total * PER + index * PER + t];
        }
        for (var i = 0u; i < 4u; i++) {
            if (kept[i]) {
                result[at[i]] = sums[i];
            }
        }
    }
}
