//! Shared by the integration tests: one GPU context per test binary, and the
//! comparison of a GPU result with the CPU reference under the fp32 error bound.
#![allow(dead_code)]

mod bounds;
mod cases;
pub mod winograd;

pub use bounds::*;
#[allow(unused_imports)] // Not every test binary reads JSON cases.
pub use cases::*;

use std::sync::OnceLock;

use rand::{RngExt, SeedableRng, rngs::StdRng};
use serde_json::Value;
use wgpu_conv2d::{Algorithm, Conv2d, GpuContext, GpuConv2d, Tensor};

/// The GPU context of this test binary. Without an adapter the calling test
/// fails (it never skips) and says how to get one. It builds no kernel ahead
/// (`with_builds_ahead`): `Auto` runs the kernel it picks from the first call
/// (the tests of building ahead open contexts of their own), and the 2-core
/// CI machine builds no kernel twice.
pub fn gpu() -> &'static GpuContext {
    static CTX: OnceLock<Result<GpuContext, String>> = OnceLock::new();
    let open = || GpuContext::new().map(|ctx| ctx.with_builds_ahead(false));
    match CTX.get_or_init(|| open().map_err(|e| e.to_string())) {
        Ok(ctx) => ctx,
        Err(e) => panic!("GPU tests need an adapter and found none: {e}"),
    }
}

/// `layer` with input channel `c`'s weights zeroed in every output channel
/// (a layer without groups): its result is the layer's with that channel
/// dropped.
pub fn without_input_channel(layer: &Conv2d, c: usize) -> Conv2d {
    let [k, channels, kh, kw] = <[usize; 4]>::try_from(layer.weight().shape()).unwrap();
    let mut weight = layer.weight().data().to_vec();
    for o in 0..k {
        weight[(o * channels + c) * kh * kw..][..kh * kw].fill(0.0);
    }
    Conv2d::from_weights(
        *layer.config(),
        Tensor::new(layer.weight().shape(), weight).unwrap(),
        layer.bias().cloned(),
    )
    .unwrap()
}

/// Runs `layer` on the GPU and checks it against the CPU reference.
pub fn check_gpu_against_cpu(what: &str, layer: &Conv2d, input: &Tensor) -> Tensor {
    check_algorithm(what, layer, input, Algorithm::Auto, gpu())
}

/// Runs `layer` on the GPU with `algorithm` on `ctx` and checks it against the CPU reference.
pub fn check_algorithm(
    what: &str,
    layer: &Conv2d,
    input: &Tensor,
    algorithm: Algorithm,
    ctx: &wgpu_conv2d::GpuContext,
) -> Tensor {
    let what = &format!("{what} [{algorithm}]");
    let gpu_layer = wgpu_conv2d::GpuConv2d::new(ctx, layer)
        .unwrap()
        .with_algorithm(algorithm);
    let got = gpu_layer
        .forward(input)
        .unwrap_or_else(|e| panic!("{what}: GPU forward failed: {e}"));
    let want = layer.forward_cpu(input).unwrap();
    assert_within_bound(what, &got, &want, &magnitude(layer, input), terms(layer));
    got
}

/// Reads a JSON file of tests/data (of the checkout the tests were built in,
/// or of `WGPU_CONV2D_TEST_DATA`: tools/device_check.sh runs test binaries
/// built elsewhere).
pub fn load(name: &str) -> Value {
    let dir = std::env::var("WGPU_CONV2D_TEST_DATA")
        .unwrap_or_else(|_| format!("{}/tests/data", env!("CARGO_MANIFEST_DIR")));
    let path = format!("{dir}/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// Checks the CPU reference and the GPU against PyTorch's `expected` output.
pub fn check_both_paths(name: &str, layer: &Conv2d, input: &Tensor, expected: &Tensor) {
    let mag = magnitude(layer, input);
    let cpu = layer
        .forward_cpu(input)
        .unwrap_or_else(|e| panic!("{name} (cpu): {e}"));
    assert_within_bound(&format!("{name} (cpu)"), &cpu, expected, &mag, terms(layer));
    // Every algorithm that can run the case, forced, and Auto's pick.
    let geometry = wgpu_conv2d::Conv2dGeometry::new(layer.config(), input.shape()).unwrap();
    for algorithm in std::iter::once(Algorithm::Auto).chain(Algorithm::KERNELS) {
        if algorithm.check(&geometry).is_err() {
            continue;
        }
        let gpu = GpuConv2d::new(gpu(), layer)
            .and_then(|g| g.with_algorithm(algorithm).forward(input))
            .unwrap_or_else(|e| panic!("{name} (gpu, {algorithm}): {e}"));
        let what = format!("{name} (gpu, {algorithm})");
        if let Some(own) = own_bound(algorithm, layer, input) {
            // Its own bound, plus PyTorch's rounding in `expected`.
            let tolerance = own
                .data()
                .iter()
                .zip(mag.data())
                .map(|(&w, &m)| w + bound(terms(layer), m))
                .collect();
            let tolerance = Tensor::new(expected.shape(), tolerance).unwrap();
            assert_within(&what, &gpu, expected, &tolerance);
        } else {
            assert_within_bound(&what, &gpu, expected, &mag, terms(layer));
        }
    }
}

/// Uniform values in [-1, 1), seeded.
pub fn random_tensor(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = shape.iter().product();
    Tensor::new(shape, (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()).unwrap()
}

/// `count`, or the fraction of it that `WGPU_CONV2D_SWEEP_FRACTION` asks for
/// (at least 8, the first cases of the same seeded sequence): CI's slow
/// second driver (SwiftShader) and its validation-layer run take a sample of
/// the random suites. Said on stderr, so that a sample is never mistaken for
/// the whole.
pub fn sampled(count: usize) -> usize {
    let Some(fraction) = std::env::var("WGPU_CONV2D_SWEEP_FRACTION")
        .ok()
        .and_then(|f| f.parse::<f64>().ok())
    else {
        return count;
    };
    let sample = ((count as f64 * fraction).ceil() as usize).clamp(8.min(count), count);
    eprintln!("WGPU_CONV2D_SWEEP_FRACTION={fraction}: {sample} of {count} random cases");
    sample
}
