// Tiled implicit-GEMM Conv2d forward, per group: output[o, pos] = Σ_k W[o, k] · X[k, pos]
// with k = (input channel, kernel row, kernel column) and pos = (n, i, j). X is
// never built: each workgroup gathers its 64 positions × BK reduction slice of
// the padded input straight into workgroup memory (through the padding index
// map), next to a 64 × BK slice of the weight, and every invocation then
// accumulates a 4 × 4 block of outputs from the two tiles.
//
// The workgroup grid runs over (group, channel tile, position tile) of this
// dispatch's block of output channels, so grouped convolutions, channel
// blocks and partial sums (`accumulate`) work as in the direct kernel.

@group(0) @binding(2) var<storage, read> input: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> output: array<f32>;

// A 1×1, stride-1, unpadded convolution: the gathered input is the input
// itself, a plain GEMM per batch item, with no index map.
override POINTWISE: bool = false;

// Output channels and positions per workgroup (each side of the output tile),
// and the reduction slice loaded per step: set from Rust (GEMM_TILE and
// GEMM_DEPTH_STEP in src/gpu/conv/forward/implicit_gemm.rs). The workgroup is
// side × side invocations (WORKGROUP_SIZE = side², side = TILE / 4), each
// with a 4 × 4 register block.
override TILE: u32;
override BK: u32;

var<workgroup> tile_w: array<f32, TILE * BK>; // [BK][TILE]: weight slice
var<workgroup> tile_x: array<f32, TILE * BK>; // [BK][TILE]: gathered input slice

// The padded input at reduction index `k` for the output at (row0, col0) of plane `plane`.
fn gather(plane: u32, rem: u32, row0: i32, col0: i32, k: u32, taps: u32) -> f32 {
    if (POINTWISE) {
        return input[plane + rem];
    }
    let t = k % taps;
    let a = t / p.kernel_w;
    let e = t % p.kernel_w;
    let y = source_coord(row0 + i32(a * p.dilation_h), p.lead_h, p.src_first_h, p.src_len_h);
    let x = source_coord(col0 + i32(e * p.dilation_w), p.lead_w, p.src_first_w, p.src_len_w);
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
    // `total` counts workgroups here; the grid may spill onto y.
    let wid = wg.y * groups.x + wg.x;
    if (wid >= d.total) {
        return;
    }
    let plane_out = p.out_h * p.out_w;
    let positions = d.batch * plane_out;
    let n_tiles = (positions + TILE - 1u) / TILE;
    let m_tiles = (min(p.out_per_group, d.out_channels) + TILE - 1u) / TILE;
    let n_tile = wid % n_tiles;
    let rest = wid / n_tiles;
    let m_tile = rest % m_tiles;
    let g = d.out_c_begin / p.out_per_group + rest / m_tiles;
    // This group's output channels in the dispatch, and its input channels bound.
    let o_first = max(g * p.out_per_group, d.out_c_begin);
    let o_end = min((g + 1u) * p.out_per_group, d.out_c_begin + d.out_channels);
    let o_tile = o_first + m_tile * TILE;
    let c_lo = max(g * p.in_per_group, d.in_c_begin);
    let c_hi = max(c_lo, min((g + 1u) * p.in_per_group, d.in_c_begin + d.in_channels));
    let taps = p.kernel_h * p.kernel_w;
    let depth = (c_hi - c_lo) * taps;
    let w_row = p.in_per_group * taps;
    let w_skip = (c_lo - g * p.in_per_group) * taps;

    // The position this invocation gathers, fixed for the whole reduction.
    let col = local % TILE;
    let pos = n_tile * TILE + col;
    let pos_ok = pos < positions;
    let n = pos / plane_out;
    let rem = pos % plane_out;
    let row0 = i32((rem / p.out_w) * p.stride_h);
    let col0 = i32((rem % p.out_w) * p.stride_w);
    let in_plane = p.in_h * p.in_w;

    let side = TILE / 4u;
    let tx = local % side;
    let ty = local / side;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);

    // This dispatch's slice of the reduction (src/gpu/runtime/loops.rs); later slices
    // add onto this one's sums (`accumulate`).
    let k_end = min(d.slice_end, depth);
    for (var k0 = d.slice_begin; k0 < k_end; k0 += BK) {
        for (var r = 0u; r < TILE * BK / WORKGROUP_SIZE; r++) {
            let idx = local + r * WORKGROUP_SIZE;
            // Consecutive invocations read consecutive k of one weight row.
            let kk = idx % BK;
            let mm = idx / BK;
            let o = o_tile + mm;
            let k = k0 + kk;
            var v = 0.0;
            if (o < o_end && k < k_end) {
                v = weight[o * w_row + w_skip + k];
            }
            tile_w[kk * TILE + mm] = v;
        }
        for (var r = 0u; r < TILE * BK / WORKGROUP_SIZE; r++) {
            let kk = local / TILE + r * (WORKGROUP_SIZE / TILE);
            let k = k0 + kk;
            var v = 0.0;
            if (pos_ok && k < k_end) {
                let c = c_lo + k / taps;
                let plane = (n * d.in_channels + c - d.in_c_begin) * in_plane;
                v = gather(plane, rem, row0, col0, k, taps);
            }
            tile_x[kk * TILE + col] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let w = kk * TILE + ty;
            let x = kk * TILE + tx;
            let b = vec4<f32>(tile_x[x], tile_x[x + side], tile_x[x + 2u * side], tile_x[x + 3u * side]);
            acc0 = fma(vec4<f32>(tile_w[w]), b, acc0);
            acc1 = fma(vec4<f32>(tile_w[w + side]), b, acc1);
            acc2 = fma(vec4<f32>(tile_w[w + 2u * side]), b, acc2);
            acc3 = fma(vec4<f32>(tile_w[w + 3u * side]), b, acc3);
        }
        workgroupBarrier();
    }

    let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var r = 0u; r < 4u; r++) {
        let o = o_tile + ty + r * side;
        if (o >= o_end) {
            continue;
        }
        for (var q = 0u; q < 4u; q++) {
            let at = n_tile * TILE + tx + q * side;
            if (at >= positions) {
                continue;
            }
            let index = ((at / plane_out) * d.out_channels + o - d.out_c_begin) * plane_out + at % plane_out;
            var start = 0.0;
            if (d.accumulate != 0u) {
                start = output[index];
            } else if (p.has_bias != 0u) {
                start = bias[o];
            }
            output[index] = start + accs[r][q];
        }
    }
}
