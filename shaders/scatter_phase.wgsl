// Places rows × cols of one phase's output (planes × src_rows × src_cols, from
// row skip_h and column skip_w) into every stride-th row and column of the
// destination grid (planes × dest_h × dest_w), from (first_h, first_w); with
// `zero` set, writes zeros there instead (a phase that no tap reaches). One
// invocation per placed element.

struct Scatter {
    total: u32,
    rows: u32,
    cols: u32,
    first_h: u32,
    stride_h: u32,
    first_w: u32,
    stride_w: u32,
    dest_h: u32,
    dest_w: u32,
    zero: u32,
    src_rows: u32,
    src_cols: u32,
    skip_h: u32,
    skip_w: u32,
    _pad0: u32,
    _pad1: u32,
}

// Invocations per workgroup, set from Rust (`KernelSpec::workgroup_size`).
override WORKGROUP_SIZE: u32;

@group(0) @binding(0) var<uniform> s: Scatter;
@group(0) @binding(1) var<storage, read> phase: array<f32>;
@group(0) @binding(2) var<storage, read_write> dest: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = (wg.y * groups.x + wg.x) * WORKGROUP_SIZE + local;
    if (index >= s.total) {
        return;
    }
    let u = index % s.cols;
    var rest = index / s.cols;
    let t = rest % s.rows;
    let plane = rest / s.rows;
    let at = (plane * s.dest_h + s.first_h + t * s.stride_h) * s.dest_w + s.first_w + u * s.stride_w;
    var value = 0.0;
    if (s.zero == 0u) {
        value = phase[(plane * s.src_rows + s.skip_h + t) * s.src_cols + s.skip_w + u];
    }
    dest[at] = value;
}
