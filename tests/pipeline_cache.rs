//! Compiled kernels kept across processes through wgpu's pipeline cache
//! (Vulkan): saved sealed (adapter key and SHA-256 digest), loaded by a new
//! context, and truncated, damaged, foreign or unrelated data refused before
//! the driver sees it, with the right answer either way.

mod common;

use sha2::{Digest, Sha256};
use wgpu_conv2d::{Conv2d, Conv2dConfig, GpuContext, GpuConv2d, PipelineCacheLoad};

fn forward_is_right(ctx: &GpuContext, what: &str) {
    let layer = Conv2d::new(Conv2dConfig::new(4, 8, 3).with_padding(1), 5).unwrap();
    let input = common::random_tensor(&[1, 4, 12, 12], 5);
    let got = GpuConv2d::new(ctx, &layer)
        .unwrap()
        .forward(&input)
        .unwrap();
    common::assert_within_bound(
        what,
        &got,
        &layer.forward_cpu(&input).unwrap(),
        &common::magnitude(&layer, &input),
        common::terms(&layer),
    );
}

/// The sealed file's parts: magic (16 bytes), digest (32), key length (u32),
/// key, data length (u64), data. Rebuilt here from the documented layout, so
/// that a test can seal other data or another key with a valid digest.
fn parts(sealed: &[u8]) -> (String, Vec<u8>) {
    let body = &sealed[48..];
    let key_len = u32::from_le_bytes(body[..4].try_into().unwrap()) as usize;
    let key = String::from_utf8(body[4..4 + key_len].to_vec()).unwrap();
    (key, body[4 + key_len + 8..].to_vec())
}

fn seal(key: &str, data: &[u8]) -> Vec<u8> {
    let mut body = (key.len() as u32).to_le_bytes().to_vec();
    body.extend_from_slice(key.as_bytes());
    body.extend_from_slice(&(data.len() as u64).to_le_bytes());
    body.extend_from_slice(data);
    let mut sealed = b"wgpu-conv2d-plc\x01".to_vec();
    sealed.extend_from_slice(&Sha256::digest(&body));
    sealed.extend_from_slice(&body);
    sealed
}

/// A new context loading `bytes`: what it says, and that it still computes right.
fn load(bytes: &[u8], what: &str) -> PipelineCacheLoad {
    let ctx = GpuContext::new().unwrap().with_builds_ahead(false);
    let load = ctx.load_pipeline_cache_bytes(bytes);
    forward_is_right(&ctx, what);
    load
}

fn assert_refused(load: PipelineCacheLoad, what: &str, because: &str) {
    match load {
        PipelineCacheLoad::Refused(reason) => {
            assert!(reason.contains(because), "{what}: refused for {reason:?}")
        }
        other => panic!("{what}: expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_saved_pipeline_cache_loads_and_bad_data_is_refused() {
    let dir = std::env::temp_dir().join(format!("wgpu-conv2d-pipelines-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("kernels.pipelines");
    let first = GpuContext::new().unwrap().with_builds_ahead(false);
    forward_is_right(&first, "first context");
    let saved = first.save_pipeline_cache(&path).unwrap();
    assert_eq!(saved, first.has_pipeline_cache());
    if !saved {
        eprintln!(
            "no pipeline cache on {}: nothing to keep, loads say so",
            first.describe()
        );
        assert_eq!(
            first.load_pipeline_cache(&path).unwrap(),
            PipelineCacheLoad::Unsupported
        );
        return;
    }
    let sealed = std::fs::read(&path).unwrap();
    let (key, data) = parts(&sealed);
    eprintln!(
        "{}: the driver's data is {} bytes ({} sealed)",
        first.describe(),
        data.len(),
        sealed.len()
    );
    assert!(key.contains(&first.adapter_info().name), "{key}");

    let second = GpuContext::new().unwrap().with_builds_ahead(false);
    assert_eq!(
        second.load_pipeline_cache(&path).unwrap(),
        PipelineCacheLoad::Accepted
    );
    forward_is_right(&second, "after loading the saved cache");

    // Truncated: every length short of the whole refused.
    for len in [0, 10, 47, 48, sealed.len() / 2, sealed.len() - 1] {
        let what = format!("truncated to {len} bytes");
        assert!(matches!(
            load(&sealed[..len], &what),
            PipelineCacheLoad::Refused(_)
        ));
    }
    // One flipped byte anywhere: in the digest, the key, the driver's data.
    for at in [20, 60, sealed.len() - 1] {
        let mut flipped = sealed.clone();
        flipped[at] ^= 0x10;
        assert_refused(load(&flipped, "a flipped byte"), "flipped", "damaged");
    }
    // Another adapter's data, sealed with a valid digest.
    let foreign = seal(
        &key.replace(&first.adapter_info().name, "Another GPU"),
        &data,
    );
    assert_refused(
        load(&foreign, "another adapter's data"),
        "foreign",
        "another adapter",
    );
    // Sealed for this adapter, but not driver data wgpu recognises: wgpu's
    // own header check refuses it (no silent fallback).
    let unrelated = seal(&key, b"not a pipeline cache at all, but sealed properly");
    assert_refused(load(&unrelated, "unrelated data"), "unrelated", "wgpu");
    // Not a sealed file at all, through the path form; a missing file.
    std::fs::write(&path, b"not a pipeline cache").unwrap();
    let third = GpuContext::new().unwrap().with_builds_ahead(false);
    assert_refused(
        third.load_pipeline_cache(&path).unwrap(),
        "unsealed",
        "not a wgpu-conv2d",
    );
    assert_eq!(
        third.load_pipeline_cache(dir.join("missing")).unwrap(),
        PipelineCacheLoad::Missing
    );
    forward_is_right(&third, "after refusals");
    std::fs::remove_dir_all(&dir).unwrap();
}
