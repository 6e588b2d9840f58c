// The padding's backward: one invocation per input element, adding up every
// padded position that copied it (the interior one and, for reflect, replicate
// and circular, those in the border), in a fixed order.

@group(0) @binding(1) var<storage, read> grad_padded: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad_input: array<f32>;

// The k-th padded position along one axis that copies source index `s`, or -1:
// k = 0 is the interior position, k = 1.. walks the border [0, lead) then [lead + len, padded).
fn padded_candidate(k: u32, s: u32, lead: u32, first: u32, len: u32, padded: u32) -> i32 {
    if (k == 0u) {
        if (s < first || s >= first + len) {
            return -1;
        }
        return i32(lead + s - first);
    }
    var pos = k - 1u;
    if (pos >= lead) {
        pos = pos + len;
    }
    if (pos >= padded || source_coord(i32(pos), lead, first, len) != i32(s)) {
        return -1;
    }
    return i32(pos);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = invocation_index(wg, groups, local);
    if (index >= p.total) {
        return;
    }
    let x = index % p.in_w;
    var rest = index / p.in_w;
    let y = rest % p.in_h;
    let plane = rest / p.in_h;

    // Zero padding copies nothing; the other modes copy from every border position.
    var rows = 1u;
    var cols = 1u;
    if (p.padding_mode != MODE_ZEROS) {
        rows = 1u + p.padded_h - p.src_len_h;
        cols = 1u + p.padded_w - p.src_len_w;
    }
    let base = plane * p.padded_h * p.padded_w;
    var acc = 0.0;
    for (var kr = 0u; kr < rows; kr++) {
        let r = padded_candidate(kr, y, p.lead_h, p.src_first_h, p.src_len_h, p.padded_h);
        if (r < 0) {
            continue;
        }
        for (var kc = 0u; kc < cols; kc++) {
            let c = padded_candidate(kc, x, p.lead_w, p.src_first_w, p.src_len_w, p.padded_w);
            if (c >= 0) {
                acc = acc + grad_padded[base + u32(r) * p.padded_w + u32(c)];
            }
        }
    }
    grad_input[index] = acc;
}
