// Records, per invocation, its lane and its subgroup's width, so that the
// host can check the layout the sharing kernels rely on: subgroups of one
// fixed width made of consecutive invocations of a workgroup, lane l being
// local index l modulo the width (src/gpu/runtime/subgroups.rs).

@group(0) @binding(0) var<storage, read_write> seen: array<u32>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) width: u32,
) {
    seen[wg.x * 64u + local] = lane | (width << 16u);
}
