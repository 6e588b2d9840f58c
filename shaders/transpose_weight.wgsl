// The weight of one phase of the transposed convolution whose forward pass
// gives the input gradient: within each group, input and output channels
// swapped, and the phase's taps (first, first + step, ... along each axis)
// flipped in space. With stride 1 there is one phase holding every tap. The
// result is shaped (in_channels, out_channels / groups, taps_h, taps_w).
//
// One invocation per run of up to RUN consecutive taps of one (channel,
// output channel) pair, walking the taps without dividing: llvmpipe divides
// integers lane by lane, and one invocation per element (six divisions each)
// cost 15 ms of the 8×512×7×7 layer's input gradient.

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

override RUN: u32;

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
    let taps = phase.taps_h * phase.taps_w;
    let runs = (taps + RUN - 1u) / RUN;
    let start = (index % runs) * RUN;
    let pair = index / runs;
    let o = pair % p.out_per_group;
    let ch = pair / p.out_per_group;
    let g = ch / p.in_per_group;
    let c = ch % p.in_per_group;
    let plane = ((g * p.out_per_group + o) * p.in_per_group + c) * p.kernel_h;
    var a = start / phase.taps_w;
    var e = start % phase.taps_w;
    let count = min(RUN, taps - start);
    for (var t = 0u; t < count; t++) {
        let tap_h = phase.first_h + (phase.taps_h - 1u - a) * phase.step_h;
        let tap_w = phase.first_w + (phase.taps_w - 1u - e) * phase.step_w;
        transposed[pair * taps + start + t] = weight[(plane + tap_h) * p.kernel_w + tap_w];
        e += 1u;
        if (e == phase.taps_w) {
            e = 0u;
            a += 1u;
        }
    }
}
