// The blocked kernels' input: a padded copy of one chunk's input, the padding
// mode applied, rows `row_len` long (a multiple of 4, zero past the padded
// width) so that the kernel reads aligned vec4s with no index map of its own.
// One invocation per vec4 of the copy, in two entry points that run as two
// dispatches: `main_interior` for the vec4s whose four columns all lie inside
// the source window (columns [4·slice_begin, 4·slice_end) of every row), RUN
// of them along a row per invocation from RUN + 1 aligned vec4 loads of the
// input (bound twice: as floats and as vec4s), shifted; `main_border` for the
// others, column by column through the padding
// mode's index map. llvmpipe runs both arms of a branch under masks, so one
// entry point for both spent the border's loop on every vec4. `total` counts
// the dispatch's vec4s; no loop over a row, whose length is the user's. Each
// vec4 is stored as shaders/quad_f32.wgsl or shaders/quad_bf16.wgsl (`StoredQuad`)
// says: as four floats, or rounded to bfloat16 for `Precision::Medium`.

// Interior vec4s per invocation, set from Rust (`PAD_RUN`).
override RUN: u32;

@group(0) @binding(2) var<storage, read> input: array<f32>;
@group(0) @binding(3) var<storage, read_write> padded: array<StoredQuad>;
@group(0) @binding(4) var<storage, read> input4: array<vec4<f32>>;

// Where the source row of padded row `row` (of all planes) starts in the
// input, or -1 for a row of zero padding.
fn source_row(row: u32) -> i32 {
    let sy = source_coord(i32(row % p.padded_h), p.lead_h, p.src_first_h, p.src_len_h);
    return select(-1, i32(((row / p.padded_h) * p.in_h + u32(max(sy, 0))) * p.in_w), sy >= 0);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main_interior(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let k = invocation_index(wg, groups, local);
    if (k >= d.total) {
        return;
    }
    let inner = d.slice_end - d.slice_begin;
    let runs = (inner + RUN - 1u) / RUN;
    let row = k / runs;
    let quad = d.slice_begin + (k % runs) * RUN;
    // A row of zero padding reads a real row, then zeroes it: no branch.
    let start = source_row(row);
    let src = u32(max(start, 0));
    // The quads' columns 4·quad − lead + [0, 4·RUN) lie inside the source
    // window (those of the run's quads past slice_end are not stored): the
    // vec4s holding them are inside the buffer (rounded to whole vec4s).
    let at = src + p.src_first_w + quad * 4u - p.lead_w;
    let q = at / 4u;
    let r = at % 4u;
    let out = row * (d.row_len / 4u) + quad;
    var a = input4[q];
    for (var e = 0u; e < RUN; e++) {
        let b = input4[q + e + 1u];
        if (quad + e < d.slice_end) {
            padded[out + e] = stored_quad(select(vec4<f32>(0.0), shifted(a, b, r), start >= 0));
        }
        a = b;
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main_border(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let k = invocation_index(wg, groups, local);
    if (k >= d.total) {
        return;
    }
    let quads = d.row_len / 4u;
    let inner = d.slice_end - d.slice_begin;
    let outer = quads - inner;
    let row = k / outer;
    let j = k % outer;
    let quad = select(j + inner, j, j < d.slice_begin);
    let start = source_row(row);
    var v = vec4<f32>(0.0);
    if (start >= 0) {
        let src = u32(start);
        for (var q = 0u; q < 4u; q++) {
            let x = quad * 4u + q;
            if (x < p.padded_w) {
                let sx = source_coord(i32(x), p.lead_w, p.src_first_w, p.src_len_w);
                if (sx >= 0) {
                    v[q] = input[src + u32(sx)];
                }
            }
        }
    }
    padded[row * quads + quad] = stored_quad(v);
}
