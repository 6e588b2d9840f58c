// Conversions between f32 and the 16-bit dtypes, two 16-bit values per u32
// word: element 2i in the low half of word i, element 2i + 1 in the high half
// (little-endian u16 storage, as a host's half array is laid out). Preceded by
// shaders/half_bits.wgsl (the rounding). `ConvertParams` mirrors its Rust
// twin in src/gpu/convert.rs.

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
@group(0) @binding(1) var<storage, read> source: array<u32>;
@group(0) @binding(2) var<storage, read_write> destination: array<u32>;

fn index_of(wg: vec3<u32>, groups: vec3<u32>, local: u32) -> u32 {
    return (wg.y * groups.x + wg.x) * WORKGROUP_SIZE + local;
}

// 16-bit words -> f32: one invocation per word.
@compute @workgroup_size(WORKGROUP_SIZE)
fn widen(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let word = index_of(wg, groups, local);
    let first = 2u * word;
    if (first >= p.len) {
        return;
    }
    let w = source[word];
    destination[first] = widen_one(w & 0xffffu);
    if (first + 1u < p.len) {
        destination[first + 1u] = widen_one(w >> 16u);
    }
}

// f32 -> 16-bit words: one invocation per word (the last word's high half is
// zero when the length is odd).
@compute @workgroup_size(WORKGROUP_SIZE)
fn narrow(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let word = index_of(wg, groups, local);
    let first = 2u * word;
    if (first >= p.len) {
        return;
    }
    var packed = narrow_one(source[first]);
    if (first + 1u < p.len) {
        packed = packed | (narrow_one(source[first + 1u]) << 16u);
    }
    destination[word] = packed;
}

// f32 -> f32 rounded to the dtype: one invocation per element.
@compute @workgroup_size(WORKGROUP_SIZE)
fn round(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = index_of(wg, groups, local);
    if (index >= p.len) {
        return;
    }
    destination[index] = widen_one(narrow_one(source[index]));
}
