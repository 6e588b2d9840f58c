// Depthwise Conv2d forward (groups == in_channels): each invocation computes
// 4 * VECS adjacent outputs along a row of one output channel for up to ROWS
// output rows, one row after another, reading the input directly with no
// padded copy.
//
// It walks down the input rows those outputs read, one row per pass of its
// one loop, and keeps the last WINDOW rows (the kernel's height, dilated) in
// registers, so each input row is read once per strip of outputs. Strips
// whose columns lie inside the source window (the interior) and strips that
// reach into the padding (the border) run in separate dispatches of two
// variants: the interior one reads each row as aligned vec4 loads shifted
// into place (loads, not FMAs, bound a depthwise layer, and on llvmpipe every
// per-lane load is a loop over the lanes); the border one column by column
// through the padding mode's index map. llvmpipe runs both arms of a branch
// under masks, so one kernel with both paths spent the border's cost
// everywhere. The row load has one call site and the border path is a loop
// over columns, so the index map is compiled once per kernel: with one copy
// per column of every window row, SwiftShader took minutes to compile a 3x3
// stride-2 variant. The channel's taps are loaded once into registers.
//
// Loops: (ROWS - 1) * STRIDE_H + WINDOW row passes; in the border variant a
// column loop of SPAN iterations for each row loaded and once for its column
// map. src/gpu/conv/forward/depthwise/mod.rs (`loop_passes`) keeps the total
// under the driver's loop limit for every variant it makes. Each output sums
// one input channel's taps, so there is no reduction to slice. The rest is
// unrolled for the variant (kernel size, stride and dilation, outputs per
// row) by src/gpu/conv/forward/depthwise/codegen.rs, which fills in the
// marked lines.

// A float32 call reads and writes f32s; a float16 or bfloat16 one reads and
// writes its packed 16-bit values (two per u32 word), widens each to f32,
// accumulates in f32 and rounds each output once (shaders/half_bits.wgsl
// comes first then).
@group(0) @binding(2) var<storage, read> input: array<InputUnit>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> output: array<OutputUnit>;
// The input again, as vec4s (read-only bindings may alias).
@group(0) @binding(6) var<storage, read> input4: array<vec4<InputUnit>>;

//{constants}

// The border kernel's source column for each of its span's columns (-1 for a
// zero of zeros padding), through the padding mode's index map: the same for
// every row, so made once per invocation. Columns past the padded width
// belong to outputs past the row's end, which are never stored; they read
// the last column instead of leaving the row.
var<private> column_map: array<i32, SPAN_PADDED>;

fn map_columns(x0: u32) {
    for (var x = 0u; x < SPAN; x++) {
        column_map[x] = source_coord_in(MODE, i32(min(x0 + x, p.padded_w - 1u)), p.lead_w, p.src_first_w, p.src_len_w);
    }
}

// Output rows per invocation, set from Rust.
override ROWS: u32;

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
    // The dispatch's strips of columns: runs [slice_begin, slice_end) for
    // the interior variant, the others for the border one.
    let strips = (p.out_h + ROWS - 1u) / ROWS;
    let inner = d.slice_end - d.slice_begin;
    let runs = select((p.out_w + OUTS - 1u) / OUTS - inner, inner, INTERIOR);
    let strip = index % strips;
    var rest = index / strips;
    let k = rest % runs;
    rest = rest / runs;
    let run = select(select(k + inner, k, k < d.slice_begin), d.slice_begin + k, INTERIOR);
    let oc = rest % d.out_channels;
    let n = rest / d.out_channels;
    let o = d.out_c_begin + oc;
    // One input channel per group: output channel o reads channel o / out_per_group.
    // A split call may bind a block of input channels without this one (its
    // outputs are summed over several dispatches): then this dispatch adds
    // nothing, not even a zero times a weight (an Inf weight would make NaN).
    let c = o / p.out_per_group;
    let held = c >= d.in_c_begin && c < d.in_c_begin + d.in_channels;
    let plane = (n * d.in_channels + select(0u, c - d.in_c_begin, held)) * p.in_h * p.in_w;
    let i0 = strip * ROWS;
    let j0 = run * OUTS;
    let x0 = j0 * STRIDE_W;
    let t0 = i32(x0) - i32(p.lead_w);
    var b = 0.0;
    if (p.has_bias != 0u) {
        b = bias[o];
    }
    let out_plane = (n * d.out_channels + oc) * p.out_h;

//{declare}
    let rows = min(ROWS, p.out_h - i0);
    // Padded input rows from the strip's first output row's window to its
    // last one's, each loaded once into the window's newest slot.
    let y0 = i0 * STRIDE_H;
    let count = (rows - 1u) * STRIDE_H + WINDOW;
    for (var t = 0u; t < count; t++) {
//{slide}
        // Output row r's window ends at row t = r * STRIDE_H + WINDOW - 1.
        if (t + 1u >= WINDOW && (t + 1u - WINDOW) % STRIDE_H == 0u) {
            let i = i0 + (t + 1u - WINDOW) / STRIDE_H;
//{body}
        }
    }
}

// One span of the input row at padded coordinate `y`: SPAN columns from
// padded column x0, in SPAN_VECS vec4s (zeros past SPAN).
fn load_span(plane: u32, y: u32, x0: u32, t0: i32) -> Span {
    var s: Span;
    let sy = source_coord_in(MODE, i32(min(y, p.padded_h - 1u)), p.lead_h, p.src_first_h, p.src_len_h);
    // A row of zero padding reads a real row, then zeroes it: no branch.
    let keep = sy >= 0;
    let row = plane + u32(max(sy, 0)) * p.in_w;
//{load}
    return s;
}
