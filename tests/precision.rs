//! Precision levels. Under `Precision::High`, `Auto` runs Winograd on CPU
//! adapters where it was measured faster (the forward, and the input
//! gradient's phase convolutions), and every result stays within Winograd's
//! per-output bound and the normwise bound `Precision` documents; under
//! `Highest` it never does. Under `Medium` it also runs the blocked kernel on
//! bfloat16 operands, whose results are the f32 sums of the rounded
//! operands' products. Each level's bound rejects a wrong result.

mod common;

use rand::{RngExt, SeedableRng, rngs::StdRng};
use wgpu_conv2d::bench::{BenchOptions, measure_backward};
use wgpu_conv2d::{
    Algorithm, BackwardAlgorithm, Conv2d, Conv2dConfig, GpuContext, GpuConv2d, PaddingMode,
    Precision, Tensor,
};

const MODES: [PaddingMode; 4] = [
    PaddingMode::Zeros,
    PaddingMode::Reflect,
    PaddingMode::Replicate,
    PaddingMode::Circular,
];

fn high() -> GpuContext {
    common::gpu().with_precision(Precision::High)
}

fn on_cpu_adapter() -> bool {
    common::gpu().adapter_info().device_type == wgpu_conv2d::wgpu::DeviceType::Cpu
}

/// A random 3×3 stride-1 layer with 64 to 72 input and output channels per
/// group (where `Auto` picks Winograd under `High`), every
/// padding mode, padding 0 to 2, and its input: planes of 18 to 26, so that
/// there are at least 4096 outputs (fewer run the direct kernel).
fn winograd_case(rng: &mut StdRng, k: usize) -> (Conv2d, Tensor) {
    let groups = [1, 1, 2][rng.random_range(0..3)];
    let cpg = rng.random_range(64..=72);
    let kpg = rng.random_range(64..=72);
    let padding = rng.random_range(0..=2usize);
    let config = Conv2dConfig::new(groups * cpg, groups * kpg, 3)
        .with_padding(padding as i32)
        .with_groups(groups)
        .with_bias(rng.random_bool(0.7))
        .with_padding_mode(MODES[k % 4]);
    let layer = Conv2d::new(config, k as u64).unwrap();
    let (h, w) = (rng.random_range(18..=26), rng.random_range(18..=26));
    let batch = rng.random_range(1..=2);
    let input = common::random_tensor(&[batch, groups * cpg, h, w], 100 + k as u64);
    (layer, input)
}

/// The largest `|got − want|`.
fn largest_error(got: &Tensor, want: &Tensor) -> f32 {
    (got.data().iter().zip(want.data()))
        .map(|(g, w)| (g - w).abs())
        .fold(0.0f32, f32::max)
}

/// Asserts `got` within Winograd's per-output bound and its normwise bound.
fn assert_within_high(what: &str, layer: &Conv2d, input: &Tensor, got: &Tensor) {
    let want = layer.forward_cpu(input).unwrap();
    let per_output = common::winograd::winograd_bound(layer, input);
    common::assert_within(&format!("{what} (per output)"), got, &want, &per_output);
    let normwise = common::winograd::normwise_bound(layer, input);
    let worst = largest_error(got, &want);
    assert!(
        worst <= normwise,
        "{what}: largest error {worst} exceeds the normwise bound {normwise}"
    );
}

#[test]
fn high_precision_forward_runs_winograd_within_its_bounds() {
    let ctx = high();
    let mut rng = StdRng::seed_from_u64(0x21_0001);
    for k in 0..24 {
        let (layer, input) = winograd_case(&mut rng, k);
        let what = format!("case {k}: {:?} on {:?}", layer.config(), input.shape());
        let gpu = GpuConv2d::new(&ctx, &layer).unwrap();
        assert_eq!(gpu.precision(), Precision::High);
        let picked = gpu.resolved_algorithm(input.shape()).unwrap();
        assert_eq!(picked, Algorithm::Winograd, "{what}");
        assert!(picked.precision() <= Precision::High, "{what}: {picked}");
        let got = gpu.forward(&input).unwrap();
        assert_within_high(&what, &layer, &input, &got);
        // The default keeps Highest: never Winograd.
        let strict = GpuConv2d::new(common::gpu(), &layer).unwrap();
        assert_eq!(strict.precision(), Precision::Highest);
        assert_ne!(
            strict.resolved_algorithm(input.shape()).unwrap(),
            Algorithm::Winograd,
            "{what}"
        );
    }
}

/// A layer's own precision overrides its context's, both ways.
#[test]
fn a_layer_overrides_its_contexts_precision() {
    let config = Conv2dConfig::new(64, 64, 3).with_padding(1);
    let layer = Conv2d::new(config, 5).unwrap();
    let shape = [1, 64, 24, 24];
    let strict = GpuConv2d::new(&high(), &layer)
        .unwrap()
        .with_precision(Precision::Highest);
    assert_eq!(strict.precision(), Precision::Highest);
    assert_ne!(
        strict.resolved_algorithm(&shape).unwrap(),
        Algorithm::Winograd
    );
    let loose = GpuConv2d::new(common::gpu(), &layer)
        .unwrap()
        .with_precision(Precision::High);
    assert_eq!(
        loose.resolved_algorithm(&shape).unwrap(),
        Algorithm::Winograd
    );
    // A forced algorithm runs whatever the precision.
    let forced = GpuConv2d::new(&high(), &layer)
        .unwrap()
        .with_algorithm(Algorithm::Blocked);
    assert_eq!(
        forced.resolved_algorithm(&shape).unwrap(),
        Algorithm::Blocked
    );
}

/// The layer whose forward is the input gradient of `layer` (zeros padding:
/// the gradient itself; other modes: the gradient of the padded input, before
/// the fold): the weight flipped and its channels swapped per group, padding
/// `2 − p` for zeros, else 2, no bias.
fn transposed_layer(layer: &Conv2d, padding: usize) -> Conv2d {
    let c = layer.config();
    let (cpg, kpg) = (c.in_channels / c.groups, c.out_channels / c.groups);
    let w = layer.weight().data();
    let mut flipped = vec![0.0f32; w.len()];
    for group in 0..c.groups {
        for kk in 0..kpg {
            for cc in 0..cpg {
                for r in 0..3 {
                    for s in 0..3 {
                        let from = (((group * kpg + kk) * cpg + cc) * 3 + r) * 3 + s;
                        let to = (((group * cpg + cc) * kpg + kk) * 3 + 2 - r) * 3 + 2 - s;
                        flipped[to] = w[from];
                    }
                }
            }
        }
    }
    let pad = if c.padding_mode == PaddingMode::Zeros {
        2 - padding
    } else {
        2
    };
    let config = Conv2dConfig::new(c.out_channels, c.in_channels, 3)
        .with_padding(pad as i32)
        .with_groups(c.groups)
        .with_bias(false);
    Conv2d::from_weights(
        config,
        Tensor::new(config.weight_shape(), flipped).unwrap(),
        None,
    )
    .unwrap()
}

/// Where padded position `t` of an axis `len` long padded by `pad` reads
/// from, for a mode other than zeros.
fn source(t: usize, pad: usize, len: usize, mode: PaddingMode) -> usize {
    let t = t as i64 - pad as i64;
    let len = len as i64;
    (if (0..len).contains(&t) {
        t
    } else {
        match mode {
            PaddingMode::Reflect => {
                if t < 0 {
                    -t
                } else {
                    2 * (len - 1) - t
                }
            }
            PaddingMode::Replicate => t.clamp(0, len - 1),
            PaddingMode::Circular => {
                if t < 0 {
                    t + len
                } else {
                    t - len
                }
            }
            PaddingMode::Zeros => unreachable!(),
        }
    }) as usize
}

/// The bound on the input gradient under `High`: Winograd's per-output bound
/// on the transposed convolution, and for padding modes other than zeros its
/// fold onto the input (each input position sums the bounds of its copies,
/// plus the fold's own rounding: `copies + 1` roundings of the copies'
/// magnitudes).
fn grad_input_bound(layer: &Conv2d, input: &Tensor, grad_output: &Tensor) -> Tensor {
    let c = layer.config();
    let padding = match c.padding {
        wgpu_conv2d::Padding::Explicit { h, .. } => h as usize,
        wgpu_conv2d::Padding::Valid => 0,
        wgpu_conv2d::Padding::Same => 1,
    };
    let t = transposed_layer(layer, padding);
    let bound = common::winograd::winograd_bound(&t, grad_output);
    if c.padding_mode == PaddingMode::Zeros {
        return bound;
    }
    let magnitude = common::magnitude(&t, grad_output);
    let [n, ch, h, w] = <[usize; 4]>::try_from(input.shape()).unwrap();
    let (ph, pw) = (h + 2 * padding, w + 2 * padding);
    let mut sum = vec![0.0f64; input.numel()];
    let mut mag = vec![0.0f64; input.numel()];
    let mut copies = vec![0usize; input.numel()];
    for plane in 0..n * ch {
        for y in 0..ph {
            for x in 0..pw {
                let to = (plane * h + source(y, padding, h, c.padding_mode)) * w
                    + source(x, padding, w, c.padding_mode);
                let from = (plane * ph + y) * pw + x;
                sum[to] += f64::from(bound.data()[from]);
                mag[to] += f64::from(magnitude.data()[from]);
                copies[to] += 1;
            }
        }
    }
    let u = f64::from(f32::EPSILON);
    let data = (0..sum.len())
        .map(|i| (sum[i] + (copies[i] as f64 + 1.0) * u * mag[i]) as f32)
        .collect();
    Tensor::new(input.shape(), data).unwrap()
}

#[test]
fn high_precision_input_gradient_runs_winograd_within_its_bound() {
    let ctx = high();
    let mut rng = StdRng::seed_from_u64(0x21_0002);
    for k in 0..12 {
        let (layer, input) = winograd_case(&mut rng, k);
        let what = format!("case {k}: {:?} on {:?}", layer.config(), input.shape());
        let g = wgpu_conv2d::Conv2dGeometry::new(layer.config(), input.shape()).unwrap();
        let grad_output = common::random_tensor(&g.output_shape(), 200 + k as u64);
        let got = GpuConv2d::new(&ctx, &layer)
            .unwrap()
            .backward(&input, &grad_output)
            .unwrap();
        let want = layer.backward_cpu(&input, &grad_output).unwrap();
        let tolerance = grad_input_bound(&layer, &input, &grad_output);
        if on_cpu_adapter() && layer.config().padding_mode == PaddingMode::Zeros {
            // What ran: Winograd on the transposed convolution, bit for bit.
            let padding = match layer.config().padding {
                wgpu_conv2d::Padding::Explicit { h, .. } => h as usize,
                _ => unreachable!(),
            };
            let winograd = GpuConv2d::new(common::gpu(), &transposed_layer(&layer, padding))
                .unwrap()
                .with_algorithm(Algorithm::Winograd)
                .forward(&grad_output)
                .unwrap();
            let differ = (got.grad_input.data().iter())
                .zip(winograd.data())
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count();
            assert_eq!(differ, 0, "{what}: elements that differ from Winograd's");
        }
        common::assert_within(
            &format!("{what}: grad_input"),
            &got.grad_input,
            &want.grad_input,
            &tolerance,
        );
        // The weight and bias gradients keep the fp32 bound: checked whole
        // (grad_input against the wider bound above).
        let strict = GpuConv2d::new(common::gpu(), &layer)
            .unwrap()
            .backward(&input, &grad_output)
            .unwrap();
        let mixed = wgpu_conv2d::Conv2dGrads {
            grad_input: strict.grad_input,
            ..got
        };
        common::assert_grads_within_bound(&what, &mixed, &want, &layer, &input, &grad_output);
    }
    // What ran: Winograd for the input gradient on a CPU adapter.
    let (layer, input) = winograd_case(&mut rng, 0);
    let options = BenchOptions {
        min_time: std::time::Duration::ZERO,
        min_runs: 1,
        max_runs: 1,
        ..BenchOptions::default()
    };
    let ran = measure_backward(
        &ctx,
        *layer.config(),
        input.shape(),
        BackwardAlgorithm::Auto,
        &options,
    )
    .unwrap();
    assert_eq!(ran.precision, Precision::High);
    if on_cpu_adapter() {
        assert_eq!(ran.algorithm, "winograd input, blocked weight");
    }
}

/// Each level's bound rejects a result with one input channel dropped (the
/// layer run with that channel's weights zeroed), on one-signed data, where
/// the dropped products cannot cancel: the direct bound for `Highest`, and
/// the normwise bound `High` documents (its per-output bound rejects one of
/// 47 random-signed channels: `winograd_checks_reject_one_dropped_channel`
/// in gpu_vs_cpu.rs).
#[test]
fn each_levels_bound_rejects_a_dropped_channel() {
    let channels = 4;
    let config = Conv2dConfig::new(channels, 8, 3).with_padding(1);
    let random = Conv2d::new(config, 9).unwrap();
    let layer = Conv2d::from_weights(
        config,
        common::abs(random.weight()),
        random.bias().map(common::abs),
    )
    .unwrap();
    let input = common::abs(&common::random_tensor(&[1, channels, 12, 12], 9));
    let want = layer.forward_cpu(&input).unwrap();
    let magnitude = common::magnitude(&layer, &input);
    let normwise = common::winograd::normwise_bound(&layer, &input);
    let highest = |got: &Tensor| {
        common::assert_within_bound("highest", got, &want, &magnitude, common::terms(&layer))
    };
    let high = |got: &Tensor| {
        let worst = largest_error(got, &want);
        assert!(worst <= normwise, "high: {worst} > {normwise}");
    };
    let medium = |got: &Tensor| assert_within_medium("medium", &layer, &input, got);
    let run = |layer: &Conv2d, algorithm| {
        GpuConv2d::new(common::gpu(), layer)
            .unwrap()
            .with_algorithm(algorithm)
            .forward(&input)
            .unwrap()
    };
    // The whole layer passes.
    highest(&run(&layer, Algorithm::Direct));
    high(&run(&layer, Algorithm::Winograd));
    medium(&run(&layer, Algorithm::BlockedBf16));
    let fails =
        |check: &dyn Fn()| std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)).is_err();
    for dropped in 0..channels {
        let short = common::without_input_channel(&layer, dropped);
        let direct = run(&short, Algorithm::Direct);
        assert!(fails(&|| highest(&direct)), "highest, channel {dropped}");
        let winograd = run(&short, Algorithm::Winograd);
        assert!(fails(&|| high(&winograd)), "high, channel {dropped}");
        let bf16 = run(&short, Algorithm::BlockedBf16);
        assert!(fails(&|| medium(&bf16)), "medium, channel {dropped}");
    }
}

/// What the README says of Winograd and infinities: where the direct sum is
/// +inf (outputs whose window holds an infinite input), Winograd's transforms
/// subtract the infinity from itself and give NaN; the other outputs are
/// unchanged.
#[test]
fn winograd_turns_an_infinite_sum_into_nan() {
    let config = Conv2dConfig::new(1, 1, 3).with_bias(false);
    let layer = Conv2d::from_weights(
        config,
        Tensor::new([1, 1, 3, 3], vec![1.0; 9]).unwrap(),
        None,
    )
    .unwrap();
    let mut x = vec![1.0f32; 64];
    x[5 * 8 + 5] = f32::INFINITY;
    let x = Tensor::new([1, 1, 8, 8], x).unwrap();
    let want = layer.forward_cpu(&x).unwrap();
    let got = GpuConv2d::new(common::gpu(), &layer)
        .unwrap()
        .with_algorithm(Algorithm::Winograd)
        .forward(&x)
        .unwrap();
    let (mut nan, mut same) = (0, 0);
    for (&g, &w) in got.data().iter().zip(want.data()) {
        if w.is_infinite() {
            nan += usize::from(g.is_nan());
        } else {
            assert_eq!(g, w);
            same += 1;
        }
    }
    assert!(nan > 0, "some infinite sums come out NaN");
    assert_eq!(same, 27, "the 27 finite outputs are unchanged");
}

/// `t` rounded to bfloat16 (to nearest, ties to even), held as `f32`.
fn bf16_rounded(t: &Tensor) -> Tensor {
    let data = t.data().iter().map(|&v| half::bf16::from_f32(v).to_f32());
    Tensor::new(t.shape(), data.collect()).unwrap()
}

/// Asserts `got` within Medium's per-output bound of the layer's exact result.
fn assert_within_medium(what: &str, layer: &Conv2d, input: &Tensor, got: &Tensor) {
    let want = layer.forward_cpu(input).unwrap();
    let magnitude = common::magnitude(layer, input);
    let terms = common::terms(layer);
    // Each operand rounded to bfloat16, then the f32 sum of the rounded
    // products.
    let data = (magnitude.data().iter())
        .map(|&m| common::bf16_operand_bound(terms, m) + common::bound(terms, m));
    let tolerance = Tensor::new(magnitude.shape(), data.collect()).unwrap();
    common::assert_within(&format!("{what} (medium)"), got, &want, &tolerance);
}

/// A random layer the blocked kernel runs: every padding mode, padding 0
/// to 2, stride and dilation 1 to 2, kernels 1×1 to 3×5, 1 to 3 groups of
/// 3 to 20 channels (blocks of 4, 8 and 16 output channels, partly
/// filled), rows 5 to 23 long (most not a whole number of vec4s).
fn blocked_case(rng: &mut StdRng, k: usize) -> (Conv2d, Tensor) {
    let groups = rng.random_range(1..=3);
    let cpg = rng.random_range(3..=20);
    let kpg = rng.random_range(3..=20);
    let kernel = (rng.random_range(1..=3), rng.random_range(1..=5));
    let padding = rng.random_range(0..=2usize);
    let config = Conv2dConfig::new(groups * cpg, groups * kpg, kernel)
        .with_padding(padding as i32)
        .with_stride((rng.random_range(1..=2), rng.random_range(1..=2)))
        .with_dilation((rng.random_range(1..=2), rng.random_range(1..=2)))
        .with_groups(groups)
        .with_bias(rng.random_bool(0.7))
        .with_padding_mode(MODES[k % 4]);
    let layer = Conv2d::new(config, 300 + k as u64).unwrap();
    let (h, w) = (rng.random_range(12..=20), rng.random_range(12..=23));
    let batch = rng.random_range(1..=2);
    let input = common::random_tensor(&[batch, groups * cpg, h, w], 400 + k as u64);
    (layer, input)
}

/// blocked-bf16 computes the f32 sum of the products of the input and weight
/// rounded to bfloat16: within the fp32 bound of the reference run on the
/// rounded operands (the bias unrounded), and so within Medium's bound of
/// the exact result. Skipping the rounding of either operand fails the
/// first; a wrong tap or channel fails both.
#[test]
fn blocked_bf16_sums_the_products_of_bfloat16_operands() {
    let mut rng = StdRng::seed_from_u64(0x21_0004);
    for k in 0..32 {
        let (layer, input) = blocked_case(&mut rng, k);
        let what = format!("case {k}: {:?} on {:?}", layer.config(), input.shape());
        let got = GpuConv2d::new(common::gpu(), &layer)
            .unwrap()
            .with_algorithm(Algorithm::BlockedBf16)
            .forward(&input)
            .unwrap();
        let rounded = Conv2d::from_weights(
            *layer.config(),
            bf16_rounded(layer.weight()),
            layer.bias().cloned(),
        )
        .unwrap();
        let rounded_input = bf16_rounded(&input);
        let want = rounded.forward_cpu(&rounded_input).unwrap();
        let magnitude = common::magnitude(&rounded, &rounded_input);
        common::assert_within_bound(&what, &got, &want, &magnitude, common::terms(&layer));
        assert_within_medium(&what, &layer, &input, &got);
    }
}

/// Under `Medium`, Auto on CPU adapters runs the blocked kernel on bfloat16
/// operands where it copies its input anyway (padded 3×3 layers under
/// Winograd's 64 channels), keeps Winograd where `High` picks it, and keeps
/// float32 operands where the kernel reads the input in place; on GPUs it
/// picks what `High` does. Every result within Medium's bound.
#[test]
fn medium_precision_lets_auto_multiply_bfloat16_where_it_was_measured_faster() {
    let ctx = common::gpu().with_precision(Precision::Medium);
    let cases = [
        (
            Conv2dConfig::new(32, 32, 3).with_padding(1),
            [2, 32, 20, 20],
            Algorithm::BlockedBf16,
        ),
        (
            Conv2dConfig::new(24, 40, 3)
                .with_padding(1)
                .with_padding_mode(PaddingMode::Reflect),
            [1, 24, 30, 18],
            Algorithm::BlockedBf16,
        ),
        (
            Conv2dConfig::new(64, 64, 3).with_padding(1),
            [1, 64, 24, 24],
            Algorithm::Winograd,
        ),
        (
            Conv2dConfig::new(32, 64, 1),
            [2, 32, 16, 16],
            Algorithm::Blocked,
        ),
    ];
    for (k, (config, shape, on_cpu)) in cases.into_iter().enumerate() {
        let layer = Conv2d::new(config, 40 + k as u64).unwrap();
        let input = common::random_tensor(&shape, 50 + k as u64);
        let gpu = GpuConv2d::new(&ctx, &layer).unwrap();
        assert_eq!(gpu.precision(), Precision::Medium);
        let picked = gpu.resolved_algorithm(&shape).unwrap();
        let high = GpuConv2d::new(&high(), &layer)
            .unwrap()
            .resolved_algorithm(&shape)
            .unwrap();
        let what = format!("{config:?} on {shape:?}");
        if on_cpu_adapter() {
            assert_eq!(picked, on_cpu, "{what}");
        } else {
            assert_eq!(picked, high, "{what}");
        }
        assert!(picked.precision() <= Precision::Medium, "{what}: {picked}");
        let got = gpu.forward(&input).unwrap();
        assert_within_medium(&what, &layer, &input, &got);
    }
}
