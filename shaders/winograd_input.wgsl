// Winograd F(m×m, 3×3), input transform: V = Bᵀ x B for every input plane
// of the chunk and every m×m tile of the output, from the tile's ALPHA×ALPHA
// window of the padded input, read through the padding mode's index map
// (`source_coord`, every mode; its rows and columns once per tile); past the
// padded input it reads zeros (they feed outputs past the edge, never
// stored). A padded copy read as vec4s first was slower on llvmpipe. Laid
// out for the GEMM as ALPHA² planes of [channel][row] (winograd_tiles.wgsl):
// the GEMM's rows are as long as the chunk's batch makes them. One
// invocation per PER_INVOCATION tiles of a channel's row, their values
// stored together as one vec2 per position; the loads and the transform are
// unrolled (src/gpu/conv/forward/winograd/codegen.rs). (Reading each row of
// the window as two vec4s instead of six scalars gained 3%: the stores are
// what costs.)

@group(0) @binding(2) var<storage, read> input: array<f32>;
@group(0) @binding(3) var<storage, read_write> transformed: array<TileValues>;

//{constants}

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
    let places = places_of(index, d.in_channels);
//{load}
//{transform}
//{store}
}

// Where padded row (or column) `at` of a tile's plane reads from: its source
// index along the axis, or -1 for a zero (src_len 0: nothing to read; a tile
// that is not live reads nothing).
fn source_h(tile: Tile, at: u32) -> i32 {
    if (!tile.live || at >= p.padded_h) {
        return -1;
    }
    return source_coord(i32(at), p.lead_h, p.src_first_h, p.src_len_h);
}

fn source_w(at: u32) -> i32 {
    if (at >= p.padded_w) {
        return -1;
    }
    return source_coord(i32(at), p.lead_w, p.src_first_w, p.src_len_w);
}

// The input at source row `sy` and column `sx` of the plane at `base`; zero for -1.
fn read_input(base: u32, sy: i32, sx: i32) -> f32 {
    if (sy < 0 || sx < 0) {
        return 0.0;
    }
    return input[base + u32(sy) * p.in_w + u32(sx)];
}
