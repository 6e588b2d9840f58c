// Gradient of the padded input: one invocation per padded element (n, c, p, q),
// gathering every (output, tap) that read it. No atomics: each element is
// written once, summed in a fixed order, so results are bit-identical run to run.

@group(0) @binding(1) var<storage, read> grad_output: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad_padded: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = invocation_index(wg, groups, local);
    if (index >= p.total) {
        return;
    }
    let q = index % p.padded_w;
    var rest = index / p.padded_w;
    let row = rest % p.padded_h;
    rest = rest / p.padded_h;
    let ch = rest % p.in_channels;
    let n = rest / p.in_channels;
    let g = ch / p.in_per_group;
    let c = ch % p.in_per_group;
    let taps = p.kernel_h * p.kernel_w;

    var acc = 0.0;
    for (var ol = 0u; ol < p.out_per_group; ol++) {
        let o = g * p.out_per_group + ol;
        let go_base = (n * p.out_channels + o) * p.out_h * p.out_w;
        let w_base = (o * p.in_per_group + c) * taps;
        for (var a = 0u; a < p.kernel_h; a++) {
            let da = a * p.dilation_h;
            if (da > row) {
                break;
            }
            let ti = row - da;
            let i = ti / p.stride_h;
            if (ti % p.stride_h != 0u || i >= p.out_h) {
                continue;
            }
            for (var e = 0u; e < p.kernel_w; e++) {
                let de = e * p.dilation_w;
                if (de > q) {
                    break;
                }
                let tj = q - de;
                let j = tj / p.stride_w;
                if (tj % p.stride_w != 0u || j >= p.out_w) {
                    continue;
                }
                acc = fma(weight[w_base + a * p.kernel_w + e], grad_output[go_base + i * p.out_w + j], acc);
            }
        }
    }
    grad_padded[index] = acc;
}
