// Register-blocked direct Conv2d forward: each invocation computes OUTS adjacent
// outputs along one row for a block of BLOCK output channels of one group.
//
// Per input channel and kernel row it loads the row's span of the padded input
// once, as aligned vec4s, and per kernel column one vec4 of packed weights per
// four output channels; everything else is register arithmetic. Loads, not
// FMAs, bound convolution on llvmpipe (every per-lane load is a scalar loop)
// and are the scarce resource on GPUs too, so this is the ratio that matters.
//
// The input is the padded copy made by pad_input.wgsl (no index map here) and
// the weight is packed by pack_weight.wgsl: a tap's BLOCK channels side by side,
// read as vec4s (`WeightUnit`). With BLOCK = 1 (depthwise) the packed weight is
// the weight itself, read one float per tap. Under `Precision::Medium` both
// hold values rounded to bfloat16, two words per four (`InputUnit`,
// `WeightUnit`), widened exactly on load. The accumulation is unrolled for
// the variant's kernel width, stride and dilation along the row: src/gpu/conv/forward/blocked/codegen.rs
// generates the marked lines, since neither naga nor llvmpipe unrolls loops
// that index registers.

@group(0) @binding(2) var<storage, read> input: array<InputUnit>;
@group(0) @binding(3) var<storage, read> weight: array<WeightUnit>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> output: array<OutputUnit>;

//{constants}

// Adds `value` (one output, or four adjacent ones where rows are a whole
// number of vec4s) to the start the output takes: the bias, or the partial
// sum of an earlier block of input channels.
fn store_output(n: u32, o: u32, i: u32, j: u32, value: OutputUnit) {
    let at = (((n * d.out_channels + o - d.out_c_begin) * p.out_h + i) * p.out_w + j) / OUTPUT_LANES;
    var start = OutputUnit(0.0);
    if (ACCUMULATE) {
        start = output[at];
    } else if (p.has_bias != 0u) {
        start = OutputUnit(bias[o]);
    }
    output[at] = select(OutputUnit(poison()), start + value, sound);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
//{lane}
) {
    // Where lanes share weight loads (LANES > 0: each step's weights are
    // loaded once across a subgroup's lanes and broadcast), a block's
    // invocations are padded to a multiple of LANES, so that a subgroup's are
    // one block's; the padding ones, and those past the last, stay (clamped
    // onto the last real one) so that every lane takes part, and store nothing.
    let runs = (p.out_w + OUTS - 1u) / OUTS;
    let per_block = runs * p.out_h * d.batch;
    let padded_block = padded_to_lanes(per_block);
    let unclamped = invocation_index(wg, groups, local);
    let live = unclamped < d.total && unclamped % padded_block < per_block;
    if (LANES == 0u && !live) {
        return;
    }
    let index = min(unclamped, d.total - 1u);
    let run = min(index % padded_block, per_block - 1u) % runs;
    var rest = min(index % padded_block, per_block - 1u) / runs;
    let i = rest % p.out_h;
    rest = rest / p.out_h;
    let n = rest % d.batch;
    // Blocks are numbered over all groups; this chunk's first is the one holding out_c_begin.
    let blocks_per_group = (p.out_per_group + BLOCK - 1u) / BLOCK;
    let block = out_block(d.out_c_begin, BLOCK) + index / padded_block;
    let g = block / blocks_per_group;
    let o0 = g * p.out_per_group + (block % blocks_per_group) * BLOCK;
    let j0 = run * OUTS;
    // This block's group, intersected with the channels this dispatch holds.
    let c_lo = max(g * p.in_per_group, d.in_c_begin);
    let c_hi = min((g + 1u) * p.in_per_group, d.in_c_begin + d.in_channels);

//{declare}
    // This dispatch's slice of the reduction rows (channel c, kernel row a), in
    // order: the host keeps the loop under the driver's limit (src/gpu/runtime/loops.rs)
    // and later slices add onto this one.
    let rows = select(0u, (c_hi - c_lo) * p.kernel_h, c_hi > c_lo);
    let row_end = min(d.slice_end, rows);
    var c = c_lo + d.slice_begin / p.kernel_h;
    var a = d.slice_begin % p.kernel_h;
    var r = d.slice_begin;
//{check}
    // ROWS rows per step, so that each accumulator takes ROWS × KERNEL_W
    // multiply-adds between its loads and stores (llvmpipe keeps few of them
    // in registers).
    for (; r + ROWS <= row_end; r += ROWS) {
//{accumulate}
    }
//{remainder}

    // Output channels of this block that are in the group and in this dispatch.
    let o_lo = max(o0, d.out_c_begin);
    let o_hi = min(min(o0 + BLOCK, (g + 1u) * p.out_per_group), d.out_c_begin + d.out_channels);
    let count = select(0u, min(OUTS, p.out_w - j0), live);
//{store}
}
