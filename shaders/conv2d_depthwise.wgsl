// Depthwise Conv2d forward (groups == in_channels): each invocation computes
// 4 * VECS adjacent outputs along a row of one output channel for up to ROWS
// output rows, one row after another, reading the input directly with no
// padded copy.
//
// It walks down the input rows those outputs read, one row per pass of its
// one loop, and keeps the last WINDOW rows (the kernel's height, dilated) in
// registers, so each input row is read once per strip of outputs: inside the
// source window as aligned vec4 loads shifted into place (loads, not FMAs,
// bound a depthwise layer, and on llvmpipe every per-lane load is a loop over
// the lanes); where a row reaches into the padding, column by column through
// the padding mode's index map. The row load has one call site and its border
// path is a loop over columns, so the map is compiled once per kernel: with
// one copy per column of every window row, SwiftShader took minutes to
// compile a 3x3 stride-2 variant. Invocations are numbered column strip
// first, so the strips at the left and right borders sit side by side and
// their lanes take the same branch. The channel's taps are loaded once into
// registers.
//
// Loops: (ROWS - 1) * STRIDE_H + WINDOW row passes, each with a column loop
// of SPAN iterations; src/gpu/conv/forward/depthwise/mod.rs keeps the total
// under the driver's loop limit for every variant it makes. Each output sums
// one input channel's taps, so there is no reduction to slice. The rest is
// unrolled for the variant (kernel size, stride and dilation, outputs per
// row) by src/gpu/conv/forward/depthwise/codegen.rs, which fills in the
// marked lines.

@group(0) @binding(2) var<storage, read> input: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> output: array<OutputUnit>;
// The input again, as vec4s (read-only bindings may alias).
@group(0) @binding(6) var<storage, read> input4: array<vec4<f32>>;

//{constants}

// Four floats starting `shift` floats into `a`, running on into `b`.
fn shifted(a: vec4<f32>, b: vec4<f32>, shift: u32) -> vec4<f32> {
    var v = select(a, vec4<f32>(a.yzw, b.x), shift == 1u);
    v = select(v, vec4<f32>(a.zw, b.xy), shift == 2u);
    return select(v, vec4<f32>(a.w, b.xyz), shift == 3u);
}

// Padded column `x` of the source row starting at `row`, through the padding
// mode's index map (zero outside the data for zeros padding). Columns past
// the padded width belong to outputs past the row's end, which are never
// stored; they read the last column instead of leaving the row.
fn column(row: u32, x: u32) -> f32 {
    let sx = source_coord(i32(min(x, p.padded_w - 1u)), p.lead_w, p.src_first_w, p.src_len_w);
    if (sx < 0) {
        return 0.0;
    }
    return input[row + u32(sx)];
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
    let strips = (p.out_h + ROWS - 1u) / ROWS;
    let runs = (p.out_w + OUTS - 1u) / OUTS;
    let strip = index % strips;
    var rest = index / strips;
    let run = rest % runs;
    rest = rest / runs;
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
    // The aligned loads of the last source row stay inside the buffer.
    let last = plane + (p.src_first_h + p.src_len_h - 1u) * p.in_w + p.src_first_w + u32(max(t0, 0));
    let aligned = t0 >= 0 && t0 + i32(SPAN) <= i32(p.src_len_w)
        && last / 4u + SPAN_VECS < arrayLength(&input4);
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
// padded column x0, in SPAN_VECS vec4s (zeros past SPAN). `aligned`: the
// strip's columns lie inside the source window and its aligned loads inside
// the buffer (checked once per invocation, for its last row).
fn load_span(plane: u32, y: u32, x0: u32, t0: i32, aligned: bool) -> Span {
    var s: Span;
    let sy = source_coord(i32(min(y, p.padded_h - 1u)), p.lead_h, p.src_first_h, p.src_len_h);
    // A row of zero padding reads a real row, then zeroes it: no branch.
    let keep = sy >= 0;
    let row = plane + u32(max(sy, 0)) * p.in_w;
    if (aligned) {
        let f = row + p.src_first_w + u32(t0);
        let q = f / 4u;
        let shift = f % 4u;
//{aligned}
    } else {
        var cols: array<f32, SPAN_PADDED>;
        for (var x = 0u; x < SPAN; x++) {
            cols[x] = column(row, x0 + x);
        }
//{columns}
    }
    return s;
}
