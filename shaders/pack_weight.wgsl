// The blocked kernel's weight: for each block of BLOCK output channels of one
// group, the taps in (input channel, ky, kx) order, each tap the BLOCK channels'
// weights side by side (zero past the group's last channel), so one vec4 load
// gives four output channels' weights. One invocation per packed element.

@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> packed: array<f32>;

override BLOCK: u32;

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
    let taps = p.kernel_h * p.kernel_w;
    let k = index % BLOCK;
    var rest = index / BLOCK;
    let tap = rest % taps;
    rest = rest / taps;
    let c = rest % p.in_per_group;
    let block = rest / p.in_per_group;
    let blocks_per_group = (p.out_per_group + BLOCK - 1u) / BLOCK;
    let g = block / blocks_per_group;
    let o = (block % blocks_per_group) * BLOCK + k;
    var w = 0.0;
    if (o < p.out_per_group) {
        w = weight[((g * p.out_per_group + o) * p.in_per_group + c) * taps + tap];
    }
    packed[index] = w;
}
