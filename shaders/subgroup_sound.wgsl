// Kernels that share loads across a subgroup's lanes set `sound` to false in
// a subgroup that does not hold the layout they rely on (one block of work,
// every lane there: subgroup_check.wgsl); their stores then write NaN, never
// a wrong sum. The device's probe (src/gpu/runtime/subgroups.rs) keeps that
// from happening. Kernels that share nothing leave it true.
var<private> sound: bool = true;

// NaN where the subgroup is not sound (0 otherwise, never stored), made at
// run time: WGSL's constant evaluation refuses a NaN constant (Tint does).
fn poison() -> f32 {
    return bitcast<f32>(select(0u, 0x7fc00000u, !sound));
}

// `count` invocations rounded up to a multiple of LANES (as they are where
// lanes share nothing): kernels that share loads pad each block of work to
// it, so that a subgroup's lanes are one block's.
fn padded_to_lanes(count: u32) -> u32 {
    let lanes = max(LANES, 1u);
    return (count + lanes - 1u) / lanes * lanes;
}
