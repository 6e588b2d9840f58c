// Weight gradient, register-blocked: one invocation per (block of positions,
// block of OB output channels, input channel c, block of RB kernel rows) sums
// grad_output · input for the OB × RB × KERNEL_W weights (o, c, a, e) over its
// positions, four adjacent columns at a time, into vec4 accumulators. The
// blocks are added in order by reduce_splits.wgsl, as for the direct kernel.
//
// It reads a padded, row-aligned copy of the input (pad_input.wgsl, rows
// `row_len` long) and grad_output with rows of `out_row_len` floats (a multiple
// of 4, zero past out_w: a copy, or grad_output itself when out_w is), both
// as aligned vec4s. Per quad of positions it loads the input row's span once
// per kernel row and one vec4 of grad_output per output channel; everything
// else is register arithmetic. The unrolled lines are generated per (OB, RB,
// kernel width, stride and dilation along the row) by
// src/gpu/conv/backward/grad_weight/blocked/codegen.rs.
//
// Positions are quads q = (n, i, jq) of this dispatch's chunk, jq < quads per
// row; this dispatch's blocks start at quad slice_begin, `split_len` each,
// ending at slice_end. The partial sums are laid out like the direct kernel's:
// [split][output channel of the chunk][c][a][e].

@group(0) @binding(2) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> grad_output: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;

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
    let row_blocks = (p.kernel_h + RB - 1u) / RB;
    let a0 = (index % row_blocks) * RB;
    var rest = index / row_blocks;
    let c = rest % p.in_per_group;
    rest = rest / p.in_per_group;
    // Output-channel blocks are numbered over all groups; this chunk's first
    // is the one holding out_c_begin.
    let blocks_per_group = (p.out_per_group + OB - 1u) / OB;
    let g0 = d.out_c_begin / p.out_per_group;
    let first_block = g0 * blocks_per_group + (d.out_c_begin - g0 * p.out_per_group) / OB;
    let last_block = ((d.out_c_begin + d.out_channels - 1u) / p.out_per_group) * blocks_per_group
        + ((d.out_c_begin + d.out_channels - 1u) % p.out_per_group) / OB;
    let blocks = last_block - first_block + 1u;
    let block = first_block + rest % blocks;
    let split = rest / blocks;
    let g = block / blocks_per_group;
    let o0 = g * p.out_per_group + (block % blocks_per_group) * OB;
    // Output channels of this block that are in the group and in this chunk.
    let o_lo = max(o0, d.out_c_begin);
    let o_hi = min(min(o0 + OB, (g + 1u) * p.out_per_group), d.out_c_begin + d.out_channels);
    let ch = g * p.in_per_group + c;
    let held = ch >= d.in_c_begin && ch < d.in_c_begin + d.in_channels;

    let quads_per_row = (p.out_w + 3u) / 4u;
    let quads = d.batch * p.out_h * quads_per_row;
    let begin = d.slice_begin + split * d.split_len;
    let end = select(begin, min(begin + d.split_len, min(d.slice_end, quads)), held);
    var jq = begin % quads_per_row;
    rest = begin / quads_per_row;
    var i = rest % p.out_h;
    var n = rest / p.out_h;
    // grad_output rows are out_row_len long; channel k of the block reads at
    // offset off_k from channel 0's position (a channel outside the block's
    // valid range reads its last valid one, and its sums are never stored).
    let out_quads = d.out_row_len / 4u;
    let plane_quads = p.out_h * out_quads;
//{declare}
    for (var q = begin; q < end; q++) {
        let x_at = (((n * d.in_channels + ch - d.in_c_begin) * p.padded_h + i * p.stride_h) * d.row_len
            + jq * 4u * STRIDE_W) / 4u;
        let go_at = (n * d.out_channels * p.out_h + i) * out_quads + jq;
        // Columns past out_w: grad_output is zero there, but the input may be
        // infinite or NaN (a column no output reads), and 0 · inf is NaN, so
        // those lanes of the input are zeroed too.
        let columns = vec4<u32>(jq * 4u) + vec4<u32>(0u, 1u, 2u, 3u);
        let in_row = columns < vec4<u32>(p.out_w);
//{accumulate}
        jq++;
        if (jq == quads_per_row) {
            jq = 0u;
            i++;
            if (i == p.out_h) {
                i = 0u;
                n++;
            }
        }
    }

    let row = p.in_per_group * p.kernel_h * KERNEL_W;
    let base = split * d.out_channels * row + (c * p.kernel_h + a0) * KERNEL_W;
//{store}
}
