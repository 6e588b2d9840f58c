//! Compiled kernels kept across processes through wgpu's pipeline cache
//! (Vulkan): saved, loaded by a new context, and damaged files ignored.

mod common;

use wgpu_conv2d::{Conv2d, Conv2dConfig, GpuContext, GpuConv2d};

fn forward_is_right(ctx: &GpuContext) {
    let layer = Conv2d::new(Conv2dConfig::new(4, 8, 3).with_padding(1), 5).unwrap();
    let input = common::random_tensor(&[1, 4, 12, 12], 5);
    let got = GpuConv2d::new(ctx, &layer)
        .unwrap()
        .forward(&input)
        .unwrap();
    common::assert_within_bound(
        "after loading a pipeline cache",
        &got,
        &layer.forward_cpu(&input).unwrap(),
        &common::magnitude(&layer, &input),
        common::terms(&layer),
    );
}

#[test]
fn a_saved_pipeline_cache_loads_into_a_new_context_and_damage_is_ignored() {
    let dir = std::env::temp_dir().join(format!("wgpu-conv2d-pipelines-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("kernels.pipelines");
    let first = GpuContext::new().unwrap();
    forward_is_right(&first);
    let saved = first.save_pipeline_cache(&path).unwrap();
    assert_eq!(saved, first.has_pipeline_cache());
    if !saved {
        eprintln!("no pipeline cache on {}: nothing to keep", first.describe());
        return;
    }
    assert!(std::fs::metadata(&path).unwrap().len() > 0);

    let second = GpuContext::new().unwrap();
    assert!(second.load_pipeline_cache(&path).unwrap());
    forward_is_right(&second);

    // Damaged data: wgpu's header check fails and an empty cache is used.
    std::fs::write(&path, b"not a pipeline cache").unwrap();
    let third = GpuContext::new().unwrap();
    assert!(third.load_pipeline_cache(&path).unwrap());
    forward_is_right(&third);
    // A missing file is an empty cache too.
    assert!(third.load_pipeline_cache(dir.join("missing")).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}
