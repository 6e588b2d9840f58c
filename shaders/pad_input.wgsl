// The blocked kernel's input: a padded copy of one chunk's input, the padding
// mode applied, rows `row_len` long (a multiple of 4, zero past the padded
// width) so that the kernel reads aligned vec4s with no index map of its own.
// One invocation per vec4 of the copy (`total` counts them; no loop over a row,
// whose length is the user's); a vec4 inside the data is two aligned vec4 loads
// of the input (bound twice: as floats and as vec4s), shifted.

@group(0) @binding(2) var<storage, read> input: array<f32>;
@group(0) @binding(3) var<storage, read_write> padded: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> input4: array<vec4<f32>>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let quad = invocation_index(wg, groups, local);
    if (quad >= d.total) {
        return;
    }
    let quads = d.row_len / 4u;
    let row = quad / quads;
    let y = row % p.padded_h;
    let plane = row / p.padded_h;
    let sy = source_coord(i32(y), p.lead_h, p.src_first_h, p.src_len_h);
    if (sy < 0) {
        padded[quad] = vec4<f32>(0.0);
        return;
    }
    let src = (plane * p.in_h + u32(sy)) * p.in_w;
    padded[quad] = padded_quad(src, (quad % quads) * 4u);
}

// Four padded columns from x0 of the source row starting at `src`.
fn padded_quad(src: u32, x0: u32) -> vec4<f32> {
    let t = i32(x0) - i32(p.lead_w);
    if (t >= 0 && t + 3 < i32(p.src_len_w) && x0 + 3u < p.padded_w) {
        let at = src + p.src_first_w + u32(t);
        let q = at / 4u;
        if (q + 1u < arrayLength(&input4)) {
            let a = input4[q];
            let b = input4[q + 1u];
            let r = at % 4u;
            var v = select(a, vec4<f32>(a.yzw, b.x), r == 1u);
            v = select(v, vec4<f32>(a.zw, b.xy), r == 2u);
            return select(v, vec4<f32>(a.w, b.xyz), r == 3u);
        }
    }
    var v = vec4<f32>(0.0);
    for (var q = 0u; q < 4u; q++) {
        let x = x0 + q;
        if (x < p.padded_w) {
            let sx = source_coord(i32(x), p.lead_w, p.src_first_w, p.src_len_w);
            if (sx >= 0) {
                v[q] = input[src + u32(sx)];
            }
        }
    }
    return v;
}
