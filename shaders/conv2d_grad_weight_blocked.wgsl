// Weight gradient, register-blocked: one invocation per (block of positions,
// block of OB output channels, block of CB input channels, block of RB kernel
// rows) sums grad_output · input for the OB × CB × RB × KERNEL_W weights
// (o, c, a, e) over its positions into one scalar accumulator each. The blocks
// are added in order by reduce_splits.wgsl, as for the direct kernel.
//
// Why scalar accumulators: on llvmpipe, as on GPUs, loads bound this kernel.
// One accumulator per weight (not a vec4 of partial sums over four positions)
// lets one invocation hold four times the weights, so that each grad_output
// value loaded serves CB × RB × KERNEL_W weights and each input value OB ×
// KERNEL_W of them.
//
// It reads a padded, row-aligned copy of the input (pad_input.wgsl, rows
// `row_len` long) and grad_output with rows of `out_row_len` floats (a multiple
// of 4·QUADS, zero past out_w: a copy, or grad_output itself when out_w is),
// both as aligned vec4s. A step takes a run of QUADS quads of adjacent
// positions along a row: per output channel QUADS vec4s of grad_output, per
// input channel and kernel row the run's span of the input row; everything
// else is register arithmetic. The unrolled lines are generated per variant by
// src/gpu/conv/backward/grad_weight/blocked/codegen.rs.
//
// Steps are runs r = (n, i, jr) of this dispatch's chunk, jr < runs per row;
// this dispatch's blocks start at run slice_begin, `split_len` each, ending at
// slice_end. Each invocation stores its accumulators as ACCUMULATORS_PADDED
// floats at its index, for reduce_weight_blocked.wgsl.
//
// Invocations are numbered row block fastest, then input-channel block (the
// invocations of one block of output channels and positions), then
// output-channel block, then block of positions (`split`).

@group(0) @binding(2) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> grad_output: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> partials: array<vec4<f32>>;

//{constants}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
//{lane}
) {
    // Where lanes share grad_output loads (LANES > 0: each step's grad_output
    // values, the same for every invocation of a block of output channels and
    // positions, are loaded once across a subgroup's lanes and broadcast),
    // such a block's invocations are padded to a multiple of LANES, so that a
    // subgroup's are one block's; the padding ones, and those past the last,
    // stay (clamped onto the last real one) so that every lane takes part, and
    // store nothing.
    let row_blocks = (p.kernel_h + RB - 1u) / RB;
    let channel_blocks = (p.in_per_group + CB - 1u) / CB;
    let per_block = row_blocks * channel_blocks;
    let padded_block = padded_to_lanes(per_block);
    let unclamped = invocation_index(wg, groups, local);
    let live = unclamped < d.total && unclamped % padded_block < per_block;
    if (LANES == 0u && !live) {
        return;
    }
    let index = min(unclamped, d.total - 1u);
    let inner = min(index % padded_block, per_block - 1u);
    let a0 = (inner % row_blocks) * RB;
    let c0 = (inner / row_blocks) * CB;
    var rest = index / padded_block;
    // Output-channel blocks are numbered over all groups; this chunk's first
    // is the one holding out_c_begin.
    let blocks_per_group = (p.out_per_group + OB - 1u) / OB;
    let first_block = out_block(d.out_c_begin, OB);
    let blocks = out_block(d.out_c_begin + d.out_channels - 1u, OB) - first_block + 1u;
    let block = first_block + rest % blocks;
    let split = rest / blocks;
    let g = block / blocks_per_group;
    let o0 = g * p.out_per_group + (block % blocks_per_group) * OB;
    // Output channels of this block that are in the group and in this chunk.
    let o_lo = max(o0, d.out_c_begin);
    let o_hi = min(min(o0 + OB, (g + 1u) * p.out_per_group), d.out_c_begin + d.out_channels);
    // Input channels of this block that are in the group and in this chunk;
    // the others read the nearest held one (a block holding none reads
    // channel in_c_begin) and store zeros.
    let c_group = g * p.in_per_group;
    let ch_lo = max(c_group + c0, d.in_c_begin);
    let ch_hi = min(min(c_group + c0 + CB, c_group + p.in_per_group), d.in_c_begin + d.in_channels);
    let held = ch_lo < ch_hi;
    // Whether this invocation takes steps: where it holds a channel or, where
    // lanes share loads, where any lane of its subgroup does, so that every
    // lane takes the same steps.
//{running}

    // Runs of QUADS quads along a row; grad_output rows are padded to whole runs.
    let quads_per_row = (p.out_w + 3u) / 4u;
    let runs_per_row = (quads_per_row + QUADS - 1u) / QUADS;
    let runs = d.batch * p.out_h * runs_per_row;
    let begin = d.slice_begin + split * d.split_len;
    let end = select(begin, min(begin + d.split_len, min(d.slice_end, runs)), running);
    var jr = begin % runs_per_row;
    rest = begin / runs_per_row;
    var i = rest % p.out_h;
    var n = rest / p.out_h;
    // grad_output rows are out_row_len long; channel k of the block reads at
    // offset off_k from channel 0's position (a channel outside the block's
    // valid range reads its last valid one, and its sums are never stored).
    let out_quads = d.out_row_len / 4u;
    let plane_quads = p.out_h * out_quads;
    let in_plane = p.padded_h * d.row_len / 4u;
//{declare}
    for (var q = begin; q < end; q++) {
        let x_at = ((n * d.in_channels * p.padded_h + i * p.stride_h) * d.row_len
            + jr * 4u * QUADS * STRIDE_W) / 4u;
        let go_at = (n * d.out_channels * p.out_h + i) * out_quads + jr * QUADS;
        // Columns past out_w: grad_output is zero there, but the input may be
        // infinite or NaN (a column no output reads), and 0 · inf is NaN, so
        // those lanes of the input are zeroed too.
        let columns = vec4<u32>(jr * 4u * QUADS) + vec4<u32>(0u, 1u, 2u, 3u);
//{accumulate}
        jr++;
        if (jr == runs_per_row) {
            jr = 0u;
            i++;
            if (i == p.out_h) {
                i = 0u;
                n++;
            }
        }
    }

    // The accumulators side by side, unguarded (reduce_weight_blocked.wgsl
    // picks out the valid ones); a channel not held stores zeros.
    let at = index * (ACCUMULATORS_PADDED / 4u);
    if (live) {
//{store}
    }
}
