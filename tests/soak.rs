//! Memory stays flat over 2000 calls of mixed shapes. In a test binary of its
//! own, so that the resident-memory figure is this test's alone.

mod common;

use common::random_tensor;
use wgpu_conv2d::{Conv2d, Conv2dConfig, GpuContext, GpuConv2d, Padding, PaddingMode};

fn resident_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn memory_stays_flat_over_2000_calls() {
    // A context of its own, so other tests' buffers do not count.
    let ctx = GpuContext::new().unwrap().with_builds_ahead(false);
    let layers: Vec<GpuConv2d> = [
        Conv2dConfig::new(3, 8, 3).with_padding(1),
        Conv2dConfig::new(8, 8, 3)
            .with_groups(8)
            .with_padding(Padding::Same)
            .with_padding_mode(PaddingMode::Reflect),
        Conv2dConfig::new(8, 4, 1).with_stride(2),
        Conv2dConfig::new(4, 4, (1, 5))
            .with_padding((0, 2))
            .with_padding_mode(PaddingMode::Circular),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, c)| GpuConv2d::new(&ctx, &Conv2d::new(c, i as u64).unwrap()).unwrap())
    .collect();
    let inputs = [
        random_tensor(&[2, 3, 16, 16], 1),
        random_tensor(&[8, 12, 10], 2),
        random_tensor(&[1, 8, 21, 17], 3),
        random_tensor(&[3, 4, 5, 9], 4),
    ];
    let counters = || {
        let c = ctx.device().get_internal_counters();
        (
            c.hal.buffers.read(),
            c.hal.bind_groups.read(),
            c.hal.buffer_memory.read(),
        )
    };
    let run = |calls: usize| {
        for i in 0..calls {
            let k = i % layers.len();
            layers[k].forward(&inputs[k]).unwrap();
        }
        ctx.device()
            .poll(wgpu::PollType::wait_indefinitely())
            .unwrap();
    };
    run(200);
    let (buffers, bind_groups, memory) = counters();
    let rss = resident_kib();
    run(2000);
    let after = counters();
    assert_eq!(after.0, buffers, "live GPU buffers grew");
    assert_eq!(after.1, bind_groups, "live bind groups grew");
    assert_eq!(after.2, memory, "GPU buffer memory grew");
    let grown = resident_kib().saturating_sub(rss);
    eprintln!(
        "after warm-up: {buffers} live buffers, {bind_groups} bind groups, {memory} B of buffer memory; resident memory grew {grown} KiB over 2000 calls"
    );
    assert!(
        grown < 8 * 1024,
        "resident memory grew by {grown} KiB over 2000 calls"
    );
}
