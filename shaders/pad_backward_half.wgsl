// The padding's backward for the 16-bit dtypes, as PyTorch's CPU kernels do
// it: the gradient of the padded input (`source`, already rounded to the
// dtype) is added into the input gradient one copy at a time, each sum in f32
// rounded back to the dtype (c10::Half and c10::BFloat16 arithmetic), in
// PyTorch's order. Reflect and replicate: the pad's backward walks the padded
// positions in row-major order (ATen's cpu_padding_backward), so each input
// element sums its copies by padded row, then by padded column. Circular:
// `F.pad` copies the data into the centre, then the left and right columns,
// then the top and bottom rows (from the padded tensor itself: corners come
// from the column copies); autograd undoes that in reverse: bottom rows, top
// rows, right columns, left columns. Follows shaders/pad_backward.wgsl (its
// bindings, `copies_of` and `input_element`) and shaders/half_bits.wgsl (`round_to_dtype`).
// One invocation per input element (plane, y, x) of the block; a dispatch
// adds the slice [slice_begin, slice_end) of an element's copies, in order,
// onto what earlier ones stored (replicate's border can be longer than the
// driver's loop limit allows in one loop).

// The i-th padded position, in ascending order, that copies window index t:
// the run before the data, the interior one, the run after it.
fn ascending_copy(i: u32, t: u32, lead: u32, c: Copies) -> u32 {
    if (i < c.before_count) {
        return c.before_first + i;
    }
    if (i == c.before_count) {
        return lead + t;
    }
    return c.after_first + i - c.before_count - 1u;
}

fn padded_at(plane: u32, row: u32, column: u32) -> f32 {
    return source[(plane * p.padded_h + row) * p.padded_w + column];
}

// Circular, column `column` of the padded gradient: the window row t's
// value after autograd undid the bottom-rows copy, then the top-rows one.
fn circular_rows(plane: u32, t: u32, column: u32) -> f32 {
    let lead = p.lead_h;
    let trail = p.padded_h - lead - p.src_len_h;
    var acc = padded_at(plane, lead + t, column);
    if (t < trail) {
        acc = round_to_dtype(acc + padded_at(plane, lead + p.src_len_h + t, column));
    }
    if (t + lead >= p.src_len_h) {
        acc = round_to_dtype(acc + padded_at(plane, t + lead - p.src_len_h, column));
    }
    return acc;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn fold_half(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = invocation_index(wg, groups, local);
    if (index >= d.total) {
        return;
    }
    let e = input_element(index);
    if (!e.inside) {
        folded[index] = 0.0;
        return;
    }
    let plane = e.plane;
    let ty = e.t;
    let tx = e.u;
    if (p.padding_mode == MODE_CIRCULAR) {
        // At most three rows and three columns: one dispatch, no loop.
        if (d.slice_begin != 0u) {
            return;
        }
        let lead = p.lead_w;
        let trail = p.padded_w - lead - p.src_len_w;
        var acc = circular_rows(plane, ty, lead + tx);
        if (tx < trail) {
            acc = round_to_dtype(acc + circular_rows(plane, ty, lead + p.src_len_w + tx));
        }
        if (tx + lead >= p.src_len_w) {
            acc = round_to_dtype(acc + circular_rows(plane, ty, tx + lead - p.src_len_w));
        }
        folded[index] = acc;
        return;
    }
    let ch = copies_of(ty, p.lead_h, p.src_len_h, p.padded_h - p.lead_h - p.src_len_h);
    let cw = copies_of(tx, p.lead_w, p.src_len_w, p.padded_w - p.lead_w - p.src_len_w);
    let per_row = 1u + cw.before_count + cw.after_count;
    let count = (1u + ch.before_count + ch.after_count) * per_row;
    var acc = 0.0;
    if (d.accumulate != 0u) {
        acc = folded[index];
    }
    let end = min(d.slice_end, count);
    for (var k = d.slice_begin; k < end; k++) {
        let row = ascending_copy(k / per_row, ty, p.lead_h, ch);
        let column = ascending_copy(k % per_row, tx, p.lead_w, cw);
        acc = round_to_dtype(acc + padded_at(plane, row, column));
    }
    folded[index] = acc;
}
