// The streaming ceiling: y = x * a + b over vec4s, FOUR consecutive vec4s per
// invocation, the most bytes per load instruction a kernel can move. Its time
// for a tensor's bytes is the least any memory-bound kernel can take on this
// adapter; the benchmarks divide by it (src/bench/ceilings.rs).

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> y: array<vec4<f32>>;

override WORKGROUP_SIZE: u32;
// vec4s per invocation.
override FOUR: u32;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let first = ((wg.y * groups.x + wg.x) * WORKGROUP_SIZE + local) * FOUR;
    let n = arrayLength(&y);
    // FOUR is a constant: the loop has FOUR iterations, and the compiler
    // unrolls it.
    for (var k = 0u; k < FOUR; k++) {
        if (first + k < n) {
            y[first + k] = x[first + k] * 1.0001 + vec4<f32>(0.5);
        }
    }
}
