// The weight of one phase of the transposed convolution whose forward pass
// gives the input gradient: within each group, input and output channels
// swapped, and the phase's taps (first, first + step, ... along each axis)
// flipped in space. With stride 1 there is one phase holding every tap. One
// invocation per element of the result, shaped
// (in_channels, out_channels / groups, taps_h, taps_w).

struct Phase {
    first_h: u32,
    step_h: u32,
    taps_h: u32,
    first_w: u32,
    step_w: u32,
    taps_w: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> transposed: array<f32>;
@group(0) @binding(4) var<uniform> phase: Phase;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = invocation_index(wg, groups, local);
    if (index >= d.total) {
        return;
    }
    let e = index % phase.taps_w;
    var rest = index / phase.taps_w;
    let a = rest % phase.taps_h;
    rest = rest / phase.taps_h;
    let o = rest % p.out_per_group;
    let ch = rest / p.out_per_group;
    let g = ch / p.in_per_group;
    let c = ch % p.in_per_group;
    let tap_h = phase.first_h + (phase.taps_h - 1u - a) * phase.step_h;
    let tap_w = phase.first_w + (phase.taps_w - 1u - e) * phase.step_w;
    let source = (((g * p.out_per_group + o) * p.in_per_group + c) * p.kernel_h + tap_h) * p.kernel_w + tap_w;
    transposed[index] = weight[source];
}
