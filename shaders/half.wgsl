// Conversions between f32 and the 16-bit dtypes, two 16-bit values per u32
// word: element 2i in the low half of word i, element 2i + 1 in the high half
// (little-endian u16 storage, as a host's half array is laid out). Preceded by
// shaders/half_bits.wgsl (the rounding). `ConvertParams` mirrors its Rust
// twin in src/gpu/convert.rs.
//
// Each invocation converts eight values (four values for `round`), read and
// written as vec4s: on llvmpipe every load and store is a loop over the
// lanes, so fewer, wider ones cost less (one word per invocation, the
// narrowing of a 25.7 MB output took 10–12 ms). Buffers are whole vec4s
// (src/gpu/runtime/buffers.rs), so the last vec4 is inside the destination:
// its slots past `len` are padding, written with zeros or whatever the
// source's padding held.

struct ConvertParams {
    // Elements (16-bit values) to convert.
    len: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// Invocations per workgroup, set from Rust (`KernelSpec::workgroup_size`).
override WORKGROUP_SIZE: u32;

@group(0) @binding(0) var<uniform> p: ConvertParams;
// f32 values (as their bits) or packed 16-bit words, by entry point.
@group(0) @binding(1) var<storage, read> source: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> destination: array<vec4<u32>>;

fn index_of(wg: vec3<u32>, groups: vec3<u32>, local: u32) -> u32 {
    return (wg.y * groups.x + wg.x) * WORKGROUP_SIZE + local;
}

// Four 16-bit values (two words) widened to f32 bits.
fn widen_four(w: vec2<u32>) -> vec4<u32> {
    return vec4<u32>(
        widen_one(w.x & 0xffffu),
        widen_one(w.x >> 16u),
        widen_one(w.y & 0xffffu),
        widen_one(w.y >> 16u),
    );
}

// Four f32 values narrowed into two words; values from `first` on that lie
// past `len` become zero halves.
fn narrow_four(v: vec4<u32>, first: u32) -> vec2<u32> {
    let keep = vec4<bool>(first < p.len, first + 1u < p.len, first + 2u < p.len, first + 3u < p.len);
    let h = select(vec4<u32>(0u), vec4<u32>(narrow_one(v.x), narrow_one(v.y), narrow_one(v.z), narrow_one(v.w)), keep);
    return vec2<u32>(h.x | (h.y << 16u), h.z | (h.w << 16u));
}

// 16-bit words -> f32: one invocation per four words (eight values).
@compute @workgroup_size(WORKGROUP_SIZE)
fn widen(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let unit = index_of(wg, groups, local);
    let first = 8u * unit;
    if (first >= p.len) {
        return;
    }
    let w = source[unit];
    destination[2u * unit] = widen_four(w.xy);
    if (first + 4u < p.len) {
        destination[2u * unit + 1u] = widen_four(w.zw);
    }
}

// f32 -> 16-bit words: one invocation per four words (eight values; halves
// past the last value are zero).
@compute @workgroup_size(WORKGROUP_SIZE)
fn narrow(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let unit = index_of(wg, groups, local);
    let first = 8u * unit;
    if (first >= p.len) {
        return;
    }
    var high = vec4<u32>(0u);
    if (first + 4u < p.len) {
        high = source[2u * unit + 1u];
    }
    destination[unit] = vec4<u32>(narrow_four(source[2u * unit], first), narrow_four(high, first + 4u));
}

// f32 -> f32 rounded to the dtype: one invocation per four values.
@compute @workgroup_size(WORKGROUP_SIZE)
fn round(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let unit = index_of(wg, groups, local);
    if (4u * unit >= p.len) {
        return;
    }
    let v = source[unit];
    destination[unit] = vec4<u32>(
        widen_one(narrow_one(v.x)),
        widen_one(narrow_one(v.y)),
        widen_one(narrow_one(v.z)),
        widen_one(narrow_one(v.w)),
    );
}
