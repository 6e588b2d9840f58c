// Winograd F(m×m, 3×3), the multiplication in the transformed domain: for
// each of the ALPHA² planes ξ, a block of KB output channels of one group and
// TV vec4s of a row of tiles (winograd_input.wgsl), M[ξ][k][tile] =
// Σ_c U[ξ][g, c][k] · V[ξ][c][tile], c over the group's input channels in
// this chunk. Per
// channel it loads TV vec4s of V and KB/4 vec4s of U and does KB·TV vec4 FMAs
// in registers (unrolled: src/gpu/conv/forward/winograd/codegen.rs). The
// loop over channels is this dispatch's slice (the driver's loop limit,
// src/gpu/runtime/loops.rs); later slices add onto earlier ones.
//
// With LANES > 0 (the adapter's fixed subgroup width) a channel's KB/4 vec4s
// of U are loaded once per subgroup, one per lane, and broadcast: every
// invocation of a subgroup needs the same ones, since each (ξ, block)'s runs
// are padded to a multiple of LANES (the padding runs store nothing). The
// sums and their order are the plain kernel's.

@group(0) @binding(2) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> weight: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> product: array<vec4<f32>>;

//{constants}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
//{lane}
) {
    // Invocations past the last stay where lanes share loads, clamped onto
    // the last, so that every lane of a subgroup takes part; they store nothing.
    let live = invocation_index(wg, groups, local) < d.total;
    if (LANES == 0u && !live) {
        return;
    }
    let index = min(invocation_index(wg, groups, local), d.total - 1u);
    // A channel's row (winograd_tiles.wgsl), in vec4s of tiles.
    let quads = row_len() / 4u;
    let real_runs = (quads + TV - 1u) / TV;
    let runs = padded_to_lanes(real_runs);
    let run = index % runs;
    var rest = index / runs;
    // Blocks of KB output channels are numbered over all groups; this chunk's
    // first is the one holding out_c_begin.
    let blocks_per_group = (p.out_per_group + KB - 1u) / KB;
    let last_o = d.out_c_begin + d.out_channels - 1u;
    let first = out_block(d.out_c_begin, KB);
    let blocks = out_block(last_o, KB) - first + 1u;
    let block = first + rest % blocks;
    let xi = rest / blocks;
    let g = block / blocks_per_group;
    let k0 = (block % blocks_per_group) * KB;
    let c_lo = max(g * p.in_per_group, d.in_c_begin);
    let c_hi = min((g + 1u) * p.in_per_group, d.in_c_begin + d.in_channels);
//{declare}
    // Where channel c's vec4s of V and U start, less c's offsets: the
    // padding runs read the last real run's.
    let at0 = xi * d.in_channels * quads + min(run, real_runs - 1u) * TV;
    let wt0 = ((xi * p.groups + g) * blocks_per_group + block % blocks_per_group) * p.in_per_group * (KB / 4u);
    let c_end = min(c_hi, c_lo + d.slice_end);
//{check}
    for (var c = c_lo + d.slice_begin; c < c_end; c++) {
        let at = at0 + (c - d.in_c_begin) * quads;
        let wt = wt0 + (c - g * p.in_per_group) * (KB / 4u);
//{accumulate}
    }
    let o0 = g * p.out_per_group + k0;
    let o_lo = max(o0, d.out_c_begin);
    let o_hi = min(min(o0 + KB, (g + 1u) * p.out_per_group), d.out_c_begin + d.out_channels);
//{store}
}

// Stores one vec4 of tiles of output channel `o`, onto what an earlier slice
// stored when this dispatch accumulates.
fn store_product(xi: u32, o: u32, q: u32, quads: u32, value: vec4<f32>) {
    let at = (xi * d.out_channels + o - d.out_c_begin) * quads + q;
    var sum = value;
    if (d.accumulate != 0u) {
        sum = product[at] + value;
    }
    product[at] = select(vec4<f32>(poison()), sum, sound);
}
