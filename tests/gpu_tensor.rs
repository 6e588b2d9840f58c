//! GPU-resident tensors: layers chain without read-back, and pooled buffers
//! make repeated calls allocate nothing new.

mod common;

use common::{assert_within_bound, magnitude, random_tensor, terms};
use wgpu_conv2d::{
    Algorithm, Conv2d, Conv2dConfig, Conv2dError, GpuContext, GpuConv2d, GpuTensor, GradMask,
    Padding, PaddingMode, Tensor,
};

fn two_layers() -> (Conv2d, Conv2d) {
    let first = Conv2d::new(
        Conv2dConfig::new(3, 32, 3)
            .with_padding(Padding::Same)
            .with_padding_mode(PaddingMode::Reflect),
        1,
    )
    .unwrap();
    let second = Conv2d::new(
        Conv2dConfig::new(32, 16, 3).with_stride(2).with_padding(1),
        2,
    )
    .unwrap();
    (first, second)
}

#[test]
fn layers_chain_on_the_gpu() {
    let ctx = common::gpu();
    let (first, second) = two_layers();
    let x = random_tensor(&[2, 3, 17, 15], 3);
    let resident = GpuTensor::upload(ctx, &x).unwrap();
    let hidden = GpuConv2d::new(ctx, &first)
        .unwrap()
        .forward_gpu(&resident)
        .unwrap();
    let y = GpuConv2d::new(ctx, &second)
        .unwrap()
        .forward_gpu(&hidden)
        .unwrap();
    assert_eq!(hidden.shape(), [2, 32, 17, 15]);
    assert_eq!(y.shape(), [2, 16, 9, 8]);
    // Each layer within its fp32 bound, the second fed with the first's GPU output.
    let hidden_host = hidden.download().unwrap();
    let want_hidden = first.forward_cpu(&x).unwrap();
    assert_within_bound(
        "first layer",
        &hidden_host,
        &want_hidden,
        &magnitude(&first, &x),
        terms(&first),
    );
    let want = second.forward_cpu(&hidden_host).unwrap();
    assert_within_bound(
        "second layer",
        &y.download().unwrap(),
        &want,
        &magnitude(&second, &hidden_host),
        terms(&second),
    );
    // Unbatched tensors keep their rank.
    let unbatched = GpuTensor::upload(ctx, &random_tensor(&[3, 8, 8], 4)).unwrap();
    let out = GpuConv2d::new(ctx, &first)
        .unwrap()
        .forward_gpu(&unbatched)
        .unwrap();
    assert_eq!(out.shape(), [32, 8, 8]);
}

#[test]
fn repeated_calls_allocate_no_new_buffers() {
    // A context of its own, so other tests' calls do not count.
    let ctx = GpuContext::new().unwrap().with_builds_ahead(false);
    let (first, second) = two_layers();
    let layers = [
        GpuConv2d::new(&ctx, &first).unwrap(),
        GpuConv2d::new(&ctx, &second)
            .unwrap()
            .with_algorithm(Algorithm::Direct),
    ];
    let x = random_tensor(&[2, 3, 17, 15], 3);
    let grad = random_tensor(&[2, 32, 17, 15], 5);
    let step = || {
        let resident = GpuTensor::upload(&ctx, &x).unwrap();
        let hidden = layers[0].forward_gpu(&resident).unwrap();
        let y = layers[1].forward_gpu(&hidden).unwrap();
        y.download().unwrap();
        layers[0].forward(&x).unwrap();
        layers[0].backward(&x, &grad).unwrap();
    };
    step();
    let created = ctx.buffers_created();
    for _ in 0..50 {
        step();
    }
    assert_eq!(
        ctx.buffers_created(),
        created,
        "buffers created after warm-up"
    );
    assert!(ctx.pooled_bytes() > 0);
}

#[test]
fn tensors_of_another_context_are_refused() {
    let other = GpuContext::new().unwrap();
    let (first, _) = two_layers();
    let x = GpuTensor::upload(&other, &Tensor::zeros([1, 3, 5, 5]).unwrap()).unwrap();
    let err = GpuConv2d::new(common::gpu(), &first)
        .unwrap()
        .forward_gpu(&x)
        .unwrap_err();
    assert!(matches!(err, Conv2dError::ContextMismatch { .. }), "{err}");
    // Shape errors are the same as for host tensors.
    let bad = GpuTensor::upload(common::gpu(), &Tensor::zeros([1, 4, 5, 5]).unwrap()).unwrap();
    let gpu = GpuConv2d::new(common::gpu(), &first).unwrap();
    assert_eq!(
        gpu.forward_gpu(&bad).unwrap_err(),
        first
            .forward_cpu(&Tensor::zeros([1, 4, 5, 5]).unwrap())
            .unwrap_err()
    );
}

#[test]
fn timed_forward_reports_a_kernel_time() {
    let ctx = common::gpu();
    let (first, _) = two_layers();
    let x = GpuTensor::upload(ctx, &random_tensor(&[1, 3, 32, 32], 6)).unwrap();
    let (y, millis) = GpuConv2d::new(ctx, &first)
        .unwrap()
        .forward_gpu_timed(&x)
        .unwrap();
    assert_eq!(y.shape(), [1, 32, 32, 32]);
    if ctx.has_timestamps() {
        let millis = millis.expect("a kernel time from timestamps");
        assert!(millis > 0.0 && millis < 10_000.0, "{millis} ms");
    } else {
        assert!(millis.is_none());
    }
}

#[test]
fn blocked_kernel_repacks_the_weight_after_an_sgd_step() {
    // The blocked kernel caches a packed copy of the weight; training must refresh it.
    let layer = Conv2d::new(Conv2dConfig::new(4, 16, 3).with_padding(1), 3).unwrap();
    let input = random_tensor(&[2, 4, 9, 9], 4);
    let mut gpu = GpuConv2d::new(common::gpu(), &layer)
        .unwrap()
        .with_algorithm(Algorithm::Blocked);
    let before = gpu.forward(&input).unwrap();
    let grad_output = random_tensor(before.shape(), 5);
    gpu.sgd_step(&input, &grad_output, 0.5).unwrap();
    let after = gpu.forward(&input).unwrap();
    let trained = gpu.to_layer().unwrap();
    assert_ne!(trained.weight().data(), layer.weight().data());
    let want = trained.forward_cpu(&input).unwrap();
    assert_within_bound(
        "blocked forward after sgd_step",
        &after,
        &want,
        &magnitude(&trained, &input),
        terms(&trained),
    );
}

#[test]
fn gradients_stay_on_the_gpu_and_match_the_host_backward() {
    let ctx = common::gpu();
    let (first, second) = two_layers();
    let x = random_tensor(&[2, 3, 17, 15], 5);
    let layer1 = GpuConv2d::new(ctx, &first).unwrap();
    let layer2 = GpuConv2d::new(ctx, &second).unwrap();
    let x_gpu = GpuTensor::upload(ctx, &x).unwrap();
    let hidden = layer1.forward_gpu(&x_gpu).unwrap();
    let y = layer2.forward_gpu(&hidden).unwrap();
    let grad_y = GpuTensor::upload(ctx, &random_tensor(y.shape(), 6)).unwrap();
    // Through both layers without a read-back: the second layer's input
    // gradient is the first layer's output gradient.
    let grads2 = layer2
        .backward_gpu(&hidden, &grad_y, GradMask::ALL)
        .unwrap();
    let grad_hidden = grads2.grad_input.as_ref().unwrap();
    let grads1 = layer1
        .backward_gpu(&x_gpu, grad_hidden, GradMask::PARAMETERS)
        .unwrap();
    assert!(grads1.grad_input.is_none(), "not asked for");
    // The same kernels as the host path: the same bits.
    let hidden_host = hidden.download().unwrap();
    let host2 = layer2
        .backward(&hidden_host, &grad_y.download().unwrap())
        .unwrap();
    assert_eq!(grad_hidden.download().unwrap(), host2.grad_input);
    assert_eq!(
        grads2.grad_weight.as_ref().unwrap().download().unwrap(),
        host2.grad_weight
    );
    assert_eq!(
        grads2.grad_bias.as_ref().unwrap().download().unwrap(),
        host2.grad_bias.clone().unwrap()
    );
    let host1 = layer1.backward(&x, &host2.grad_input).unwrap();
    assert_eq!(
        grads1.grad_weight.unwrap().download().unwrap(),
        host1.grad_weight
    );
    assert_eq!(
        grads1.grad_bias.unwrap().download().unwrap(),
        host1.grad_bias.unwrap()
    );
    // And the host path matches the CPU reference.
    let want = second
        .backward_cpu(&hidden_host, &grad_y.download().unwrap())
        .unwrap();
    common::assert_grads_within_bound(
        "second layer",
        &host2,
        &want,
        &second,
        &hidden_host,
        &grad_y.download().unwrap(),
    );
    // Only the bias: no input or weight gradient made.
    let only_bias = layer2
        .backward_gpu(
            &hidden,
            &grad_y,
            GradMask {
                input: false,
                weight: false,
                bias: true,
            },
        )
        .unwrap();
    assert!(only_bias.grad_input.is_none() && only_bias.grad_weight.is_none());
    assert_eq!(
        only_bias.grad_bias.unwrap().download().unwrap(),
        host2.grad_bias.clone().unwrap()
    );
    // An empty batch gives zeros, as PyTorch does.
    let empty = GpuTensor::upload(ctx, &Tensor::zeros([0, 32, 17, 15]).unwrap()).unwrap();
    let empty_grad = GpuTensor::upload(ctx, &Tensor::zeros([0, 16, 9, 8]).unwrap()).unwrap();
    let zeros = layer2
        .backward_gpu(&empty, &empty_grad, GradMask::ALL)
        .unwrap();
    let grad_weight = zeros.grad_weight.unwrap().download().unwrap();
    assert!(grad_weight.data().iter().all(|&v| v == 0.0));
    assert_eq!(zeros.grad_input.unwrap().shape(), [0, 32, 17, 15]);
}
