//! The subgroup width kernels may rely on. Kernels that share loads across a
//! subgroup's lanes number their invocations so that a subgroup's all work on
//! the same data, which holds where subgroups have one fixed width and are
//! made of consecutive invocations of a workgroup. Vulkan leaves that layout
//! to the driver, so it is checked once per device with a probe kernel
//! (`shaders/subgroup_probe.wgsl`) before any kernel relies on it; the
//! kernels check it again per subgroup and poison their outputs with NaN
//! where it fails, rather than store a wrong sum.

/// Workgroups the probe runs, of its 64 invocations each.
const PROBE_WORKGROUPS: u32 = 16;
/// Invocations per probe workgroup (`@workgroup_size` in the probe).
const PROBE_WORKGROUP_SIZE: u32 = 64;

/// The width the adapter's subgroups all have, where `features` (the
/// device's) hold subgroup operations, that width is a power of two from 4 to
/// 64 (it divides every workgroup size the crate uses), and the probe sees
/// the layout kernels rely on. `None` otherwise, or where the probe fails.
pub(super) async fn verified_width(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    features: wgpu::Features,
    info: &wgpu::AdapterInfo,
) -> Option<u32> {
    let width = info.subgroup_min_size;
    let offered = features.contains(wgpu::Features::SUBGROUP)
        && width == info.subgroup_max_size
        && width.is_power_of_two()
        && (4..=64).contains(&width);
    if !offered {
        return None;
    }
    let seen = probe(device, queue).await?;
    layout_holds(&seen, width).then_some(width)
}

/// Whether every probed invocation saw `width` lanes and a lane number equal
/// to its local index modulo `width`.
fn layout_holds(seen: &[u32], width: u32) -> bool {
    !seen.is_empty()
        && seen.iter().enumerate().all(|(i, &word)| {
            let local = i as u32 % PROBE_WORKGROUP_SIZE;
            word >> 16 == width && word & 0xffff == local % width
        })
}

/// Runs the probe; what each invocation recorded, or `None` where any step
/// failed (then nothing relies on subgroups).
async fn probe(device: &wgpu::Device, queue: &wgpu::Queue) -> Option<Vec<u32>> {
    let count = (PROBE_WORKGROUPS * PROBE_WORKGROUP_SIZE) as usize;
    let bytes = (count * 4) as u64;
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("subgroup_probe"),
        source: wgpu::ShaderSource::Wgsl(
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/shaders/subgroup_probe.wgsl"
            ))
            .into(),
        ),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("subgroup_probe"),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let buffer = |usage| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("subgroup probe"),
            size: bytes,
            usage,
            mapped_at_creation: false,
        })
    };
    let seen = buffer(wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC);
    let readback = buffer(wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST);
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("subgroup probe"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: seen.as_entire_binding(),
        }],
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(PROBE_WORKGROUPS, 1, 1);
    }
    encoder.copy_buffer_to_buffer(&seen, 0, &readback, 0, bytes);
    queue.submit([encoder.finish()]);
    if scope.pop().await.is_some() {
        return None;
    }
    let (sender, receiver) = futures_intrusive::channel::shared::oneshot_channel();
    readback
        .slice(..)
        .map_async(wgpu::MapMode::Read, move |result| {
            sender.send(result).ok();
        });
    device.poll(wgpu::PollType::wait_indefinitely()).ok()?;
    receiver.receive().await?.ok()?;
    let words =
        bytemuck::cast_slice::<u8, u32>(&readback.slice(..).get_mapped_range().ok()?).to_vec();
    readback.unmap();
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_check_takes_consecutive_lanes_only() {
        let seen = |f: &dyn Fn(u32) -> u32| -> Vec<u32> { (0..128).map(f).collect() };
        assert!(layout_holds(&seen(&|i| (i % 8) | 8 << 16), 8));
        assert!(layout_holds(&seen(&|i| (i % 4) | 4 << 16), 4));
        // Another width than the adapter's, lanes in another order, a
        // partial subgroup: each refused.
        assert!(!layout_holds(&seen(&|i| (i % 8) | 8 << 16), 4));
        assert!(!layout_holds(&seen(&|i| (7 - i % 8) | 8 << 16), 8));
        assert!(!layout_holds(
            &seen(&|i| (i % 8) | (if i == 70 { 6 } else { 8 }) << 16),
            8
        ));
        assert!(!layout_holds(&[], 8));
    }
}
