// torch.optim.SGD's update of one parameter buffer, element by element:
//   g = grad (negated to maximize) + weight_decay · value
//   momentum: buf = g on the first step, else momentum · buf + (1 − dampening) · g;
//             g = g + momentum · buf (nesterov) or buf
//   value -= lr · g
// Mirrors `SgdParams` in src/gpu/optim/sgd.rs.

struct SgdParams {
    lr: f32,
    momentum: f32,
    dampening: f32,
    weight_decay: f32,
    len: u32,
    // Bit 0: nesterov; bit 1: maximize; bit 2: the momentum buffer is new.
    flags: u32,
    _pad0: u32,
    _pad1: u32,
}

// Invocations per workgroup, set from Rust (`KernelSpec::workgroup_size`).
override WORKGROUP_SIZE: u32;

@group(0) @binding(0) var<uniform> p: SgdParams;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> value: array<f32>;
@group(0) @binding(3) var<storage, read_write> momentum_buffer: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = (wg.y * groups.x + wg.x) * WORKGROUP_SIZE + local;
    if (index >= p.len) {
        return;
    }
    var g = grad[index];
    if ((p.flags & 2u) != 0u) {
        g = -g;
    }
    let v = value[index];
    if (p.weight_decay != 0.0) {
        g = g + p.weight_decay * v;
    }
    if (p.momentum != 0.0) {
        var buf = g;
        if ((p.flags & 4u) == 0u) {
            buf = p.momentum * momentum_buffer[index] + (1.0 - p.dampening) * g;
        }
        momentum_buffer[index] = buf;
        if ((p.flags & 1u) != 0u) {
            g = g + p.momentum * buf;
        } else {
            g = buf;
        }
    }
    value[index] = v - p.lr * g;
}
