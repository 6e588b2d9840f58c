// Weight gradient as a tiled GEMM, per group: for one block of output
// positions pos = (n, i, j),
//     partials[block][o, k] = Σ_pos grad_output[o, pos] · X[k, pos]
// with k = (input channel of the group, kernel row, kernel column) and X the
// padded input at the tap k of the output pos, gathered through the padding
// index map (never built). Each workgroup computes a TILE × TILE tile of
// (o, k) over its block: per step it loads BK positions of grad_output (TILE
// channels) and of the gathered input (TILE columns k) into workgroup memory,
// and every invocation accumulates a 4 × 4 register block. A second pass
// (reduce_splits.wgsl) adds the blocks in order: no atomics, the same bits
// every run, and every invocation's loop is at most `split_len` positions
// (the driver's loop limit, src/gpu/runtime/loops.rs).
//
// The workgroups of one block run over (group, channel tile, column tile) of
// the dispatch's output channels [out_c_begin, +out_channels). The input
// buffer holds the channels [in_c_begin, +in_channels) only: columns k of
// other channels sum to 0 here and get their share from another dispatch.
//
// Built for TILE · BK = 4 · WORKGROUP_SIZE (checked in Rust): each invocation
// loads four values of each tile per step, at one position, and keeps their
// offsets in vec4 registers.

@group(0) @binding(2) var<storage, read> input: array<f32>;
@group(0) @binding(3) var<storage, read> grad_output: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;

// Output channels and weight columns per workgroup (each side of the tile),
// and the positions loaded per step: set from Rust (src/gpu/conv/backward/
// grad_weight/gemm.rs). The workgroup is (TILE / 4)² invocations, each with a
// 4 × 4 register block.
override TILE: u32;
override BK: u32;

var<workgroup> tile_g: array<f32, TILE * BK>; // [BK][TILE]: grad_output, by channel
var<workgroup> tile_x: array<f32, TILE * BK>; // [BK][TILE]: gathered input, by column k

// The padded input at offset (dy, dx) from the window's corner (row0, col0) in
// the plane starting at `plane`, or 0 where the padding is zeros or `ok` is false.
fn gather(ok: bool, plane: u32, row0: i32, col0: i32, dy: i32, dx: i32) -> f32 {
    if (!ok) {
        return 0.0;
    }
    let y = source_coord(row0 + dy, p.lead_h, p.src_first_h, p.src_len_h);
    let x = source_coord(col0 + dx, p.lead_w, p.src_first_w, p.src_len_w);
    if (y < 0 || x < 0) {
        return 0.0;
    }
    return input[plane + u32(y) * p.in_w + u32(x)];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    // `total` counts invocations: WORKGROUP_SIZE per tile, every tile of every
    // block (a multiple of WORKGROUP_SIZE; dividing it cannot wrap as
    // multiplying the workgroup index could).
    let wid = wg.y * groups.x + wg.x;
    if (wid >= d.total / WORKGROUP_SIZE) {
        return;
    }
    let taps = p.kernel_h * p.kernel_w;
    let row_len = p.in_per_group * taps;
    let m_tiles = (min(p.out_per_group, d.out_channels) + TILE - 1u) / TILE;
    let k_tiles = (row_len + TILE - 1u) / TILE;
    let first_group = d.out_c_begin / p.out_per_group;
    let dispatch_groups = (d.out_c_begin + d.out_channels - 1u) / p.out_per_group - first_group + 1u;
    let tiles = dispatch_groups * m_tiles * k_tiles;
    let block = wid / tiles;
    var rest = wid % tiles;
    let k_tile = (rest % k_tiles) * TILE;
    rest = rest / k_tiles;
    let g = first_group + rest / m_tiles;
    let o_first = max(g * p.out_per_group, d.out_c_begin);
    let o_end = min((g + 1u) * p.out_per_group, d.out_c_begin + d.out_channels);
    let o_tile = o_first + (rest % m_tiles) * TILE;

    let plane_out = p.out_h * p.out_w;
    let in_plane = p.in_h * p.in_w;
    let begin = d.slice_begin + block * d.split_len;
    let end = min(begin + d.split_len, d.slice_end);

    // What this invocation loads each step: position `pp` of the step, and
    // rows lane + r · (TILE / 4) of both tiles (r = 0..3: the vec4 lanes).
    let pp = local % BK;
    let lane = local / BK;
    let rows = vec4<u32>(0u, 1u, 2u, 3u) * (TILE / 4u) + vec4<u32>(lane);
    // Its output channels (offsets into a batch item of grad_output)...
    let o = vec4<u32>(o_tile) + rows;
    let o_ok = o < vec4<u32>(o_end);
    let g_offset = (o - vec4<u32>(d.out_c_begin)) * plane_out;
    // ...and its weight columns: input channel plane and tap offsets.
    let k = vec4<u32>(k_tile) + rows;
    let c = vec4<u32>(g * p.in_per_group) + k / taps;
    let t = k % taps;
    let dy = vec4<i32>((t / p.kernel_w) * p.dilation_h);
    let dx = vec4<i32>((t % p.kernel_w) * p.dilation_w);
    let x_ok = (k < vec4<u32>(row_len)) & (c >= vec4<u32>(d.in_c_begin))
        & (c < vec4<u32>(d.in_c_begin + d.in_channels));
    let x_offset = (c - vec4<u32>(d.in_c_begin)) * in_plane;

    let side = TILE / 4u;
    let tx = local % side;
    let ty = local / side;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);

    for (var p0 = begin; p0 < end; p0 += BK) {
        let pos = p0 + pp;
        let live = pos < end;
        let n = pos / plane_out;
        let rem = pos % plane_out;
        let row0 = i32((rem / p.out_w) * p.stride_h);
        let col0 = i32((rem % p.out_w) * p.stride_w);
        let g_base = n * d.out_channels * plane_out + rem;
        let x_base = n * d.in_channels * in_plane;
        let at = pp * TILE + lane;
        for (var r = 0u; r < 4u; r++) {
            var v = 0.0;
            if (live && o_ok[r]) {
                v = grad_output[g_base + g_offset[r]];
            }
            tile_g[at + r * side] = v;
            tile_x[at + r * side] = gather(live && x_ok[r], x_base + x_offset[r], row0, col0, dy[r], dx[r]);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let a = kk * TILE + ty;
            let x = kk * TILE + tx;
            let b = vec4<f32>(tile_x[x], tile_x[x + side], tile_x[x + 2u * side], tile_x[x + 3u * side]);
            acc0 = fma(vec4<f32>(tile_g[a]), b, acc0);
            acc1 = fma(vec4<f32>(tile_g[a + side]), b, acc1);
            acc2 = fma(vec4<f32>(tile_g[a + 2u * side]), b, acc2);
            acc3 = fma(vec4<f32>(tile_g[a + 3u * side]), b, acc3);
        }
        workgroupBarrier();
    }

    // Every (o, k) of the block is stored, zeros included: reduce_splits reads
    // them all. Columns of input channels outside this dispatch store 0, not
    // their sums of grad_output · 0 (an infinite grad_output would make NaN).
    let block_at = block * d.out_channels * row_len;
    let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var r = 0u; r < 4u; r++) {
        let oo = o_tile + ty + r * side;
        if (oo >= o_end) {
            continue;
        }
        for (var q = 0u; q < 4u; q++) {
            let kq = k_tile + tx + q * side;
            let cq = g * p.in_per_group + kq / taps;
            let inside = cq >= d.in_c_begin && cq < d.in_c_begin + d.in_channels;
            if (kq < row_len) {
                partials[block_at + (oo - d.out_c_begin) * row_len + kq] = select(0.0, accs[r][q], inside);
            }
        }
    }
}
