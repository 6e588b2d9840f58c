// Whether this subgroup's invocations all hold the same `key` (the block of
// work whose loads they share) and the lanes in `lanes` (a mask of those that
// load) are all there. Appended only to the kernels that share loads, which
// run only where the device has subgroup operations.
fn one_subgroup(key: u32, lanes: u32) -> bool {
    return subgroupAll(key == subgroupBroadcast(key, 0u)) && (subgroupBallot(true).x & lanes) == lanes;
}
