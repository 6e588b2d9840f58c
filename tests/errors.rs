//! One test per error rule. Each checks the message (PyTorch's wording, with the
//! offending values) and that the CPU reference and the GPU refuse alike.

mod common;

use wgpu_conv2d::{Conv2d, Conv2dConfig, Conv2dError, GpuConv2d, Padding, PaddingMode, Tensor};

/// Runs `config` on an input of `shape` on both paths and returns the error message.
fn forward_error(config: Conv2dConfig, shape: &[usize]) -> String {
    let input = Tensor::zeros(shape).unwrap();
    let cpu = Conv2d::new(config, 0).and_then(|l| l.forward_cpu(&input));
    let gpu = Conv2d::new(config, 0)
        .and_then(|l| GpuConv2d::new(common::gpu(), &l))
        .and_then(|g| g.forward(&input));
    match (cpu, gpu) {
        (Err(c), Err(g)) => {
            assert_eq!(c, g, "CPU and GPU disagree");
            c.to_string()
        }
        (c, g) => panic!(
            "expected an error on both paths, got cpu {c:?}, gpu {:?}",
            g.map(|t| t.shape().to_vec())
        ),
    }
}

fn config_error(config: Conv2dConfig) -> String {
    config.validate().unwrap_err().to_string()
}

#[test]
fn groups_must_be_positive() {
    assert_eq!(
        config_error(Conv2dConfig::new(3, 3, 3).with_groups(0)),
        "groups must be a positive integer, got groups=0"
    );
}

#[test]
fn in_channels_must_divide_by_groups() {
    let msg = config_error(Conv2dConfig::new(3, 4, 3).with_groups(2));
    assert!(
        msg.starts_with("in_channels must be divisible by groups")
            && msg.contains("in_channels=3, groups=2"),
        "{msg}"
    );
}

#[test]
fn out_channels_must_divide_by_groups() {
    let msg = config_error(Conv2dConfig::new(4, 3, 3).with_groups(2));
    assert!(
        msg.starts_with("out_channels must be divisible by groups")
            && msg.contains("out_channels=3"),
        "{msg}"
    );
}

#[test]
fn out_channels_must_reach_groups() {
    assert_eq!(
        config_error(Conv2dConfig::new(3, 0, 3)),
        "Given groups=1, expected weight to be at least 1 at dimension 0, but got weight of size [0, 3, 3, 3] instead"
    );
}

#[test]
fn same_rejects_strides() {
    let msg = config_error(
        Conv2dConfig::new(1, 1, 3)
            .with_padding(Padding::Same)
            .with_stride((1, 2)),
    );
    assert!(
        msg.starts_with("padding='same' is not supported for strided convolutions")
            && msg.contains("(1, 2)"),
        "{msg}"
    );
}

#[test]
fn zeros_mode_rejects_negative_padding() {
    let msg = config_error(Conv2dConfig::new(1, 1, 3).with_padding((0, -1)));
    assert!(
        msg.starts_with("negative padding is not supported") && msg.contains("(0, -1)"),
        "{msg}"
    );
}

#[test]
fn stride_dilation_and_kernel_must_be_positive() {
    assert!(
        config_error(Conv2dConfig::new(1, 1, 3).with_stride((0, 1)))
            .starts_with("non-positive stride is not supported, got stride=(0, 1)")
    );
    assert!(
        config_error(Conv2dConfig::new(1, 1, 3).with_dilation((1, 0)))
            .starts_with("non-positive dilation is not supported, got dilation=(1, 0)")
    );
    assert!(
        config_error(Conv2dConfig::new(1, 1, (0, 3)))
            .starts_with("non-positive kernel size is not supported, got kernel_size=(0, 3)")
    );
}

#[test]
fn absurd_sizes_are_refused_not_overflowed() {
    let msg = config_error(Conv2dConfig::new(1, 1, 3).with_padding(Padding::uniform(1 << 62)));
    assert!(msg.starts_with("padding is too large"), "{msg}");
    let msg = config_error(Conv2dConfig::new(1, 1, 3).with_dilation(usize::MAX));
    assert!(msg.starts_with("dilation is too large"), "{msg}");
    let msg = forward_error(Conv2dConfig::new(1, 1, 3), &[0, 1, usize::MAX / 2, 4]);
    assert!(msg.starts_with("input dimension is too large"), "{msg}");
}

#[test]
fn padding_strings_and_modes_are_checked() {
    assert_eq!(
        "foo".parse::<Padding>().unwrap_err().to_string(),
        "Invalid padding string 'foo', should be one of {'valid', 'same'} or an integer / 'h,w' pair"
    );
    assert_eq!(
        "xyz".parse::<PaddingMode>().unwrap_err().to_string(),
        "padding_mode must be one of {'zeros', 'reflect', 'replicate', 'circular'}, but got padding_mode='xyz'"
    );
}

#[test]
fn input_must_be_3d_or_4d() {
    assert_eq!(
        forward_error(Conv2dConfig::new(2, 2, 3), &[1, 2, 3, 5, 5]),
        "Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: [1, 2, 3, 5, 5]"
    );
}

#[test]
fn channels_must_match_the_weight() {
    assert_eq!(
        forward_error(Conv2dConfig::new(3, 6, 3), &[1, 4, 5, 5]),
        "Given groups=1, weight of size [6, 3, 3, 3], expected input[1, 4, 5, 5] to have 3 channels, but got 4 channels instead"
    );
    assert_eq!(
        forward_error(Conv2dConfig::new(6, 6, 3).with_groups(2), &[4, 5, 5]),
        "Given groups=2, weight of size [6, 3, 3, 3], expected input[1, 4, 5, 5] to have 6 channels, but got 4 channels instead"
    );
}

#[test]
fn kernel_must_fit_the_padded_input() {
    assert_eq!(
        forward_error(Conv2dConfig::new(1, 1, 3).with_dilation(2), &[1, 1, 4, 4]),
        "Calculated padded input size per channel: (4 x 4). Kernel size: (5 x 5). Kernel size can't be greater than actual input size"
    );
    // Checked even for an empty batch, as PyTorch does.
    assert!(
        forward_error(Conv2dConfig::new(1, 1, 3), &[0, 1, 2, 2])
            .starts_with("Calculated padded input size per channel: (2 x 2)")
    );
}

#[test]
fn empty_spatial_input_needs_empty_batch_or_channels() {
    assert_eq!(
        forward_error(Conv2dConfig::new(3, 2, 1).with_padding(1), &[1, 3, 0, 5]),
        "Only zero batch or zero channel inputs are supported, but got input shape: [1, 3, 0, 5]"
    );
}

#[test]
fn reflect_padding_must_be_smaller_than_the_input() {
    let reflect = Conv2dConfig::new(1, 1, 3).with_padding_mode(PaddingMode::Reflect);
    assert_eq!(
        forward_error(reflect.with_padding(3), &[1, 1, 3, 3]),
        "Argument #4: Padding size should be less than the corresponding input dimension, but got: padding (3, 3) at dimension 3 of input [1, 1, 3, 3]"
    );
    assert_eq!(
        forward_error(reflect.with_padding((1, 0)).with_bias(false), &[1, 1, 4]),
        "Argument #6: Padding size should be less than the corresponding input dimension, but got: padding (1, 1) at dimension 1 of input [1, 1, 4]"
    );
}

#[test]
fn circular_padding_must_not_wrap_twice() {
    let msg = forward_error(
        Conv2dConfig::new(1, 1, 3)
            .with_padding(4)
            .with_padding_mode(PaddingMode::Circular),
        &[1, 1, 3, 3],
    );
    assert!(
        msg.starts_with("Padding value causes wrapping around more than once.")
            && msg.contains("padding (4, 4)"),
        "{msg}"
    );
}

#[test]
fn cropping_must_leave_something() {
    let circular = Conv2dConfig::new(1, 1, 1)
        .with_padding((0, -4))
        .with_padding_mode(PaddingMode::Circular);
    assert!(
        forward_error(circular, &[1, 1, 4, 6])
            .starts_with("Negative padding value is resulting in an empty dimension")
    );
    let reflect = circular
        .with_padding((-2, 0))
        .with_padding_mode(PaddingMode::Reflect);
    assert_eq!(
        forward_error(reflect, &[1, 1, 4, 6]),
        "Calculated output H: 0 W: 6 must be >= 1 in every dimension (input H: 4, W: 6)"
    );
}

#[test]
fn reflect_and_replicate_need_non_empty_dims() {
    let msg = forward_error(
        Conv2dConfig::new(0, 2, 3)
            .with_padding(1)
            .with_padding_mode(PaddingMode::Replicate),
        &[1, 0, 5, 5],
    );
    assert_eq!(
        msg,
        "Expected 3D or 4D (batch mode) tensor with possibly 0 batch size and other non-zero dimensions for input, but got: [1, 0, 5, 5]"
    );
}

#[test]
fn tensors_must_match_their_data() {
    let err = Tensor::new([2, 3], vec![0.0; 5]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "tensor of size [2, 3] needs 6 elements, but 5 were given"
    );
    assert!(matches!(
        Tensor::new([usize::MAX, 2], vec![]),
        Err(Conv2dError::ValueTooLarge { .. })
    ));
}

#[test]
fn weights_are_checked_against_the_config() {
    let w = Tensor::zeros([6, 3, 3, 3]).unwrap();
    let err = Conv2d::from_weight_shape(
        Conv2dConfig::new(0, 0, 1),
        Tensor::zeros([6, 3, 3]).unwrap(),
        None,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "expected a 4-D weight (out_channels, in_channels/groups, kH, kW), but got weight of size [6, 3, 3]"
    );
    let err = Conv2d::from_weight_shape(
        Conv2dConfig::new(0, 0, 1).with_groups(4),
        Tensor::zeros([2, 1, 3, 3]).unwrap(),
        None,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Given groups=4, expected weight to be at least 4 at dimension 0, but got weight of size [2, 1, 3, 3] instead"
    );
    let err = Conv2d::from_weight_shape(
        Conv2dConfig::new(0, 0, 1),
        w,
        Some(Tensor::zeros([6, 1]).unwrap()),
    )
    .unwrap_err();
    assert!(err.to_string().contains(
        "expected bias to be 1-dimensional with 6 elements, but got bias of size [6, 1]"
    ));
}

#[test]
fn empty_batch_and_empty_channels_give_empty_outputs() {
    let ctx = common::gpu();
    for (config, shape, want) in [
        (
            Conv2dConfig::new(3, 6, 3).with_padding(1),
            vec![0, 3, 5, 5],
            vec![0, 6, 5, 5],
        ),
        (
            Conv2dConfig::new(3, 6, 3).with_padding(2),
            vec![0, 3, 0, 5],
            vec![0, 6, 2, 7],
        ),
        (
            Conv2dConfig::new(0, 33, 3).with_stride(2),
            vec![2, 0, 50, 100],
            vec![2, 0, 24, 49],
        ),
        (
            Conv2dConfig::new(3, 6, 3)
                .with_padding_mode(PaddingMode::Reflect)
                .with_padding(1),
            vec![0, 3, 5, 5],
            vec![0, 6, 5, 5],
        ),
    ] {
        let layer = Conv2d::new(config, 1).unwrap();
        let input = Tensor::zeros(shape.clone()).unwrap();
        assert_eq!(layer.forward_cpu(&input).unwrap().shape(), want);
        let gpu = GpuConv2d::new(ctx, &layer).unwrap();
        assert_eq!(gpu.forward(&input).unwrap().shape(), want);
        // The gradients: shaped like what they differentiate, all zeros (an
        // empty plane with padding once made the reference panic).
        let grad_output = Tensor::zeros(want.clone()).unwrap();
        for grads in [
            layer.backward_cpu(&input, &grad_output).unwrap(),
            gpu.backward(&input, &grad_output).unwrap(),
        ] {
            assert_eq!(grads.grad_input.shape(), shape);
            assert_eq!(grads.grad_weight.shape(), layer.weight().shape());
            assert!(grads.grad_weight.data().iter().all(|&v| v == 0.0));
        }
    }
}
