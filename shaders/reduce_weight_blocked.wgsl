// The blocked weight gradient's partial sums added in split order: one
// invocation per row (o, c, a) of this chunk's weights, onto
// what an earlier dispatch stored when `accumulate` is set.
//
// conv2d_grad_weight_blocked.wgsl stores each invocation's accumulators side
// by side as vec4s (ACCUMULATORS_PADDED floats per invocation, invocations in
// their index order, split after split), unguarded: so that its stores are a
// quarter as many, which is most of its compile time on llvmpipe. This pass
// finds each weight's accumulator there: the invocation that held it and its
// place (o, c, a, e) within that invocation's OB × CB × RB × KERNEL_W block.

@group(0) @binding(2) var<storage, read> partials: array<f32>;
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
    // One row (o, c, a) of KERNEL_W weights per invocation: llvmpipe divides
    // integers lane by lane, so the index arithmetic is shared by a row.
    let a = index % p.kernel_h;
    var rest = index / p.kernel_h;
    let c = rest % p.in_per_group;
    let o = d.out_c_begin + rest / p.in_per_group;

    // The invocation's index within a split, numbered as the kernel numbers
    // them: row block fastest, then channel block, then output-channel block.
    let row_blocks = (p.kernel_h + RB - 1u) / RB;
    let channel_blocks = (p.in_per_group + CB - 1u) / CB;
    let first_block = out_block(d.out_c_begin, OB);
    let blocks = out_block(d.out_c_begin + d.out_channels - 1u, OB) - first_block + 1u;
    let per_split = blocks * channel_blocks * row_blocks;
    let invocation = ((out_block(o, OB) - first_block) * channel_blocks + c / CB) * row_blocks + a / RB;
    let place = (((o % p.out_per_group) % OB * CB + c % CB) * RB + a % RB) * KERNEL_W;

    let at = d.result_offset + index * KERNEL_W;
//{sum}
}
