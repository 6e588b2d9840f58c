// Shared by every convolution kernel: the two uniform blocks (their Rust twins
// are `ConvParams` and `DispatchParams` in src/gpu/conv/params.rs, field by
// field), the workgroup size, the padding index map and the unaligned vec4
// shift. Each kernel's source is this file followed by the kernel's own.

// The geometry of one call, the same for all its dispatches.
struct ConvParams {
    in_h: u32,
    in_w: u32,
    out_h: u32,
    out_w: u32,
    groups: u32,
    in_per_group: u32,
    out_per_group: u32,
    kernel_h: u32,
    kernel_w: u32,
    stride_h: u32,
    stride_w: u32,
    dilation_h: u32,
    dilation_w: u32,
    // Rows / columns of padding before the data (negative padding is a crop, below).
    lead_h: u32,
    lead_w: u32,
    // The window of the input the padding mode sees: [first, first + len).
    src_first_h: u32,
    src_first_w: u32,
    src_len_h: u32,
    src_len_w: u32,
    padding_mode: u32,
    has_bias: u32,
    // Size of the padded input (after negative padding crops).
    padded_h: u32,
    padded_w: u32,
    _pad0: u32,
}

// What one dispatch computes: its block of the tensors and its slice of the work.
struct DispatchParams {
    // Batch items in this dispatch.
    batch: u32,
    // Input channels held by the input buffer: absolute [in_c_begin, in_c_begin + in_channels).
    in_channels: u32,
    // Output channels computed: absolute [out_c_begin, out_c_begin + out_channels).
    out_channels: u32,
    in_c_begin: u32,
    out_c_begin: u32,
    // 1: add to what an earlier dispatch stored (a later block of channels, or
    // a later slice of the reduction) instead of starting afresh.
    accumulate: u32,
    // What this dispatch's shader counts (invocations, rows, workgroups).
    total: u32,
    // The weight and bias gradients sum output positions in `splits` blocks of
    // `split_len`, starting at position `slice_begin`.
    splits: u32,
    split_len: u32,
    // Row length of the blocked kernel's padded input copy (a multiple of 4).
    row_len: u32,
    // The slice of the reduction this dispatch adds (src/gpu/runtime/loops.rs):
    // every invocation's loops stay under the driver's loop limit. What the
    // range counts is the kernel's own (reduction rows, GEMM depth, copies,
    // positions; the depthwise kernel's interior strips of columns).
    slice_begin: u32,
    slice_end: u32,
    // The slice of the innermost loop (kernel columns), for kernels with two levels.
    inner_begin: u32,
    inner_end: u32,
    // Where a reduction of partial sums writes its first result.
    result_offset: u32,
    // Row length of the blocked weight gradient's grad_output rows (a multiple of 4).
    out_row_len: u32,
}

// Invocations per workgroup, set from Rust (`KernelSpec::workgroup_size`).
override WORKGROUP_SIZE: u32;


const MODE_ZEROS: u32 = 0u;
const MODE_REFLECT: u32 = 1u;
const MODE_REPLICATE: u32 = 2u;
const MODE_CIRCULAR: u32 = 3u;

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<uniform> d: DispatchParams;

// Maps a coordinate of the padded input to one inside the source window, or -1
// for a zero. Geometry checks guarantee one reflection / wrap is enough
// (reflect: pad < len; circular: pad <= len).
fn source_coord(padded: i32, lead: u32, first: u32, len: u32) -> i32 {
    return source_coord_in(p.padding_mode, padded, lead, first, len);
}

// `source_coord` in padding mode `mode` (a kernel that fixes the mode in its
// code passes a constant, and the other modes' arms fold away).
fn source_coord_in(mode: u32, padded: i32, lead: u32, first: u32, len: u32) -> i32 {
    var t = padded - i32(lead);
    let n = i32(len);
    if (t < 0 || t >= n) {
        switch mode {
            case MODE_REFLECT: {
                if (t < 0) { t = -t; } else { t = 2 * (n - 1) - t; }
            }
            case MODE_REPLICATE: {
                t = clamp(t, 0, n - 1);
            }
            case MODE_CIRCULAR: {
                if (t < 0) { t = t + n; } else { t = t - n; }
            }
            default: {
                return -1;
            }
        }
    }
    return i32(first) + t;
}

// Four floats starting `shift` (0 to 3) floats into `a`, running on into `b`:
// an unaligned vec4 from two aligned loads.
fn shifted(a: vec4<f32>, b: vec4<f32>, shift: u32) -> vec4<f32> {
    var v = select(a, vec4<f32>(a.yzw, b.x), shift == 1u);
    v = select(v, vec4<f32>(a.zw, b.xy), shift == 2u);
    return select(v, vec4<f32>(a.w, b.xyz), shift == 3u);
}

// The block of `width` output channels that holds channel `o`, blocks
// numbered over all groups (each group's channels start a new block).
fn out_block(o: u32, width: u32) -> u32 {
    let blocks_per_group = (p.out_per_group + width - 1u) / width;
    return (o / p.out_per_group) * blocks_per_group + (o % p.out_per_group) / width;
}

// Index of this invocation in a 1-D launch spread over a 2-D grid (so that more
// than 65535 workgroups fit in one dispatch).
fn invocation_index(wg: vec3<u32>, groups: vec3<u32>, local: u32) -> u32 {
    return (wg.y * groups.x + wg.x) * WORKGROUP_SIZE + local;
}
