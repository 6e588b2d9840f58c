//! Kernels built ahead on a second device (`GpuContext::with_builds_ahead`),
//! as on llvmpipe, CI's driver: forward and backward results agree with the
//! CPU reference from the first call, while the picked kernels build and
//! once they are built. (Which
//! kernel runs when is tested inside the crate, where it can be held.)

mod common;

use common::{assert_grads_within_bound, check_algorithm, random_tensor};
use wgpu_conv2d::{Algorithm, Conv2d, Conv2dConfig, GpuContext, GpuConv2d, Precision};

#[test]
fn calls_agree_while_and_after_kernels_build_ahead() {
    let ctx = GpuContext::new().unwrap_or_else(|e| panic!("this test needs a GPU adapter: {e}"));
    let info = ctx.adapter_info();
    let cache_off = std::env::var("MESA_SHADER_CACHE_DISABLE")
        .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "y"));
    let llvmpipe = info.backend == wgpu::Backend::Vulkan && info.driver == "llvmpipe";
    assert_eq!(
        ctx.builds_ahead(),
        llvmpipe && !cache_off,
        "{}",
        ctx.describe()
    );
    assert!(!ctx.with_builds_ahead(false).builds_ahead());

    // The blocked kernel's 16-channel variant and, under `High`, Winograd:
    // each first call runs the quick kernel on llvmpipe.
    let cases = [
        (
            Conv2dConfig::new(32, 32, 3).with_padding(1),
            [2, 32, 20, 20],
            Precision::Highest,
        ),
        (
            Conv2dConfig::new(16, 48, 1),
            [1, 16, 24, 24],
            Precision::Highest,
        ),
        (
            Conv2dConfig::new(64, 64, 3).with_padding(1),
            [1, 64, 12, 12],
            Precision::High,
        ),
    ];
    for (i, (config, shape, precision)) in cases.into_iter().enumerate() {
        let ctx = ctx.with_precision(precision);
        let layer = Conv2d::new(config, i as u64).unwrap();
        let input = random_tensor(&shape, 10 + i as u64);
        let what = format!("{config:?} on {shape:?} under {precision:?}");
        check_algorithm(
            &format!("{what}, first call"),
            &layer,
            &input,
            Algorithm::Auto,
            &ctx,
        );
        ctx.wait_for_builds_ahead();
        check_algorithm(
            &format!("{what}, once built"),
            &layer,
            &input,
            Algorithm::Auto,
            &ctx,
        );
    }
    // The backward: its input gradient's phases and weight gradient.
    let config = Conv2dConfig::new(16, 32, 3).with_padding(1);
    let layer = Conv2d::new(config, 5).unwrap();
    let input = random_tensor(&[2, 16, 18, 18], 20);
    let grad_output = random_tensor(&[2, 32, 18, 18], 21);
    let want = layer.backward_cpu(&input, &grad_output).unwrap();
    let op = GpuConv2d::new(&ctx, &layer).unwrap();
    for when in ["first call", "once built"] {
        let got = op.backward(&input, &grad_output).unwrap();
        let what = format!("backward of {config:?}, {when}");
        assert_grads_within_bound(&what, &got, &want, &layer, &input, &grad_output);
        ctx.wait_for_builds_ahead();
    }
    // Dropping the last context waits for any build still running.
}
