//! Randomized GPU-vs-CPU agreement over the whole parameter space: every padding
//! mode, 'same'/'valid'/explicit and negative padding, non-square kernels,
//! strides and dilations, groups including depthwise, unbatched and N > 1.

mod common;

use common::{assert_within_bound, check_gpu_against_cpu, magnitude, terms};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use wgpu_conv2d::{
    Algorithm, BackwardAlgorithm, Conv2d, Conv2dConfig, Conv2dGeometry, Padding, PaddingMode,
    Precision, Tensor,
};

/// Which part of the parameter space a random case comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Space {
    /// Every parameter, small channel counts.
    General,
    /// `groups == in_channels`, any channel multiplier.
    Depthwise,
    /// 1×1 kernels, stride 1, no padding (what `gemm-1x1` runs), up to 150 channels.
    Pointwise,
    /// Up to 150 output channels per group and long reductions: several GEMM tiles.
    Wide,
    /// Kernel widths 8 to 16 (the blocked kernels unroll up to 16).
    WideKernel,
    /// Kernel widths 8 to 16, `groups == in_channels`.
    WideKernelDepthwise,
    /// `groups == in_channels`, planes up to about 70 wide and high: the
    /// depthwise kernel's strips inside the data (aligned loads) as well as at
    /// its borders (the index map), which small planes never leave.
    DepthwiseLarge,
    /// 3×3 kernels, stride 1, dilation 1 (what `winograd` runs); every
    /// padding, mode and grouping.
    Winograd,
    /// The same, up to 150 output channels per group and long reductions.
    WinogradWide,
}

/// A random valid configuration and input, or `None` when the draw is invalid.
fn random_case(rng: &mut StdRng, space: Space) -> Option<(Conv2d, Tensor)> {
    let groups = [1, 1, 1, 2, 3, 4][rng.random_range(0..6)];
    let depthwise = matches!(
        space,
        Space::Depthwise | Space::WideKernelDepthwise | Space::DepthwiseLarge
    ) || (groups > 1 && rng.random_bool(0.3));
    let wide_kernel = matches!(space, Space::WideKernel | Space::WideKernelDepthwise);
    let wide = matches!(space, Space::Pointwise | Space::Wide | Space::WinogradWide);
    let winograd = matches!(space, Space::Winograd | Space::WinogradWide);
    let per_group = |rng: &mut StdRng| {
        if wide {
            rng.random_range(1..150) / groups + 1
        } else {
            rng.random_range(1..4)
        }
    };
    let in_channels = if depthwise {
        groups
    } else {
        groups * per_group(rng)
    };
    let out_channels = groups * per_group(rng);
    let pointwise = space == Space::Pointwise;
    let kernel = if pointwise {
        (1, 1)
    } else if winograd {
        (3, 3)
    } else if wide_kernel {
        (rng.random_range(1..4), rng.random_range(8..17))
    } else {
        (rng.random_range(1..6), rng.random_range(1..6))
    };
    let mode = PaddingMode::ALL[rng.random_range(0..4)];
    let same = pointwise || winograd || rng.random_bool(0.2);
    let stride = if same {
        (1, 1)
    } else {
        (rng.random_range(1..4), rng.random_range(1..4))
    };
    let dilation = if winograd {
        (1, 1)
    } else {
        (rng.random_range(1..4), rng.random_range(1..4))
    };
    let padding = match rng.random_range(0..10) {
        // Winograd's stride is 1 and 'same' only one of its paddings.
        0..3 if winograd => Padding::Same,
        _ if same && !winograd => Padding::Same,
        0 => Padding::Valid,
        1 if mode != PaddingMode::Zeros => {
            Padding::from((rng.random_range(-2..1), rng.random_range(-2..1)))
        }
        _ => Padding::from((rng.random_range(0..4), rng.random_range(0..4))),
    };
    let config = Conv2dConfig::new(in_channels, out_channels, kernel)
        .with_stride(stride)
        .with_dilation(dilation)
        .with_padding(padding)
        .with_groups(groups)
        .with_bias(rng.random_bool(0.7))
        .with_padding_mode(mode);
    let grow = if wide {
        20
    } else if space == Space::DepthwiseLarge {
        64
    } else {
        8
    };
    let mut size = |k: usize, d: usize| d * (k - 1) + 1 + rng.random_range(0..grow);
    let (h, w) = (size(kernel.0, dilation.0), size(kernel.1, dilation.1));
    let shape = if rng.random_bool(0.2) {
        vec![in_channels, h, w]
    } else {
        vec![rng.random_range(1..4), in_channels, h, w]
    };
    Conv2dGeometry::new(&config, &shape).ok()?;
    let layer = Conv2d::with_rng(config, rng).ok()?;
    let data: Vec<f32> = (0..shape.iter().product())
        .map(|_| rng.random_range(-2.0..2.0))
        .collect();
    let input = Tensor::new(shape, data).unwrap();
    // One case in four is one-signed: a sum that dropped terms would then
    // fall outside the error bound (random signs can hide it inside). Drawn
    // from the data's bits, so the generator's sequence of cases stays the same.
    if input.data()[0].to_bits().is_multiple_of(4) {
        let layer = Conv2d::from_weights(
            config,
            common::abs(layer.weight()),
            layer.bias().map(common::abs),
        )
        .unwrap();
        return Some((layer, common::abs(&input)));
    }
    Some((layer, input))
}

/// Whether a case is one of the one-signed ones.
fn one_signed(input: &Tensor) -> bool {
    input.data().iter().all(|&v| v >= 0.0)
}

/// Checks `count` random cases of `space` with `algorithm` against the CPU
/// reference; `cap` optionally limits the binding size so that tensors split.
fn sweep(algorithm: Algorithm, space: Space, count: usize, seed: u64, split: bool) {
    let whole = count;
    let count = common::sampled(count);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut checked = 0;
    let mut modes = [0usize; 4];
    let mut chosen = std::collections::BTreeMap::new();
    let mut worst = (0.0f64, 0.0f64);
    while checked < count {
        let Some((layer, input)) = random_case(&mut rng, space) else {
            continue;
        };
        let g = Conv2dGeometry::new(layer.config(), input.shape()).unwrap();
        let ctx = if split {
            let plane = (g.height().input() * g.width().input())
                .max(g.height().output() * g.width().output());
            // The weight is always bound whole, and the blocked kernel's copies must fit.
            let needs = algorithm.min_binding_bytes(
                &g,
                common::gpu().adapter_info().device_type,
                Precision::Highest,
            );
            let cap = (plane * rng.random_range(1..4) * 4) as u64;
            common::gpu().with_max_binding_bytes(cap.max(needs.unwrap()))
        } else {
            common::gpu().clone()
        };
        *chosen
            .entry(
                algorithm
                    .resolve(
                        &g,
                        common::gpu().adapter_info().device_type,
                        Precision::Highest,
                    )
                    .unwrap()
                    .name(),
            )
            .or_insert(0) += 1;
        modes[layer.config().padding_mode as usize] += 1;
        let what = format!(
            "{space:?} case {checked}{}: {:?} on {:?}",
            if split { " (split)" } else { "" },
            layer.config(),
            input.shape()
        );
        if algorithm == Algorithm::Winograd {
            let (winograd, direct) = check_winograd(&what, &layer, &input, &ctx);
            worst = (worst.0.max(winograd), worst.1.max(direct));
        } else {
            common::check_algorithm(&what, &layer, &input, algorithm, &ctx);
        }
        checked += 1;
    }
    // The whole suite exercises every mode; a sample only says which it ran.
    assert!(
        count < whole || modes.iter().all(|&m| m >= count / 8),
        "every padding mode is exercised: {modes:?}"
    );
    eprintln!("{algorithm} over {count} {space:?} cases ran {chosen:?}");
    if algorithm == Algorithm::Winograd {
        eprintln!(
            "largest normwise error (units of 2^-23 max Σ|w·x|): winograd {:.2}, direct {:.2}",
            worst.0, worst.1
        );
    }
}

/// Checks Winograd on one case against the CPU reference under its own fp32
/// bound (tests/common/winograd.rs); returns the normwise error of Winograd
/// and of the direct kernel on the same case.
fn check_winograd(
    what: &str,
    layer: &Conv2d,
    input: &Tensor,
    ctx: &wgpu_conv2d::GpuContext,
) -> (f64, f64) {
    let run = |algorithm| {
        wgpu_conv2d::GpuConv2d::new(ctx, layer)
            .unwrap()
            .with_algorithm(algorithm)
            .forward(input)
            .unwrap_or_else(|e| panic!("{what} [{algorithm}]: GPU forward failed: {e}"))
    };
    let got = run(Algorithm::Winograd);
    let want = layer.forward_cpu(input).unwrap();
    let tolerance = common::winograd::winograd_bound(layer, input);
    common::assert_within(&format!("{what} [winograd]"), &got, &want, &tolerance);
    let m = magnitude(layer, input);
    common::winograd::assert_normwise(&format!("{what} [winograd]"), &got, &want, &m);
    let direct = run(Algorithm::Direct);
    (
        common::normwise_error(&got, &want, &m),
        common::normwise_error(&direct, &want, &m),
    )
}

#[test]
fn winograd_agrees_with_the_cpu_reference() {
    sweep(
        Algorithm::Winograd,
        Space::Winograd,
        300,
        0x3163_0001,
        false,
    );
    sweep(
        Algorithm::Winograd,
        Space::WinogradWide,
        60,
        0x3163_0002,
        false,
    );
    sweep(Algorithm::Winograd, Space::Winograd, 60, 0x3163_0003, true);
}

/// Both of Winograd's checks reject a result with one input channel dropped
/// (computed by Winograd itself with that channel's weights zeroed), for
/// every channel of a 47-channel layer.
#[test]
fn winograd_checks_reject_one_dropped_channel() {
    let channels = 47;
    let config = Conv2dConfig::new(channels, 8, 3).with_padding(1);
    let layer = Conv2d::new(config, 47).unwrap();
    let input = common::random_tensor(&[1, channels, 9, 9], 47);
    let want = layer.forward_cpu(&input).unwrap();
    let m = magnitude(&layer, &input);
    let tolerance = common::winograd::winograd_bound(&layer, &input);
    let winograd = |layer: &Conv2d| {
        wgpu_conv2d::GpuConv2d::new(common::gpu(), layer)
            .unwrap()
            .with_algorithm(Algorithm::Winograd)
            .forward(&input)
            .unwrap()
    };
    // The whole layer passes both.
    let right = winograd(&layer);
    common::assert_within("all channels", &right, &want, &tolerance);
    common::winograd::assert_normwise("all channels", &right, &want, &m);
    let fails =
        |check: &dyn Fn()| std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)).is_err();
    for dropped in 0..channels {
        let short = common::without_input_channel(&layer, dropped);
        let got = winograd(&short);
        let what = format!("channel {dropped} dropped");
        assert!(
            fails(&|| common::assert_within(&what, &got, &want, &tolerance)),
            "{what}: the per-element bound accepted it"
        );
        assert!(
            fails(&|| common::winograd::assert_normwise(&what, &got, &want, &m)),
            "{what}: the normwise check accepted it"
        );
    }
}

#[test]
fn auto_agrees_with_the_cpu_reference() {
    sweep(Algorithm::Auto, Space::General, 400, 0x5eed_c0de, false);
    sweep(Algorithm::Auto, Space::Wide, 40, 0xa070, false);
}

#[test]
fn direct_agrees_with_the_cpu_reference() {
    sweep(Algorithm::Direct, Space::General, 400, 0xd1ec, false);
}

#[test]
fn implicit_gemm_agrees_with_the_cpu_reference() {
    sweep(Algorithm::ImplicitGemm, Space::General, 400, 0x6e33, false);
    sweep(Algorithm::ImplicitGemm, Space::Wide, 60, 0x6e34, false);
    sweep(
        Algorithm::ImplicitGemm,
        Space::Depthwise,
        100,
        0x6e35,
        false,
    );
}

#[test]
fn gemm_1x1_agrees_with_the_cpu_reference() {
    sweep(Algorithm::Gemm1x1, Space::Pointwise, 150, 0x1111, false);
}

#[test]
fn depthwise_agrees_with_the_cpu_reference() {
    sweep(Algorithm::Depthwise, Space::Depthwise, 300, 0xdeb7, false);
    sweep(
        Algorithm::Depthwise,
        Space::WideKernelDepthwise,
        40,
        0xdeb8,
        false,
    );
    sweep(
        Algorithm::Depthwise,
        Space::DepthwiseLarge,
        80,
        0xdeb9,
        false,
    );
}

#[test]
fn blocked_agrees_with_the_cpu_reference() {
    sweep(Algorithm::Blocked, Space::General, 400, 0x0b10_cced, false);
    sweep(Algorithm::Blocked, Space::Wide, 60, 0x0b10_ccee, false);
    sweep(Algorithm::Blocked, Space::Depthwise, 60, 0x0b10_ccef, false);
    sweep(Algorithm::Blocked, Space::Pointwise, 60, 0x0b10_ccf0, false);
    sweep(
        Algorithm::Blocked,
        Space::WideKernel,
        50,
        0x0b10_ccf1,
        false,
    );
}

#[test]
fn every_algorithm_agrees_when_tensors_are_split() {
    // Caps each binding so that batches and channel blocks are split and summed
    // across several dispatches, as tensors beyond the device limit are.
    sweep(Algorithm::Auto, Space::General, 150, 0xb10c, true);
    sweep(Algorithm::Direct, Space::General, 60, 0xb10d, true);
    sweep(Algorithm::ImplicitGemm, Space::General, 60, 0xb10e, true);
    sweep(Algorithm::ImplicitGemm, Space::Wide, 20, 0xb10f, true);
    sweep(Algorithm::Gemm1x1, Space::Pointwise, 40, 0xb110, true);
    sweep(Algorithm::Depthwise, Space::Depthwise, 60, 0xb111, true);
    sweep(Algorithm::Blocked, Space::General, 60, 0xb112, true);
    sweep(Algorithm::Blocked, Space::Wide, 20, 0xb113, true);
}

#[test]
fn large_channel_counts_and_sizes_agree() {
    // Longer reductions (fan_in 576) and larger planes than the random sweep.
    let mut rng = StdRng::seed_from_u64(7);
    for (config, shape) in [
        (
            Conv2dConfig::new(64, 32, 3).with_padding(1),
            vec![2, 64, 20, 20],
        ),
        (
            Conv2dConfig::new(32, 32, 3)
                .with_padding(Padding::Same)
                .with_groups(32),
            vec![1, 32, 33, 31],
        ),
        (
            Conv2dConfig::new(3, 16, 7).with_stride(2).with_padding(3),
            vec![1, 3, 64, 64],
        ),
        (
            Conv2dConfig::new(8, 8, 5)
                .with_padding(2)
                .with_padding_mode(PaddingMode::Reflect),
            vec![8, 40, 40],
        ),
    ] {
        let layer = Conv2d::with_rng(config, &mut rng).unwrap();
        let data = (0..shape.iter().product())
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        check_gpu_against_cpu(
            &format!("{config:?}"),
            &layer,
            &Tensor::new(shape, data).unwrap(),
        );
    }
    // Rows of 28 and 56 outputs at stride 1, which the blocked kernel covers
    // with seven vec4s per invocation (the random sweeps' rows are shorter):
    // 3×3 with a second, partial block of output channels; a dilated 1×5 in
    // reflect mode; a strided row (six vec4s at most) beside them.
    for (config, shape) in [
        (
            Conv2dConfig::new(8, 20, 3).with_padding(1),
            vec![2, 8, 5, 56],
        ),
        (
            Conv2dConfig::new(6, 17, (1, 5))
                .with_dilation((1, 2))
                .with_padding((0, 4))
                .with_padding_mode(PaddingMode::Reflect),
            vec![1, 6, 3, 28],
        ),
        (
            Conv2dConfig::new(4, 16, 3)
                .with_stride((1, 2))
                .with_padding(1),
            vec![1, 4, 4, 112],
        ),
    ] {
        let layer = Conv2d::with_rng(config, &mut rng).unwrap();
        let data = (0..shape.iter().product())
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        common::check_algorithm(
            &format!("{config:?}"),
            &layer,
            &Tensor::new(shape, data).unwrap(),
            Algorithm::Blocked,
            common::gpu(),
        );
    }
}

/// The comparison's bound is tight enough to tell reflect from replicate
/// padding where they differ by little more than the bound itself: on an
/// all-ones plane whose second column is `1 + δ`, the two modes differ only
/// in the first output column, by `3δ`. With `3δ` about 1.5 times the bound
/// (`(9 + 2)·2⁻²³·9`) the wrong mode is rejected; with `3δ` about half the
/// bound it would pass, so the bound is within a factor of three of the
/// smallest slip it catches here.
#[test]
fn the_comparison_rejects_a_wrong_padding_mode_near_the_bound() {
    let config = Conv2dConfig::new(1, 1, 3)
        .with_padding(1)
        .with_bias(false)
        .with_padding_mode(PaddingMode::Reflect);
    let weight = Tensor::new([1, 1, 3, 3], vec![1.0; 9]).unwrap();
    let reflect = Conv2d::from_weights(config, weight.clone(), None).unwrap();
    let replicate = Conv2d::from_weights(
        config.with_padding_mode(PaddingMode::Replicate),
        weight,
        None,
    )
    .unwrap();
    let compare = |ulps: f32| {
        let delta = ulps * f32::EPSILON;
        let data = (0..16)
            .map(|k| if k % 4 == 1 { 1.0 + delta } else { 1.0 })
            .collect();
        let input = Tensor::new([1, 1, 4, 4], data).unwrap();
        let want = reflect.forward_cpu(&input).unwrap();
        let wrong = replicate.forward_cpu(&input).unwrap();
        let m = magnitude(&reflect, &input);
        let largest = wrong
            .data()
            .iter()
            .zip(want.data())
            .zip(m.data())
            .map(|((&g, &w), &m)| (g - w).abs() / common::bound(terms(&reflect), m))
            .fold(0.0f32, f32::max);
        let accepted = std::panic::catch_unwind(|| {
            assert_within_bound("wrong mode", &wrong, &want, &m, terms(&reflect))
        })
        .is_ok();
        (largest, accepted)
    };
    let (ratio, accepted) = compare(50.0);
    assert!(
        (1.2..2.0).contains(&ratio),
        "3δ is {ratio} bounds, meant to be near 1.5"
    );
    assert!(!accepted, "replicate for reflect at {ratio} bounds passed");
    let (ratio, accepted) = compare(16.0);
    assert!(ratio < 0.6, "3δ is {ratio} bounds, meant to be near 0.5");
    assert!(accepted, "a difference of {ratio} bounds was rejected");
}

/// A random output gradient, non-negative for one-signed cases.
fn random_grad_output(layer: &Conv2d, input: &Tensor, seed: u64) -> Tensor {
    let shape = Conv2dGeometry::new(layer.config(), input.shape())
        .unwrap()
        .output_shape();
    let grad_output = common::random_tensor(&shape, seed);
    if one_signed(input) {
        common::abs(&grad_output)
    } else {
        grad_output
    }
}

/// Checks `count` random gradient cases of `space` with `algorithm` against
/// the CPU reference (cases the algorithm cannot run are drawn again); with
/// `split`, bindings are capped so that tensors split.
fn gradient_sweep(
    algorithm: BackwardAlgorithm,
    space: Space,
    count: usize,
    seed: u64,
    split: bool,
) {
    let count = common::sampled(count);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut checked = 0;
    while checked < count {
        let Some((layer, input)) = random_case(&mut rng, space) else {
            continue;
        };
        let g = Conv2dGeometry::new(layer.config(), input.shape()).unwrap();
        if algorithm.check(&g).is_err() {
            continue;
        }
        let ctx = if split {
            let padded = g.padded_plane();
            let plane = (g.height().input() * g.width().input())
                .max(g.height().output() * g.width().output())
                .max(padded);
            let cap = ((plane * rng.random_range(1..4)).max(layer.weight().numel()) * 4) as u64;
            common::gpu().with_max_binding_bytes(cap)
        } else {
            common::gpu().clone()
        };
        let grad_output = random_grad_output(&layer, &input, checked as u64);
        let what = format!(
            "{algorithm} gradient case {checked}{}: {:?} on {:?}",
            if split { " (split)" } else { "" },
            layer.config(),
            input.shape()
        );
        let gpu = wgpu_conv2d::GpuConv2d::new(&ctx, &layer)
            .unwrap()
            .with_backward_algorithm(algorithm)
            .backward(&input, &grad_output)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let cpu = layer.backward_cpu(&input, &grad_output).unwrap();
        common::assert_grads_within_bound(&what, &gpu, &cpu, &layer, &input, &grad_output);
        checked += 1;
    }
}

#[test]
fn random_gradients_agree_with_the_cpu_reference() {
    gradient_sweep(BackwardAlgorithm::Auto, Space::General, 300, 0x96ad, false);
    gradient_sweep(
        BackwardAlgorithm::Direct,
        Space::General,
        150,
        0x96ae,
        false,
    );
    gradient_sweep(
        BackwardAlgorithm::Blocked,
        Space::General,
        150,
        0x96af,
        false,
    );
    gradient_sweep(BackwardAlgorithm::Blocked, Space::Wide, 30, 0x96b0, false);
    gradient_sweep(
        BackwardAlgorithm::Blocked,
        Space::WideKernel,
        30,
        0x96b1,
        false,
    );
    gradient_sweep(
        BackwardAlgorithm::Blocked,
        Space::Depthwise,
        40,
        0x96b2,
        false,
    );
    gradient_sweep(
        BackwardAlgorithm::ImplicitGemm,
        Space::General,
        150,
        0x96b3,
        false,
    );
    gradient_sweep(
        BackwardAlgorithm::ImplicitGemm,
        Space::Wide,
        30,
        0x96b4,
        false,
    );
    gradient_sweep(
        BackwardAlgorithm::ImplicitGemm,
        Space::Depthwise,
        30,
        0x96b5,
        false,
    );
}

#[test]
fn backward_algorithms_say_what_they_need() {
    let wide = Conv2d::new(Conv2dConfig::new(1, 2, (1, 17)), 1).unwrap();
    let input = common::random_tensor(&[1, 1, 2, 20], 1);
    let grad_output = common::random_tensor(&[1, 2, 2, 4], 2);
    let err = wgpu_conv2d::GpuConv2d::new(common::gpu(), &wide)
        .unwrap()
        .with_backward_algorithm(BackwardAlgorithm::Blocked)
        .backward(&input, &grad_output)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "algorithm 'blocked (backward)' cannot run this convolution: its weight gradient needs a kernel width of at most 16 and at most 128 input columns per 4 outputs, got kernel_size[1]=17, stride[1]=1, dilation[1]=1"
    );
    assert_eq!(
        "blocked".parse::<BackwardAlgorithm>().unwrap(),
        BackwardAlgorithm::Blocked
    );
    assert!("fast".parse::<BackwardAlgorithm>().is_err());
}

#[test]
fn random_gradients_split_over_small_bindings_agree() {
    // As the forward split test: batches, input-channel blocks (grad_input) and
    // output-channel blocks (grad_weight, grad_bias) summed across dispatches.
    gradient_sweep(BackwardAlgorithm::Auto, Space::General, 150, 0x5b11, true);
    gradient_sweep(BackwardAlgorithm::Direct, Space::General, 60, 0x5b12, true);
    gradient_sweep(
        BackwardAlgorithm::ImplicitGemm,
        Space::General,
        60,
        0x5b13,
        true,
    );
}

#[test]
fn gradients_are_bit_identical_run_to_run() {
    // Long reductions (8·30·30 rows into each weight element) in several blocks.
    let layer = Conv2d::new(
        Conv2dConfig::new(6, 4, 3)
            .with_padding(1)
            .with_padding_mode(PaddingMode::Reflect),
        1,
    )
    .unwrap();
    let input = common::random_tensor(&[8, 6, 30, 30], 2);
    let grad_output = random_grad_output(&layer, &input, 3);
    let gpu = wgpu_conv2d::GpuConv2d::new(common::gpu(), &layer).unwrap();
    let first = gpu.backward(&input, &grad_output).unwrap();
    for _ in 0..3 {
        let _ = gpu.forward(&input).unwrap();
        assert_eq!(
            gpu.backward(&input, &grad_output).unwrap(),
            first,
            "bit-identical gradients"
        );
    }
}

#[test]
fn sgd_step_updates_weights_on_the_gpu() {
    let config = Conv2dConfig::new(3, 4, (3, 2))
        .with_padding(Padding::Same)
        .with_groups(1)
        .with_padding_mode(PaddingMode::Circular);
    let layer = Conv2d::new(config, 5).unwrap();
    let input = common::random_tensor(&[2, 3, 7, 6], 6);
    let grad_output = random_grad_output(&layer, &input, 7);
    let lr = 0.05;
    let mut gpu = wgpu_conv2d::GpuConv2d::new(common::gpu(), &layer).unwrap();
    gpu.sgd_step(&input, &grad_output, lr).unwrap();
    let trained = gpu.to_layer().unwrap();
    let grads = layer.backward_cpu(&input, &grad_output).unwrap();
    let step = |value: &Tensor, grad: &Tensor| -> Vec<f32> {
        value
            .data()
            .iter()
            .zip(grad.data())
            .map(|(v, g)| v - lr * g)
            .collect()
    };
    let want_w = step(layer.weight(), &grads.grad_weight);
    let want_b = step(layer.bias().unwrap(), grads.grad_bias.as_ref().unwrap());
    for (got, want) in trained
        .weight()
        .data()
        .iter()
        .zip(&want_w)
        .chain(trained.bias().unwrap().data().iter().zip(&want_b))
    {
        assert!(
            (got - want).abs() <= 1e-5 * want.abs().max(1.0),
            "{got} vs {want}"
        );
    }
    // The forward pass uses the updated weights.
    let out = gpu.forward(&input).unwrap();
    let want = trained.forward_cpu(&input).unwrap();
    assert_within_bound(
        "after sgd",
        &out,
        &want,
        &magnitude(&trained, &input),
        terms(&trained),
    );
}

#[test]
fn backward_checks_grad_output_and_handles_empty_tensors() {
    let layer = Conv2d::new(Conv2dConfig::new(3, 6, 3).with_padding(1), 1).unwrap();
    let gpu = wgpu_conv2d::GpuConv2d::new(common::gpu(), &layer).unwrap();
    let input = Tensor::zeros([1, 3, 5, 5]).unwrap();
    let bad = Tensor::zeros([1, 6, 4, 5]).unwrap();
    let cpu_err = layer.backward_cpu(&input, &bad).unwrap_err();
    assert_eq!(gpu.backward(&input, &bad).unwrap_err(), cpu_err);
    assert_eq!(
        cpu_err.to_string(),
        "expected grad_output of size [1, 6, 5, 5] (the output's), but got grad_output of size [1, 6, 4, 5]"
    );
    // N = 0 and C_in = 0: all-zero gradients of the right shapes, as PyTorch gives.
    for (layer, shape) in [
        (layer.clone(), vec![0, 3, 5, 5]),
        (
            Conv2d::new(Conv2dConfig::new(0, 2, 3), 1).unwrap(),
            vec![2, 0, 5, 5],
        ),
    ] {
        let input = Tensor::zeros(shape).unwrap();
        let grad_output = random_grad_output(&layer, &input, 1);
        let gpu = wgpu_conv2d::GpuConv2d::new(common::gpu(), &layer)
            .unwrap()
            .backward(&input, &grad_output)
            .unwrap();
        assert_eq!(gpu, layer.backward_cpu(&input, &grad_output).unwrap());
        assert_eq!(gpu.grad_input.shape(), input.shape());
        assert!(gpu.grad_weight.data().iter().all(|&v| v == 0.0));
        assert!(gpu.grad_bias.unwrap().data().iter().all(|&v| v == 0.0));
    }
}

/// An infinite or NaN input that no output reads (a column a stride skips, the
/// rows and columns past the last window) leaves every gradient as PyTorch
/// gives it: the blocked weight gradient once read such columns into lanes
/// past the row's end, where a zero output gradient times infinity made NaN.
/// Every backward algorithm, every dtype.
#[test]
fn inputs_no_output_reads_do_not_poison_the_gradients() {
    let cases = [
        // Width 10, kernel 4 dilated by 2, stride 3: columns 1 and 8 unread.
        (
            Conv2dConfig::new(2, 3, (1, 4))
                .with_stride((1, 3))
                .with_dilation((1, 2)),
            [1, 2, 2, 10],
            &[8usize, 1][..],
        ),
        // 3x3, stride 2, width and height 10: the last row and column unread.
        (
            Conv2dConfig::new(2, 4, 3).with_stride(2),
            [2, 2, 10, 10],
            &[9, 99, 90][..],
        ),
    ];
    for (config, shape, poisoned) in cases {
        for dtype in [wgpu_conv2d::DType::F32, wgpu_conv2d::DType::F16] {
            let layer = Conv2d::new(config, 3).unwrap().to_dtype(dtype);
            let mut input = common::random_tensor(&shape, 4);
            let plane = shape[2] * shape[3];
            for (k, &at) in poisoned.iter().enumerate() {
                for p in 0..shape[0] * shape[1] {
                    input.data_mut()[p * plane + at] =
                        [f32::INFINITY, f32::NAN, f32::NEG_INFINITY][k % 3];
                }
            }
            let input = input.to_dtype(dtype);
            let g = Conv2dGeometry::new(&config, input.shape()).unwrap();
            let grad_output = common::random_tensor(&g.output_shape(), 5).to_dtype(dtype);
            let want = layer.backward_cpu(&input, &grad_output).unwrap();
            assert!(
                want.grad_weight.data().iter().all(|v| v.is_finite()),
                "the reference reads no poisoned input"
            );
            for algorithm in BackwardAlgorithm::ALL {
                if algorithm.check(&g).is_err() {
                    continue;
                }
                let got = wgpu_conv2d::GpuConv2d::new(common::gpu(), &layer)
                    .unwrap()
                    .with_backward_algorithm(algorithm)
                    .backward(&input, &grad_output)
                    .unwrap();
                common::assert_grads_within_bound(
                    &format!("{config:?} {dtype} [{algorithm}]"),
                    &got,
                    &want,
                    &layer,
                    &input,
                    &grad_output,
                );
            }
        }
    }
}

/// An infinite output gradient, with the input split into blocks of
/// channels (a small binding): the weight and bias gradients are PyTorch's,
/// infinite where the infinity's products land and exact elsewhere (all-ones
/// data), never NaN from a block adding `inf · 0` for channels it does not
/// hold. Every backward algorithm that fits the binding; direct and
/// implicit-gemm always do.
#[test]
fn an_infinite_output_gradient_stays_infinite_across_channel_blocks() {
    let config = Conv2dConfig::new(8, 4, 3);
    let layer = Conv2d::new(config, 6).unwrap();
    let input = Tensor::new([2, 8, 10, 10], vec![1.0; 2 * 8 * 100]).unwrap();
    let mut grad_output = vec![1.0; 2 * 4 * 64];
    grad_output[64 + 2 * 8 + 2] = f32::INFINITY;
    let grad_output = Tensor::new([2, 4, 8, 8], grad_output).unwrap();
    let want = layer.backward_cpu(&input, &grad_output).unwrap();
    assert!(
        want.grad_weight.data()[72..144]
            .iter()
            .all(|&v| v == f32::INFINITY)
    );
    // Three input planes per binding (of 8 per batch item; the weight, 288
    // floats, fits too).
    let ctx = common::gpu().with_max_binding_bytes(300 * 4);
    let mut ran = Vec::new();
    for algorithm in BackwardAlgorithm::ALL {
        let got = match wgpu_conv2d::GpuConv2d::new(&ctx, &layer)
            .unwrap()
            .with_backward_algorithm(algorithm)
            .backward(&input, &grad_output)
        {
            Ok(got) => got,
            Err(e) if algorithm == BackwardAlgorithm::Blocked => {
                assert!(e.to_string().contains("binding"), "{e}");
                continue;
            }
            Err(e) => panic!("[{algorithm}]: {e}"),
        };
        for (name, g, w) in [
            ("grad_weight", &got.grad_weight, &want.grad_weight),
            (
                "grad_bias",
                got.grad_bias.as_ref().unwrap(),
                want.grad_bias.as_ref().unwrap(),
            ),
        ] {
            for (k, (a, b)) in g.data().iter().zip(w.data()).enumerate() {
                assert!(a == b, "[{algorithm}] {name}[{k}] is {a}, PyTorch's {b}");
            }
        }
        ran.push(algorithm);
    }
    assert!(
        ran.contains(&BackwardAlgorithm::Direct) && ran.contains(&BackwardAlgorithm::ImplicitGemm),
        "ran {ran:?}"
    );
}

/// A weight holding an infinity: the input gradient is PyTorch's (infinite
/// where a real output's product with it lands, finite elsewhere: PyTorch
/// 2.15 gives [inf, inf, inf, 1, 0.5] on the first row below), not the NaN
/// of the output gradient's zero padding times infinity; the forced blocked
/// backward, which convolves that padding, refuses it by name. After training
/// made a weight infinite, the next backward finds out (it reads the weight
/// back once).
#[test]
fn an_infinite_weight_gives_pytorchs_input_gradient() {
    use wgpu_conv2d::{GpuConv2d, GpuTensor, GradMask, Sgd, SgdConfig};
    let config = Conv2dConfig::new(1, 1, 3).with_bias(false);
    let mut w = vec![1.0f32; 9];
    w[0] = f32::INFINITY;
    let layer = Conv2d::from_weights(config, Tensor::new([1, 1, 3, 3], w).unwrap(), None).unwrap();
    let x = Tensor::new([1, 1, 5, 5], vec![1.0; 25]).unwrap();
    let gy = Tensor::new([1, 1, 3, 3], vec![0.5; 9]).unwrap();
    let want = layer.backward_cpu(&x, &gy).unwrap();
    assert_eq!(
        &want.grad_input.data()[..5],
        &[f32::INFINITY, f32::INFINITY, f32::INFINITY, 1.0, 0.5]
    );
    let same = |what: &str, got: &Tensor, want: &Tensor| {
        assert!(
            (got.data().iter().zip(want.data())).all(|(a, b)| a == b || (a.is_nan() && b.is_nan())),
            "{what}: {:?} against {:?}",
            got.data(),
            want.data()
        );
    };
    let gpu = GpuConv2d::new(common::gpu(), &layer).unwrap();
    same(
        "auto",
        &gpu.backward(&x, &gy).unwrap().grad_input,
        &want.grad_input,
    );
    let err = GpuConv2d::new(common::gpu(), &layer)
        .unwrap()
        .with_backward_algorithm(BackwardAlgorithm::Blocked)
        .backward(&x, &gy)
        .unwrap_err()
        .to_string();
    assert!(err.contains("infinite or NaN"), "{err}");

    // Finite at first; two huge SGD steps take the weight past f32's range.
    let finite = Conv2d::new(config, 1).unwrap();
    let mut gpu = GpuConv2d::new(common::gpu(), &finite).unwrap();
    let (xg, gyg) = (
        GpuTensor::upload(common::gpu(), &x).unwrap(),
        GpuTensor::upload(common::gpu(), &gy).unwrap(),
    );
    let mut sgd = Sgd::new(SgdConfig {
        lr: 3.0e38,
        ..SgdConfig::default()
    })
    .unwrap();
    for _ in 0..2 {
        let grads = gpu.backward_gpu(&xg, &gyg, GradMask::PARAMETERS).unwrap();
        sgd.step(&mut gpu, &grads).unwrap();
    }
    let trained = gpu.to_layer().unwrap();
    assert!(trained.weight().data().iter().any(|v| v.is_infinite()));
    let want = trained.backward_cpu(&x, &gy).unwrap();
    let got = gpu.backward_gpu(&xg, &gyg, GradMask::ALL).unwrap();
    same(
        "auto after training",
        &got.grad_input.unwrap().download().unwrap(),
        &want.grad_input,
    );
}

/// Kernels that share weight loads across a subgroup's lanes (where the
/// adapter has fixed-width subgroups: 8 lanes on llvmpipe, 4 on SwiftShader)
/// sum the same products in the same order as those that do not: every bit
/// of the forward and of the backward agrees, over random layers of every
/// space the blocked and Winograd kernels run, whole and split over small
/// bindings (partial blocks, padded runs, accumulating slices).
#[test]
fn sharing_weights_across_subgroups_changes_no_bit() {
    let ctx = common::gpu();
    let name = &ctx.adapter_info().name;
    let width = ctx.subgroup_width();
    if name.contains("llvmpipe") {
        assert_eq!(width, Some(8), "llvmpipe's subgroups are 8 lanes");
    } else if name.contains("SwiftShader") {
        assert_eq!(width, Some(4), "SwiftShader's subgroups are 4 lanes");
    } else {
        eprintln!("{name}: subgroup width {width:?}");
    }
    let mut rng = StdRng::seed_from_u64(0x5b6);
    let mut checked = 0;
    for (space, algorithm, backward) in [
        (Space::General, Algorithm::Blocked, true),
        (Space::Wide, Algorithm::Blocked, true),
        (Space::Pointwise, Algorithm::Blocked, false),
        (Space::WideKernel, Algorithm::Blocked, false),
        (Space::Winograd, Algorithm::Winograd, false),
        (Space::WinogradWide, Algorithm::Winograd, false),
    ] {
        let mut cases = 0;
        while cases < 4 {
            let Some((layer, input)) = random_case(&mut rng, space) else {
                continue;
            };
            let split = cases % 2 == 1;
            let g = Conv2dGeometry::new(layer.config(), input.shape()).unwrap();
            let base = if split {
                let plane = (g.height().input() * g.width().input())
                    .max(g.height().output() * g.width().output());
                let needs = algorithm
                    .min_binding_bytes(&g, ctx.adapter_info().device_type, Precision::Highest)
                    .unwrap();
                ctx.with_max_binding_bytes(((plane * 8) as u64).max(needs))
            } else {
                ctx.clone()
            };
            let what = format!(
                "{space:?} {algorithm}: {:?} on {:?}",
                layer.config(),
                input.shape()
            );
            let run = |ctx: &wgpu_conv2d::GpuContext| {
                let gpu = wgpu_conv2d::GpuConv2d::new(ctx, &layer)
                    .unwrap()
                    .with_algorithm(algorithm);
                let output = gpu.forward(&input).unwrap();
                let gradients = backward.then(|| {
                    let grad_output = random_grad_output(&layer, &input, 7);
                    gpu.backward(&input, &grad_output).unwrap()
                });
                (output, gradients)
            };
            let (shared, plain) = (run(&base), run(&base.with_subgroups(false)));
            assert_eq!(shared.0, plain.0, "{what}: the forward");
            assert_eq!(shared.1, plain.1, "{what}: the gradients");
            if algorithm == Algorithm::Winograd {
                check_winograd(&what, &layer, &input, &base);
            } else {
                common::check_algorithm(&what, &layer, &input, algorithm, &base);
            }
            cases += 1;
            checked += 1;
        }
    }
    eprintln!("{checked} layers alike with and without shared loads (width {width:?})");
}
