// Winograd F(m×m, 3×3), output transform: Y = Aᵀ M A for every output plane
// of the chunk and every m×m tile, added onto the bias (or, for a later block
// of input channels, onto what is stored), the outputs past the edge dropped.
// One invocation per (plane, tile); the transform is unrolled
// (src/gpu/conv/forward/winograd/codegen.rs), the tile arithmetic is
// winograd_tiles.wgsl's.

@group(0) @binding(2) var<storage, read> product: array<f32>;
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
    let tile = tile_of(index, d.out_channels);
    let plane = tile.plane;
    let o = d.out_c_begin + tile.channel;
    let y0 = tile.y0;
    let x0 = tile.x0;
    let stride = tile.stride;
    let source = tile.at;
//{load}
//{transform}
    var start = 0.0;
    if (p.has_bias != 0u) {
        start = bias[o];
    }
//{store}
}

// Adds `value` onto the bias, or onto what an earlier block of input channels stored.
fn store_output(plane: u32, y: u32, x: u32, start: f32, value: f32) {
    if (y >= p.out_h || x >= p.out_w) {
        return;
    }
    let at = (plane * p.out_h + y) * p.out_w + x;
    if (d.accumulate != 0u) {
        output[at] = output[at] + value;
    } else {
        output[at] = start + value;
    }
}
