// torch.optim.Adam's and AdamW's update of one parameter buffer, element by
// element (amsgrad off):
//   g = grad (negated to maximize); Adam: g += weight_decay · value;
//   AdamW: value *= 1 − lr · weight_decay
//   exp_avg = lerp(exp_avg, g, 1 − beta1); exp_avg_sq = beta2 · exp_avg_sq + (1 − beta2) · g²
//   value -= step_size · exp_avg / (sqrt(exp_avg_sq) / bias_correction2_sqrt + eps)
// with step_size = lr / (1 − beta1^step) and bias_correction2_sqrt =
// sqrt(1 − beta2^step) computed on the host in f64, as PyTorch does in Python.
// Mirrors `AdamParams` in src/gpu/optim/adam.rs.

struct AdamParams {
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    step_size: f32,
    bias_correction2_sqrt: f32,
    len: u32,
    // Bit 0: decoupled weight decay (AdamW); bit 1: maximize.
    flags: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// Invocations per workgroup, set from Rust (`KernelSpec::workgroup_size`).
override WORKGROUP_SIZE: u32;

@group(0) @binding(0) var<uniform> p: AdamParams;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> value: array<f32>;
@group(0) @binding(3) var<storage, read_write> exp_avg: array<f32>;
@group(0) @binding(4) var<storage, read_write> exp_avg_sq: array<f32>;

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
    var v = value[index];
    if (p.weight_decay != 0.0) {
        if ((p.flags & 1u) != 0u) {
            v = v * (1.0 - p.lr * p.weight_decay);
        } else {
            g = g + p.weight_decay * v;
        }
    }
    let m = exp_avg[index];
    let m_new = m + (g - m) * (1.0 - p.beta1);
    let s_new = p.beta2 * exp_avg_sq[index] + (1.0 - p.beta2) * g * g;
    exp_avg[index] = m_new;
    exp_avg_sq[index] = s_new;
    let denom = sqrt(s_new) / p.bias_correction2_sqrt + p.eps;
    value[index] = v - p.step_size * (m_new / denom);
}
