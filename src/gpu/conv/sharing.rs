//! Loads shared across a subgroup's lanes: on CPU adapters every lane's
//! storage load is a loop over the SIMD lanes, so the kernels whose
//! invocations load the same values (the blocked forward kernel's and
//! Winograd's weights, the blocked weight gradient's output gradient) load
//! each once per subgroup and broadcast it. What they share is checked:
//! `shaders/subgroup_sound.wgsl` and `shaders/subgroup_check.wgsl`.

use crate::gpu::runtime::GpuContext;

/// The subgroup width across which kernels share their loads on `ctx`: its
/// fixed subgroup width ([`GpuContext::subgroup_width`]) on CPU adapters, where each lane's load is a loop over the SIMD lanes:
/// on llvmpipe sharing took the blocked kernel to 0.52–0.84× its time and
/// Winograd to 0.76–0.94× (docs/benchmarks.md); `None` on GPUs, where it
/// has not been measured yet.
pub(crate) fn shared_load_lanes(ctx: &GpuContext) -> Option<usize> {
    ctx.subgroup_width()
        .filter(|_| ctx.adapter_info().device_type == wgpu::DeviceType::Cpu)
        .map(|w| w as usize)
}

/// What a kernel sharing loads across subgroups adds to its template: the
/// lane parameter of its entry point and the line that sets `sound`
/// (`shaders/subgroup_sound.wgsl`) from whether its subgroup holds one `key`
/// and every lane in `lanes` (a WGSL mask). Nothing where it does not
/// `share`. Such a kernel's source ends with [`with_subgroup_check`].
pub(crate) fn sharing_parts(share: bool, key: &str, lanes: &str) -> (String, String) {
    if !share {
        return (String::new(), String::new());
    }
    (
        "    @builtin(subgroup_invocation_id) lane: u32,\n".to_string(),
        format!("    sound = one_subgroup({key}, {lanes});\n"),
    )
}

/// `source` with the check [`sharing_parts`] calls
/// (`shaders/subgroup_check.wgsl`) appended where the kernel `share`s.
pub(crate) fn with_subgroup_check(source: String, share: bool) -> String {
    if share {
        source
            + "\n"
            + include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/shaders/subgroup_check.wgsl"
            ))
    } else {
        source
    }
}
