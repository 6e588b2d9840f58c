// The Winograd output transform's stores where the output's rows are a whole
// number of tiles long (out_w a multiple of TILE): each row of a tile is one
// vector of TILE outputs, aligned, and never past the row's end, so it is one
// store. llvmpipe runs every storage access as a loop over the lanes, so
// one access per row instead of one per output pays (the output transform of
// 8×64×56×56 took 4.2 ms this way, 6.9 one output at a time;
// docs/benchmarks.md).

@group(0) @binding(4) var<storage, read_write> output: array<TileRow>;

// Adds `value` at row `i` of `tile` (of this invocation's channel) onto the
// bias, or onto what an earlier block of input channels stored; nothing for
// a tile that is not live or a row past the edge.
fn store_row(tile: Tile, channel: u32, i: u32, start: f32, value: TileRow) {
    let y = tile.y0 + i;
    if (!tile.live || y >= p.out_h) {
        return;
    }
    let at = output_index(tile, channel, i, 0u) / TILE;
    if (d.accumulate != 0u) {
        output[at] = output[at] + value;
    } else {
        output[at] = TileRow(start) + value;
    }
}
