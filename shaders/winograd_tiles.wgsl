// Shared by the Winograd input and output transforms: which tile of which
// plane an invocation transforms, and where its values sit in the GEMM's
// rows (a channel's row holds the tiles of every batch item in turn, rounded
// up to 4 for vec4 loads). TILE comes from the generated constants.

struct Tile {
    // Index of the tile in its plane, and of the plane in the chunk.
    t: u32,
    plane: u32,
    // Batch item and channel of the plane (`channels` per batch item).
    n: u32,
    channel: u32,
    // The tile's first output row and column.
    y0: u32,
    x0: u32,
    // Where the tile's values go (or come from) in one transformed position's
    // rows: channel·row + n·tiles + t.
    at: u32,
    // Length of one such row of all channels: the stride between positions.
    stride: u32,
}

fn tile_of(index: u32, channels: u32) -> Tile {
    let tiles_w = (p.out_w + TILE - 1u) / TILE;
    let tiles = tiles_w * ((p.out_h + TILE - 1u) / TILE);
    let row = (d.batch * tiles + 3u) / 4u * 4u;
    var tile: Tile;
    tile.t = index % tiles;
    tile.plane = index / tiles;
    tile.n = tile.plane / channels;
    tile.channel = tile.plane % channels;
    tile.y0 = (tile.t / tiles_w) * TILE;
    tile.x0 = (tile.t % tiles_w) * TILE;
    tile.at = tile.channel * row + tile.n * tiles + tile.t;
    tile.stride = channels * row;
    return tile;
}
