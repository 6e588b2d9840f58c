//! No silent wrong answer at any size: reductions far past 65535 terms, with
//! data of one sign, on every kernel.
//!
//! Mesa's llvmpipe (lavapipe, the driver of CI) silently leaves a shader's
//! loops after 65535 iterations in total; a random-sign sum that drops terms
//! can still sit inside the fp32 error bound, but an all-ones sum cannot: it is
//! an exact integer in f32 up to 2^24, so every result here must equal the CPU
//! reference bit for bit.

mod common;

use wgpu_conv2d::{
    Algorithm, BackwardAlgorithm, Conv2d, Conv2dConfig, Conv2dGeometry, DType, GpuConv2d,
    GpuTensor, GradMask, PaddingMode, Tensor,
};

fn ones(shape: &[usize]) -> Tensor {
    Tensor::new(shape, vec![1.0; shape.iter().product()]).unwrap()
}

/// A layer of `config` whose weight and bias are all ones.
fn ones_layer(config: Conv2dConfig) -> Conv2d {
    let bias = config.bias.then(|| ones(&[config.out_channels]));
    Conv2d::from_weights(config, ones(&config.weight_shape()), bias).unwrap()
}

/// Every algorithm that can run `config` on `input` gives exactly the CPU
/// reference's all-ones sums; `expect` checks one element where it is known.
fn check_forward(what: &str, config: Conv2dConfig, input_shape: &[usize], expect: Option<f32>) {
    check_forward_in(what, config, input_shape, expect, DType::F32);
}

/// [`check_forward`] with layer and input in `dtype` (each result rounded to
/// it once: the CPU reference's exact sum, the GPU's exact `f32` sum).
fn check_forward_in(
    what: &str,
    config: Conv2dConfig,
    input_shape: &[usize],
    expect: Option<f32>,
    dtype: DType,
) {
    let layer = ones_layer(config).to_dtype(dtype);
    let input = ones(input_shape).to_dtype(dtype);
    let want = layer.forward_cpu(&input).unwrap();
    if let Some(value) = expect {
        assert_eq!(
            want.data()[0],
            value,
            "{what}: the reference's first output"
        );
    }
    let geometry = Conv2dGeometry::new(&config, input_shape).unwrap();
    let mut ran = Vec::new();
    for algorithm in std::iter::once(Algorithm::Auto).chain(Algorithm::KERNELS) {
        // Winograd's transforms round (1/6, 1/24) even on all-ones data: its
        // exact case is `winograd_sums_70000_channels_exactly`.
        if algorithm.check(&geometry).is_err() || algorithm == Algorithm::Winograd {
            continue;
        }
        let got = GpuConv2d::new(common::gpu(), &layer)
            .unwrap()
            .with_algorithm(algorithm)
            .forward(&input)
            .unwrap_or_else(|e| panic!("{what} [{algorithm}]: {e}"));
        if let Some(k) = (0..want.numel()).find(|&k| got.data()[k] != want.data()[k]) {
            panic!(
                "{what} [{algorithm}]: output {k} is {}, exact sum {}",
                got.data()[k],
                want.data()[k]
            );
        }
        ran.push(algorithm);
    }
    assert!(ran.len() >= 3, "{what}: only {ran:?} ran");
}

#[test]
fn forward_sums_4096_channels_of_3x3() {
    // 36864 terms per output; the direct kernel used to stop at 32769.
    check_forward(
        "1x4096x3x3 input, 3x3 kernel",
        Conv2dConfig::new(4096, 1, 3).with_bias(false),
        &[1, 4096, 3, 3],
        Some(36864.0),
    );
    check_forward(
        "16 outputs of 1x4096x8x8, 3x3 kernel",
        Conv2dConfig::new(4096, 16, 3),
        &[1, 4096, 8, 8],
        Some(36865.0),
    );
    // Rows of 56 outputs: the blocked kernel's two runs of seven vec4s per
    // row, 73728 terms per interior output (the first column, padded, sums
    // 49152 and the bias).
    check_forward(
        "16 outputs of 1x8192x3x56, 3x3 kernel, rows of 56",
        Conv2dConfig::new(8192, 16, 3).with_padding((0, 1)),
        &[1, 8192, 3, 56],
        Some(49153.0),
    );
}

/// Winograd over 70000 input channels (its product's loop runs over them,
/// sliced under the driver's limit) on data its transforms carry exactly: an
/// all-ones input and a weight of 576 at tap (0, 0) (576 = 24², so
/// `G g Gᵀ` has integer entries, and `Bᵀ x B` of ones is integers), whose
/// every output is 576 · 70000 = 40320000, a multiple of 64 and exact in f32.
/// On a 6×6 input (a 4×4 output: rows of whole tiles, each stored as one
/// vector) and a 9×9 one (7×7: one store per output, tiles past the edge).
#[test]
fn winograd_sums_70000_channels_exactly() {
    let channels = 70000;
    let config = Conv2dConfig::new(channels, 1, 3).with_bias(false);
    let mut weight = vec![0.0; channels * 9];
    for c in 0..channels {
        weight[c * 9] = 576.0;
    }
    let layer = Conv2d::from_weights(
        config,
        Tensor::new(config.weight_shape(), weight).unwrap(),
        None,
    )
    .unwrap();
    let gpu = GpuConv2d::new(common::gpu(), &layer)
        .unwrap()
        .with_algorithm(Algorithm::Winograd);
    for side in [6, 9] {
        let input = ones(&[1, channels, side, side]);
        let want = layer.forward_cpu(&input).unwrap();
        assert!(want.data().iter().all(|&v| v == 40_320_000.0));
        let got = gpu.forward(&input).unwrap();
        assert_eq!(
            got.data(),
            want.data(),
            "winograd over {channels} channels, {side}x{side} input"
        );
    }
}

#[test]
fn forward_sums_70000_channels_of_1x1() {
    check_forward(
        "1x70000x1x1 input, 1x1 kernel",
        Conv2dConfig::new(70_000, 1, 1).with_bias(false),
        &[1, 70_000, 1, 1],
        Some(70000.0),
    );
    check_forward(
        "1x70000x2x3 input, 1x1 kernel, 20 outputs",
        Conv2dConfig::new(70_000, 20, 1),
        &[1, 70_000, 2, 3],
        Some(70001.0),
    );
    // Planes of 2×4 = 8 columns as one row, a multiple of 4: the blocked
    // kernel reads this input in place, with no padded copy.
    check_forward(
        "1x70000x2x4 input, 1x1 kernel, 20 outputs, read in place",
        Conv2dConfig::new(70_000, 20, 1),
        &[1, 70_000, 2, 4],
        Some(70001.0),
    );
}

#[test]
fn forward_sums_kernels_of_70000_taps() {
    // One kernel row of 70000 columns (direct slices its columns too) and one
    // kernel column of 70000 rows (the depthwise and blocked kernels' loop).
    check_forward(
        "1x70000 kernel",
        Conv2dConfig::new(1, 1, (1, 70_000)).with_bias(false),
        &[1, 1, 1, 70_000],
        Some(70000.0),
    );
    check_forward(
        "70000x1 kernel",
        Conv2dConfig::new(1, 1, (70_000, 1)),
        &[1, 1, 70_003, 1],
        Some(70001.0),
    );
    // Three columns: the blocked kernel steps one reduction row at a time
    // (one at a time for one column would be two), 70000 steps, past the
    // limit unless sliced; with its weights shared across subgroups where
    // the adapter has them.
    check_forward(
        "70000x3 kernel",
        Conv2dConfig::new(1, 4, (70_000, 3)),
        &[1, 1, 70_000, 3],
        Some(210_001.0),
    );
}

/// The depthwise kernel walks down every input row between a strip's first
/// and last output rows (64 rows per strip), loading the rows its windows
/// cover, with a loop over the span's columns at the borders: with a stride
/// of 880 rows that is 55443 rows, 192 of them loaded, and about 59100 loop
/// passes per invocation, near the driver's limit, which its variant rule
/// keeps it under. Any row it left out would leave outputs unset.
#[test]
fn depthwise_walks_tall_strides_near_the_loop_limit() {
    let config = Conv2dConfig::new(2, 2, 3)
        .with_groups(2)
        .with_stride((880, 1))
        .with_padding((0, 1));
    let shape = [1, 2, 55443, 20];
    check_forward(
        "depthwise 3x3, stride (880, 1), on a 1x2x55443x20 input",
        config,
        &shape,
        Some(7.0),
    );
    // An output the kernel failed to store would keep what its buffer held,
    // and the checks above ran other kernels first, which store the same
    // values into the pool's buffers: so the depthwise kernel runs again on
    // a context of its own, whose buffers start as zeros.
    let ctx = wgpu_conv2d::GpuContext::new().unwrap();
    let layer = GpuConv2d::new(&ctx, &ones_layer(config))
        .unwrap()
        .with_algorithm(Algorithm::Depthwise);
    let got = layer.forward(&ones(&shape)).unwrap();
    let want = ones_layer(config).forward_cpu(&ones(&shape)).unwrap();
    assert_eq!(got.data(), want.data(), "depthwise on a fresh context");
}

#[test]
fn forward_writes_rows_wider_than_262144() {
    // The blocked kernels' padding pass used to loop over a row per invocation.
    check_forward(
        "1x1x1x262200 input, 1x1 kernel",
        Conv2dConfig::new(1, 1, 1).with_bias(false),
        &[1, 1, 1, 262_200],
        Some(1.0),
    );
    check_forward(
        "1x1x2x200000 input, padding 1",
        Conv2dConfig::new(1, 1, 1).with_padding(1),
        &[1, 1, 2, 200_000],
        Some(1.0),
    );
    check_forward(
        "reflect padding on a 1x2x3x100000 input",
        Conv2dConfig::new(2, 16, 3)
            .with_padding(1)
            .with_padding_mode(PaddingMode::Reflect),
        &[1, 2, 3, 100_000],
        None,
    );
}

/// GPU gradients of an all-ones layer and input with an all-ones grad_output
/// equal the CPU reference's exactly.
fn check_backward(
    what: &str,
    config: Conv2dConfig,
    input_shape: &[usize],
) -> wgpu_conv2d::Conv2dGrads {
    check_backward_in(what, config, input_shape, DType::F32)
}

/// [`check_backward`] in `dtype`.
fn check_backward_in(
    what: &str,
    config: Conv2dConfig,
    input_shape: &[usize],
    dtype: DType,
) -> wgpu_conv2d::Conv2dGrads {
    let layer = ones_layer(config).to_dtype(dtype);
    let input = ones(input_shape).to_dtype(dtype);
    let geometry = Conv2dGeometry::new(&config, input_shape).unwrap();
    let grad_output = ones(&geometry.output_shape()).to_dtype(dtype);
    let want = layer.backward_cpu(&input, &grad_output).unwrap();
    // Every backward algorithm that can run the case; Auto always can.
    let mut ran = Vec::new();
    for algorithm in BackwardAlgorithm::ALL {
        if algorithm.check(&geometry).is_err() {
            continue;
        }
        let gpu = GpuConv2d::new(common::gpu(), &layer)
            .unwrap()
            .with_backward_algorithm(algorithm);
        // implicit-gemm's input gradient is blocked's, checked on its own
        // turn: only its weight and bias gradients run (CI's time).
        let got = if algorithm == BackwardAlgorithm::ImplicitGemm {
            let upload = |t: &Tensor| GpuTensor::upload(common::gpu(), t).unwrap();
            let grads = gpu
                .backward_gpu(&upload(&input), &upload(&grad_output), GradMask::PARAMETERS)
                .unwrap_or_else(|e| panic!("{what} [{algorithm}]: {e}"));
            let download = |t: Option<GpuTensor>| t.map(|t| t.download().unwrap());
            wgpu_conv2d::Conv2dGrads {
                grad_input: want.grad_input.clone(),
                grad_weight: download(grads.grad_weight).unwrap(),
                grad_bias: download(grads.grad_bias),
            }
        } else {
            gpu.backward(&input, &grad_output)
                .unwrap_or_else(|e| panic!("{what} [{algorithm}]: {e}"))
        };
        let mut pairs = vec![
            ("grad_input", &got.grad_input, &want.grad_input),
            ("grad_weight", &got.grad_weight, &want.grad_weight),
        ];
        if let (Some(g), Some(w)) = (&got.grad_bias, &want.grad_bias) {
            pairs.push(("grad_bias", g, w));
        }
        for (name, g, w) in pairs {
            assert_eq!(g.shape(), w.shape(), "{what} [{algorithm}]: {name} shape");
            if let Some(k) = (0..w.numel()).find(|&k| g.data()[k] != w.data()[k]) {
                panic!(
                    "{what} [{algorithm}]: {name}[{k}] is {}, exact sum {}",
                    g.data()[k],
                    w.data()[k]
                );
            }
        }
        ran.push(algorithm);
    }
    assert!(
        ran.contains(&BackwardAlgorithm::Direct),
        "{what}: ran {ran:?}"
    );
    want
}

#[test]
fn grad_bias_and_weight_sum_a_training_batch() {
    // N·OH·OW = 200704 positions per output channel.
    let grads = check_backward(
        "4x3x224x224 input, 16x3x3x3 weight, padding 1",
        Conv2dConfig::new(3, 16, 3).with_padding(1),
        &[4, 3, 224, 224],
    );
    let grad_bias = grads.grad_bias.unwrap();
    assert!(grad_bias.data().iter().all(|&g| g == 200_704.0));
    // 300000 positions in one row.
    let grads = check_backward(
        "1x1x1x300000 input, 1x1 kernel",
        Conv2dConfig::new(1, 1, 1),
        &[1, 1, 1, 300_000],
    );
    assert_eq!(grads.grad_weight.data(), &[300_000.0]);
}

/// Half tensors sum in `f32` under the same loop limit and round once: the
/// all-ones sums past 65535 terms, rounded to the dtype (60000 is a float16
/// value; 70001 and 300000 round to bfloat16's 70144 and 299008), equal the
/// CPU reference's exact sums rounded, bit for bit. A dropped slice of terms
/// moves the sum by thousands, far past the rounding.
#[test]
fn half_sums_past_the_loop_limit_are_exact_sums_rounded_once() {
    check_forward_in(
        "float16 1x60000x1x1 input, 1x1 kernel",
        Conv2dConfig::new(60_000, 1, 1).with_bias(false),
        &[1, 60_000, 1, 1],
        Some(60000.0),
        DType::F16,
    );
    check_forward_in(
        "bfloat16 1x70000x2x4 input, 1x1 kernel, 20 outputs",
        Conv2dConfig::new(70_000, 20, 1),
        &[1, 70_000, 2, 4],
        Some(70144.0),
        DType::BF16,
    );
    let grads = check_backward_in(
        "bfloat16 1x1x1x300000 input, 1x1 kernel",
        Conv2dConfig::new(1, 1, 1),
        &[1, 1, 1, 300_000],
        DType::BF16,
    );
    assert_eq!(grads.grad_weight.data(), &[299_008.0]);
    assert_eq!(grads.grad_weight.dtype(), DType::BF16);
}

#[test]
fn grad_input_sums_many_output_channels() {
    let grads = check_backward(
        "4096 output channels, 3x3",
        Conv2dConfig::new(1, 4096, 3),
        &[1, 1, 3, 3],
    );
    assert!(grads.grad_input.data().iter().all(|&g| g == 4096.0));
    let grads = check_backward(
        "70000 output channels, 1x1",
        Conv2dConfig::new(1, 70_000, 1).with_bias(false),
        &[1, 1, 1, 2],
    );
    assert_eq!(grads.grad_input.data(), &[70_000.0, 70_000.0]);
    check_backward(
        "1x70000 kernel",
        Conv2dConfig::new(1, 2, (1, 70_000)),
        &[1, 1, 1, 70_001],
    );
}

#[test]
fn strided_input_gradients_sum_many_output_channels() {
    // Stride 2: the input gradient runs as phase convolutions; the even
    // columns get 70000 terms, the odd ones none.
    let grads = check_backward(
        "70000 output channels, 1x1, stride 2",
        Conv2dConfig::new(1, 70_000, 1)
            .with_stride(2)
            .with_bias(false),
        &[1, 1, 1, 3],
    );
    assert_eq!(grads.grad_input.data(), &[70_000.0, 0.0, 70_000.0]);
    // 4096 output channels of a 3x3 kernel, stride 2, dilation 2, padding 1.
    check_backward(
        "4096 output channels, 3x3, stride 2, dilation 2",
        Conv2dConfig::new(1, 4096, 3)
            .with_stride(2)
            .with_dilation(2)
            .with_padding(1),
        &[1, 1, 7, 7],
    );
}

#[test]
fn replicate_padding_folds_a_70000_wide_border_back() {
    // Each edge column receives the gradient of 70000 padded copies, and itself.
    let grads = check_backward(
        "replicate padding (0, 70000) on a 1x1x1x4 input",
        Conv2dConfig::new(1, 1, 1)
            .with_padding((0, 70_000))
            .with_padding_mode(PaddingMode::Replicate),
        &[1, 1, 1, 4],
    );
    assert_eq!(grads.grad_input.data(), &[70_001.0, 1.0, 1.0, 70_001.0]);
    check_backward(
        "replicate padding 300 on both axes of a 1x2x3x3 input",
        Conv2dConfig::new(2, 2, 3)
            .with_padding(300)
            .with_padding_mode(PaddingMode::Replicate),
        &[1, 2, 3, 3],
    );
}

/// The padding's backward in float16 and bfloat16 adds an element's copies
/// one at a time, rounding each sum (as PyTorch does), so an all-ones sum
/// saturates (at 2048 in float16) and could not show a dropped copy. Instead
/// the output gradient is zero but at chosen copies: an element's first
/// copy, its last, and one in the middle of 140001 (one axis) or 90601 (two
/// axes) copies, so that a loop cut short anywhere loses a 1. The gradient of
/// the padded input is the output gradient itself (a 1×1 convolution with
/// weight 1), and the input gradient must be exactly the count of marks.
#[test]
fn half_padding_backward_folds_past_the_loop_limit() {
    for dtype in [DType::F16, DType::BF16] {
        for (padding, shape, marks, want) in [
            (
                (0, 70_000),
                [1usize, 1, 1, 4],
                // (row, column) of the padded grid: the left edge's first copy
                // and its last (the interior one), the right edge's first
                // (interior), a middle one and its last.
                vec![(0, 0), (0, 70_000), (0, 70_003), (0, 100_000), (0, 140_003)],
                vec![2.0, 0.0, 0.0, 3.0],
            ),
            (
                (300, 300),
                [1, 1, 3, 3],
                vec![(0, 0), (150, 299), (300, 300), (602, 602)],
                vec![3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
            ),
        ] {
            let config = Conv2dConfig::new(1, 1, 1)
                .with_bias(false)
                .with_padding(padding)
                .with_padding_mode(PaddingMode::Replicate);
            let layer = ones_layer(config).to_dtype(dtype);
            let input = Tensor::zeros(shape).unwrap().to_dtype(dtype);
            let g = Conv2dGeometry::new(&config, &shape).unwrap();
            let out = g.output_shape();
            let mut grad_output = Tensor::zeros(out.clone()).unwrap();
            for (r, c) in &marks {
                grad_output.data_mut()[r * out[3] + c] = 1.0;
            }
            let grad_output = grad_output.to_dtype(dtype);
            let what = format!("{dtype} replicate padding {padding:?}");
            let cpu = layer.backward_cpu(&input, &grad_output).unwrap();
            assert_eq!(cpu.grad_input.data(), &want[..], "{what} (cpu)");
            for algorithm in [BackwardAlgorithm::Auto, BackwardAlgorithm::Direct] {
                let got = GpuConv2d::new(common::gpu(), &layer)
                    .unwrap()
                    .with_backward_algorithm(algorithm)
                    .backward(&input, &grad_output)
                    .unwrap();
                assert_eq!(got.grad_input.data(), &want[..], "{what} [{algorithm}]");
            }
        }
    }
}
