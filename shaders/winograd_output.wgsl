// Winograd F(m×m, 3×3), output transform: Y = Aᵀ M A for every output plane
// of the chunk and every m×m tile, added onto the bias (or, for a later block
// of input channels, onto what is stored), the outputs past the edge dropped.
// One invocation per PER_INVOCATION tiles of a channel's row, their products
// loaded together as one vec2 per position (winograd_tiles.wgsl); the
// transform is unrolled (src/gpu/conv/forward/winograd/codegen.rs). The
// output binding and its stores come from winograd_store_rows.wgsl where the
// output's rows are a whole number of tiles long (each tile row one vector
// store), else from winograd_store_each.wgsl (one store per output).

@group(0) @binding(2) var<storage, read> product: array<TileValues>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;

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
