// Shared by the Winograd input and output transforms (and the product, for
// the length of a row): which tiles of which channel an invocation
// transforms, and where their values sit in the GEMM's rows. Per transformed position, the GEMM has one row per channel, holding
// the tiles of every batch item in turn, rounded up to 4 for its vec4 loads.
// Each invocation takes PER_INVOCATION (2) consecutive places of one
// channel's row and moves their values as one vec2 per position: llvmpipe
// loads and stores lane by lane, each access paying its own loop over the
// lanes, so one vec2 costs far less than two scalars (the input transform of
// 8×64×56×56 took 10.6–11.9 ms with one tile per invocation, 7.0–8.1 with
// two; four, as one vec4, gained nothing more and doubled the code). A row's
// length is a multiple of 4, so the two places never straddle two channels.
// TILE and PER_INVOCATION come from the generated constants.

struct Places {
    // The channel (in this dispatch's block) whose row the places are in.
    channel: u32,
    // The first place's index in the channel's row.
    first: u32,
    // Where the first place's value sits in one transformed position's rows:
    // channel·row + first.
    at: u32,
    // Length of one position's rows, all channels: the stride between positions.
    stride: u32,
}

// The tiles per batch item's plane, in rows of `tiles_w`.
fn tiles_w() -> u32 {
    return (p.out_w + TILE - 1u) / TILE;
}

fn tiles_per_plane() -> u32 {
    return tiles_w() * ((p.out_h + TILE - 1u) / TILE);
}

// A channel's row: every batch item's tiles in turn, rounded up to 4.
fn row_len() -> u32 {
    return (d.batch * tiles_per_plane() + 3u) / 4u * 4u;
}

fn places_of(index: u32, channels: u32) -> Places {
    let row = row_len();
    let per_row = row / PER_INVOCATION;
    var places: Places;
    places.channel = index / per_row;
    places.first = (index % per_row) * PER_INVOCATION;
    places.at = places.channel * row + places.first;
    places.stride = channels * row;
    return places;
}

struct Tile {
    // Batch item of the tile, and its first output row and column.
    n: u32,
    y0: u32,
    x0: u32,
    // False for the row's padding past the last batch item's tiles: read as
    // zeros, never stored.
    live: bool,
}

fn tile_at(place: u32) -> Tile {
    let tiles = tiles_per_plane();
    let t = place % tiles;
    var tile: Tile;
    tile.n = place / tiles;
    tile.y0 = (t / tiles_w()) * TILE;
    tile.x0 = (t % tiles_w()) * TILE;
    tile.live = tile.n < d.batch;
    return tile;
}

// Where output row `i`, column `j` of `tile`, of output channel `channel` in
// this dispatch's block, sits in the output.
fn output_index(tile: Tile, channel: u32, i: u32, j: u32) -> u32 {
    return ((tile.n * d.out_channels + channel) * p.out_h + tile.y0 + i) * p.out_w + tile.x0 + j;
}
