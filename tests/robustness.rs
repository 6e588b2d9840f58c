//! Robust at the limits: tensors past the default binding and dispatch limits,
//! tensors too large for the device, device loss, many threads, and flat memory.

mod common;

use std::sync::Arc;

use common::{assert_within_bound, magnitude, random_tensor, terms};
use wgpu_conv2d::{
    Algorithm, Conv2d, Conv2dConfig, Conv2dError, Conv2dGeometry, GpuContext, GpuConv2d, Padding,
    PaddingMode, Precision, Tensor,
};

/// Checks `config` on a random input of `shape` with each of `algorithms`.
fn check_large(what: &str, config: Conv2dConfig, shape: &[usize], algorithms: &[Algorithm]) {
    let layer = Conv2d::new(config, 11).unwrap();
    let input = random_tensor(shape, 12);
    let want = layer.forward_cpu(&input).unwrap();
    let magnitude = magnitude(&layer, &input);
    for &algorithm in algorithms {
        let got = GpuConv2d::new(common::gpu(), &layer)
            .unwrap()
            .with_algorithm(algorithm)
            .forward(&input)
            .unwrap();
        let what = format!("{what} [{algorithm}]");
        assert_within_bound(&what, &got, &want, &magnitude, terms(&layer));
    }
}

#[test]
fn more_than_65535_workgroups_in_one_dimension() {
    // 2048×2048 outputs: 65536 workgroups of 64, one more than a dimension holds.
    let config = Conv2dConfig::new(1, 1, 3)
        .with_padding(1)
        .with_padding_mode(PaddingMode::Reflect);
    // The direct kernel and the GEMM's 64-position tiles both need 65536 workgroups.
    let algorithms = [
        Algorithm::Direct,
        Algorithm::ImplicitGemm,
        Algorithm::Depthwise,
        Algorithm::Blocked,
    ];
    check_large(
        "1x1x2048x2048 output",
        config,
        &[1, 1, 2048, 2048],
        &algorithms,
    );
}

#[test]
fn input_larger_than_the_storage_binding_limit() {
    // 1×33×1024×1024 f32 is 132 MiB, over lavapipe's (and WebGPU's default) 128 MiB binding.
    let config = Conv2dConfig::new(33, 2, 3)
        .with_padding(Padding::Same)
        .with_padding_mode(PaddingMode::Circular);
    let algorithms = [
        Algorithm::Direct,
        Algorithm::ImplicitGemm,
        Algorithm::Blocked,
    ];
    check_large(
        "1x33x1024x1024 input",
        config,
        &[1, 33, 1024, 1024],
        &algorithms,
    );
}

#[test]
fn output_larger_than_the_storage_binding_limit() {
    // 1×40×1024×1024 f32 is 160 MiB of output.
    let config = Conv2dConfig::new(1, 40, 1);
    let algorithms = [
        Algorithm::Direct,
        Algorithm::ImplicitGemm,
        Algorithm::Gemm1x1,
        Algorithm::Depthwise,
        Algorithm::Blocked,
    ];
    check_large(
        "1x40x1024x1024 output",
        config,
        &[1, 1, 1024, 1024],
        &algorithms,
    );
}

fn check_large_backward(what: &str, config: Conv2dConfig, shape: &[usize]) {
    let layer = Conv2d::new(config, 13).unwrap();
    let input = random_tensor(shape, 14);
    let out_shape = layer.forward_cpu(&Tensor::zeros([1, shape[1], shape[2], shape[3]]).unwrap());
    let mut grad_shape = out_shape.unwrap().shape().to_vec();
    grad_shape[0] = shape[0];
    let grad_output = random_tensor(&grad_shape, 15);
    let got = GpuConv2d::new(common::gpu(), &layer)
        .unwrap()
        .backward(&input, &grad_output)
        .unwrap();
    let want = layer.backward_cpu(&input, &grad_output).unwrap();
    common::assert_grads_within_bound(what, &got, &want, &layer, &input, &grad_output);
}

#[test]
fn backward_of_tensors_larger_than_the_storage_binding_limit() {
    // The input (and its gradient) is 132 MiB: split into blocks of input channels.
    let config = Conv2dConfig::new(33, 2, 3)
        .with_padding(1)
        .with_padding_mode(PaddingMode::Reflect);
    check_large_backward(
        "backward, 1x33x1024x1024 input",
        config,
        &[1, 33, 1024, 1024],
    );
    // grad_output is 160 MiB: split into blocks of output channels.
    let config = Conv2dConfig::new(1, 40, 1);
    check_large_backward(
        "backward, 1x40x1024x1024 grad_output",
        config,
        &[1, 1, 1024, 1024],
    );
}

#[test]
fn tensors_too_large_for_the_device_are_refused_before_any_gpu_work() {
    // A 1×1 input padded to a 60001×60001 output: 14 GiB, past every buffer limit.
    let layer = Conv2d::new(Conv2dConfig::new(1, 1, 1).with_padding(30000), 1).unwrap();
    let err = GpuConv2d::new(common::gpu(), &layer)
        .unwrap()
        .forward(&Tensor::zeros([1, 1, 1, 1]).unwrap())
        .unwrap_err();
    match &err {
        Conv2dError::TensorTooLarge {
            what,
            bytes,
            limit,
            adapter,
        } => {
            assert_eq!(*what, "output");
            assert_eq!(*bytes, 60001u64 * 60001 * 4);
            assert!(bytes > limit && !adapter.is_empty(), "{err}");
        }
        other => panic!("expected TensorTooLarge, got {other}"),
    }
    // One plane over the binding limit cannot be split by channels either.
    let small = common::gpu().with_max_binding_bytes(1024);
    let layer = Conv2d::new(Conv2dConfig::new(1, 1, 1), 1).unwrap();
    let err = GpuConv2d::new(&small, &layer)
        .unwrap()
        .forward(&Tensor::zeros([1, 1, 32, 32]).unwrap())
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("one input plane (H×W) needs 4096 bytes"),
        "{err}"
    );
}

/// A kernel's packed weight is bound whole: where it does not fit one
/// binding (Winograd's transform is 16× the weight for one output channel:
/// 36 values per tap pair, output channels padded to 4), the call is refused
/// with the tensor named, before any GPU work; `min_binding_bytes` counts it.
#[test]
fn a_packed_weight_past_the_binding_limit_is_refused() {
    let config = Conv2dConfig::new(8, 1, 3).with_padding(1);
    let layer = Conv2d::new(config, 3).unwrap();
    let input = Tensor::zeros([1, 8, 4, 4]).unwrap();
    let small = common::gpu().with_max_binding_bytes(1024);
    let err = GpuConv2d::new(&small, &layer)
        .unwrap()
        .with_algorithm(Algorithm::Winograd)
        .forward(&input)
        .unwrap_err();
    match &err {
        Conv2dError::TensorTooLarge {
            what, bytes, limit, ..
        } => {
            assert_eq!(*what, "packed weight", "{err}");
            assert_eq!((*bytes, *limit), (36 * 8 * 4 * 4, 1024), "{err}");
        }
        other => panic!("expected TensorTooLarge, got {other}"),
    }
    let geometry = Conv2dGeometry::new(&config, input.shape()).unwrap();
    let enough = Algorithm::Winograd
        .min_binding_bytes(&geometry, small.adapter_info().device_type, Precision::High)
        .unwrap();
    assert_eq!(enough, 36 * 8 * 4 * 4);
    let fits = common::gpu().with_max_binding_bytes(enough);
    GpuConv2d::new(&fits, &layer)
        .unwrap()
        .with_algorithm(Algorithm::Winograd)
        .forward(&input)
        .unwrap();
}

#[test]
fn context_and_operator_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<GpuContext>();
    assert_send_sync::<GpuConv2d>();
    assert_send_sync::<Conv2d>();
    assert_send_sync::<Conv2dError>();
}

#[test]
fn eight_threads_share_one_context() {
    let ctx = common::gpu();
    let shared_layer = Conv2d::new(Conv2dConfig::new(4, 6, 3).with_padding(1), 5).unwrap();
    let shared = Arc::new(GpuConv2d::new(ctx, &shared_layer).unwrap());
    std::thread::scope(|scope| {
        for t in 0..8u64 {
            let shared = shared.clone();
            let shared_layer = &shared_layer;
            scope.spawn(move || {
                // Each thread also builds its own operator with another configuration.
                let mode = PaddingMode::ALL[t as usize % 4];
                let own_layer = Conv2d::new(
                    Conv2dConfig::new(3, 2, (2, 3))
                        .with_padding((1, 2))
                        .with_padding_mode(mode),
                    t,
                )
                .unwrap();
                let own = GpuConv2d::new(ctx, &own_layer).unwrap();
                for i in 0..20 {
                    let x = random_tensor(&[2, 4, 9, 7], t * 100 + i);
                    let want = shared_layer.forward_cpu(&x).unwrap();
                    let got = shared.forward(&x).unwrap();
                    assert_within_bound(
                        "shared",
                        &got,
                        &want,
                        &magnitude(shared_layer, &x),
                        terms(shared_layer),
                    );
                    let x = random_tensor(&[3, 6, 6], t * 100 + i);
                    let got = own.forward(&x).unwrap();
                    let want = own_layer.forward_cpu(&x).unwrap();
                    assert_within_bound(
                        "own",
                        &got,
                        &want,
                        &magnitude(&own_layer, &x),
                        terms(&own_layer),
                    );
                }
            });
        }
    });
}

#[test]
fn device_loss_is_an_error_value_for_every_later_call() {
    let ctx = GpuContext::new().unwrap();
    let gpu = GpuConv2d::new(&ctx, &Conv2d::new(Conv2dConfig::new(1, 1, 3), 0).unwrap()).unwrap();
    let x = Tensor::zeros([1, 1, 5, 5]).unwrap();
    assert!(gpu.forward(&x).is_ok());
    ctx.device().destroy();
    for _ in 0..3 {
        match gpu.forward(&x) {
            Err(Conv2dError::DeviceLost(reason)) => assert!(!reason.is_empty()),
            other => panic!("expected DeviceLost, got {other:?}"),
        }
    }
    let err =
        GpuConv2d::new(&ctx, &Conv2d::new(Conv2dConfig::new(1, 1, 3), 0).unwrap()).unwrap_err();
    assert!(matches!(err, Conv2dError::DeviceLost(_)), "{err}");
}
