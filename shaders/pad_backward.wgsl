// The padding's backward, one axis at a time: every input element adds up the
// padded positions that copied it (the interior one and, for reflect,
// replicate and circular, those in the border), first along the rows of the
// padded gradient (`fold_columns`: padded width → source window width), then
// down its columns (`fold_rows`: padded height → the input, zero where negative
// padding cropped). The positions are enumerated directly, not searched for:
// k = 0 the interior one, then those before the data, then those after. A
// dispatch adds the slice [slice_begin, slice_end) of them onto what earlier
// ones stored (`accumulate`): replicate's border can be longer than the
// driver's loop limit allows in one loop (src/gpu/runtime/loops.rs).

@group(0) @binding(2) var<storage, read> source: array<f32>;
@group(0) @binding(3) var<storage, read_write> folded: array<f32>;

// The border positions along one axis that copy window index t: a run before
// the data and a run after it.
struct Copies {
    before_first: u32,
    before_count: u32,
    after_first: u32,
    after_count: u32,
}

// For an axis with `lead` padded positions before a window of `len` source
// positions and `trail` after; geometry checks guarantee one reflection or
// wrap is enough (reflect: pad < len; circular: pad <= len).
fn copies_of(t: u32, lead: u32, len: u32, trail: u32) -> Copies {
    var c = Copies(0u, 0u, 0u, 0u);
    switch p.padding_mode {
        case MODE_REFLECT: {
            if (t >= 1u && t <= lead) {
                c.before_first = lead - t;
                c.before_count = 1u;
            }
            if (t + 2u <= len && len - 2u - t < trail) {
                c.after_first = lead + 2u * (len - 1u) - t;
                c.after_count = 1u;
            }
        }
        case MODE_REPLICATE: {
            if (t == 0u) {
                c.before_count = lead;
            }
            if (t + 1u == len) {
                c.after_first = lead + len;
                c.after_count = trail;
            }
        }
        case MODE_CIRCULAR: {
            if (t + lead >= len) {
                c.before_first = lead + t - len;
                c.before_count = 1u;
            }
            if (t < trail) {
                c.after_first = lead + len + t;
                c.after_count = 1u;
            }
        }
        default: {}
    }
    return c;
}

// The k-th padded position copying window index t (k < 1 + before + after).
fn copy_position(k: u32, t: u32, lead: u32, c: Copies) -> u32 {
    if (k == 0u) {
        return lead + t;
    }
    if (k - 1u < c.before_count) {
        return c.before_first + k - 1u;
    }
    return c.after_first + k - 1u - c.before_count;
}

// One invocation per (plane, padded row, window column t): source is the padded
// gradient [plane][padded_h][padded_w], folded is [plane][padded_h][src_len_w].
@compute @workgroup_size(WORKGROUP_SIZE)
fn fold_columns(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = invocation_index(wg, groups, local);
    if (index >= d.total) {
        return;
    }
    let t = index % p.src_len_w;
    let padded_row = index / p.src_len_w;
    let trail = p.padded_w - p.lead_w - p.src_len_w;
    let c = copies_of(t, p.lead_w, p.src_len_w, trail);
    var acc = 0.0;
    if (d.accumulate != 0u) {
        acc = folded[index];
    }
    let end = min(d.slice_end, 1u + c.before_count + c.after_count);
    for (var k = d.slice_begin; k < end; k++) {
        acc = acc + source[padded_row * p.padded_w + copy_position(k, t, p.lead_w, c)];
    }
    folded[index] = acc;
}

// An input element of the block, by its index: its plane, its position
// (t, u) in the source window, and whether it is inside the window (outside,
// negative padding cropped it: its gradient is 0).
struct InputElement {
    plane: u32,
    t: u32,
    u: u32,
    inside: bool,
}

fn input_element(index: u32) -> InputElement {
    let x = index % p.in_w;
    let rest = index / p.in_w;
    let y = rest % p.in_h;
    let inside = x >= p.src_first_w && x - p.src_first_w < p.src_len_w
        && y >= p.src_first_h && y - p.src_first_h < p.src_len_h;
    return InputElement(rest / p.in_h, y - min(y, p.src_first_h), x - min(x, p.src_first_w), inside);
}

// One invocation per input element (plane, y, x): source is fold_columns'
// result [plane][padded_h][src_len_w], folded the input gradient.
@compute @workgroup_size(WORKGROUP_SIZE)
fn fold_rows(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = invocation_index(wg, groups, local);
    if (index >= d.total) {
        return;
    }
    let e = input_element(index);
    let plane = e.plane;
    let t = e.t;
    let column = e.u;
    let inside = e.inside;
    var acc = 0.0;
    if (d.accumulate != 0u) {
        acc = folded[index];
    }
    let trail = p.padded_h - p.lead_h - p.src_len_h;
    let c = copies_of(t, p.lead_h, p.src_len_h, trail);
    let end = select(0u, min(d.slice_end, 1u + c.before_count + c.after_count), inside);
    for (var k = d.slice_begin; k < end; k++) {
        let row = plane * p.padded_h + copy_position(k, t, p.lead_h, c);
        acc = acc + source[row * p.src_len_w + column];
    }
    folded[index] = acc;
}
