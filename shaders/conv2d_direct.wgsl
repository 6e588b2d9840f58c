// Direct Conv2d forward: one invocation per output element.
//
// The always-correct baseline. Every geometry parameter comes from the uniform
// buffer, and the padding modes are index maps, so no padded copy of the input
// is made. Mirrors `ConvParams` in src/gpu/params.rs field by field.

struct ConvParams {
    // Batch items in this dispatch.
    batch: u32,
    // Input channels held by the input buffer: absolute [in_c_begin, in_c_begin + in_channels).
    in_channels: u32,
    in_h: u32,
    in_w: u32,
    // Output channels computed: absolute [out_c_begin, out_c_begin + out_channels).
    out_channels: u32,
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
    // Number of output elements in this dispatch.
    total: u32,
    in_c_begin: u32,
    out_c_begin: u32,
    // 1: add to the partial sums already in `output` (a later block of input channels).
    accumulate: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    _pad3: u32,
}

const WORKGROUP_SIZE: u32 = 64u;

const MODE_ZEROS: u32 = 0u;
const MODE_REFLECT: u32 = 1u;
const MODE_REPLICATE: u32 = 2u;
const MODE_CIRCULAR: u32 = 3u;

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> output: array<f32>;

// Maps a coordinate of the padded input to one inside the source window, or -1
// for a zero. Geometry checks guarantee one reflection / wrap is enough
// (reflect: pad < len; circular: pad <= len).
fn source_coord(padded: i32, lead: u32, first: u32, len: u32) -> i32 {
    var t = padded - i32(lead);
    let n = i32(len);
    if (t < 0 || t >= n) {
        switch p.padding_mode {
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

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    // The grid is 2-D so that more than 65535 workgroups fit in one dispatch.
    let index = (wg.y * groups.x + wg.x) * WORKGROUP_SIZE + local;
    if (index >= p.total) {
        return;
    }
    let j = index % p.out_w;
    var rest = index / p.out_w;
    let i = rest % p.out_h;
    rest = rest / p.out_h;
    let o = p.out_c_begin + rest % p.out_channels;
    let n = rest / p.out_channels;
    let group_first = (o / p.out_per_group) * p.in_per_group;
    // This output's group, intersected with the channels this dispatch holds.
    let c_lo = max(group_first, p.in_c_begin);
    let c_hi = min(group_first + p.in_per_group, p.in_c_begin + p.in_channels);

    var acc = 0.0;
    if (p.accumulate != 0u) {
        acc = output[index];
    } else if (p.has_bias != 0u) {
        acc = bias[o];
    }
    let row0 = i32(i * p.stride_h);
    let col0 = i32(j * p.stride_w);
    let taps = p.kernel_h * p.kernel_w;
    for (var c = c_lo; c < c_hi; c++) {
        let plane = (n * p.in_channels + c - p.in_c_begin) * p.in_h * p.in_w;
        let w_base = (o * p.in_per_group + c - group_first) * taps;
        for (var a = 0u; a < p.kernel_h; a++) {
            let y = source_coord(row0 + i32(a * p.dilation_h), p.lead_h, p.src_first_h, p.src_len_h);
            for (var e = 0u; e < p.kernel_w; e++) {
                let x = source_coord(col0 + i32(e * p.dilation_w), p.lead_w, p.src_first_w, p.src_len_w);
                // A zero tap still multiplies, as an explicitly padded tensor would,
                // so Inf weights give NaN exactly as in the CPU reference.
                var v = 0.0;
                if (y >= 0 && x >= 0) {
                    v = input[plane + u32(y) * p.in_w + u32(x)];
                }
                acc = fma(weight[w_base + a * p.kernel_w + e], v, acc);
            }
        }
    }
    output[index] = acc;
}
