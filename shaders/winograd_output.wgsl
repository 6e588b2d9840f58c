// Winograd F(m×m, 3×3), output transform: Y = Aᵀ M A for every output plane
// of the chunk and every m×m tile, added onto the bias (or, for a later block
// of input channels, onto what is stored), the outputs past the edge dropped.
// One invocation per PER_INVOCATION tiles of a channel's row, their products
// loaded together as one vec2 per position (winograd_tiles.wgsl); the
// transform is unrolled (src/gpu/conv/forward/winograd/codegen.rs).

@group(0) @binding(2) var<storage, read> product: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> output: array<f32>;

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
    let places = places_of(index, d.out_channels);
    var start = 0.0;
    if (p.has_bias != 0u) {
        start = bias[d.out_c_begin + places.channel];
    }
//{load}
//{transform}
//{store}
}

// Adds `value` at row `i`, column `j` of `tile` (of this invocation's
// channel) onto the bias, or onto what an earlier block of input channels
// stored; nothing for a tile that is not live or past the edge.
fn store_output(tile: Tile, channel: u32, i: u32, j: u32, start: f32, value: f32) {
    let y = tile.y0 + i;
    let x = tile.x0 + j;
    if (!tile.live || y >= p.out_h || x >= p.out_w) {
        return;
    }
    let at = ((tile.n * d.out_channels + channel) * p.out_h + y) * p.out_w + x;
    if (d.accumulate != 0u) {
        output[at] = output[at] + value;
    } else {
        output[at] = start + value;
    }
}
