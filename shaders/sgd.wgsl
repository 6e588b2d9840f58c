// Plain SGD on a parameter buffer: value -= lr * grad. Mirrors `SgdParams` in
// src/gpu/optim.rs.

struct SgdParams {
    lr: f32,
    len: u32,
    _pad0: u32,
    _pad1: u32,
}

// Invocations per workgroup, set from Rust (`KernelSpec::workgroup_size`).
override WORKGROUP_SIZE: u32;

@group(0) @binding(0) var<uniform> p: SgdParams;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> value: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = (wg.y * groups.x + wg.x) * WORKGROUP_SIZE + local;
    if (index < p.len) {
        value[index] = value[index] - p.lr * grad[index];
    }
}
