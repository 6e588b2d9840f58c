// The Winograd output transform's stores, one per output: for output rows
// that are not a whole number of tiles long.

@group(0) @binding(4) var<storage, read_write> output: array<f32>;

// Adds `value` at row `i`, column `j` of `tile` (of this invocation's
// channel) onto the bias, or onto what an earlier block of input channels
// stored; nothing for a tile that is not live or past the edge.
fn store_output(tile: Tile, channel: u32, i: u32, j: u32, start: f32, value: f32) {
    let y = tile.y0 + i;
    let x = tile.x0 + j;
    if (!tile.live || y >= p.out_h || x >= p.out_w) {
        return;
    }
    let at = output_index(tile, channel, i, j);
    if (d.accumulate != 0u) {
        output[at] = output[at] + value;
    } else {
        output[at] = start + value;
    }
}
