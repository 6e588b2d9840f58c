// The arithmetic ceiling: fused multiply-adds in registers only, eight
// independent vec4 chains per invocation, ITERATIONS times (far under the
// driver's loop limit), one store at the end so that nothing is dead. Its
// rate is the most multiply-adds per second any kernel can reach on this
// adapter; the benchmarks divide by it (src/bench/ceilings.rs).

@group(0) @binding(0) var<storage, read_write> y: array<vec4<f32>>;

override WORKGROUP_SIZE: u32;
override ITERATIONS: u32;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = (wg.y * groups.x + wg.x) * WORKGROUP_SIZE + local;
    let seed = vec4<f32>(f32(index & 255u)) * 1e-3;
    var a0 = seed;
    var a1 = seed + 0.1;
    var a2 = seed + 0.2;
    var a3 = seed + 0.3;
    var a4 = seed + 0.4;
    var a5 = seed + 0.5;
    var a6 = seed + 0.6;
    var a7 = seed + 0.7;
    let m = vec4<f32>(0.999);
    let c = vec4<f32>(1e-3);
    for (var i = 0u; i < ITERATIONS; i++) {
        a0 = fma(a0, m, c);
        a1 = fma(a1, m, c);
        a2 = fma(a2, m, c);
        a3 = fma(a3, m, c);
        a4 = fma(a4, m, c);
        a5 = fma(a5, m, c);
        a6 = fma(a6, m, c);
        a7 = fma(a7, m, c);
    }
    if (index < arrayLength(&y)) {
        y[index] = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));
    }
}
