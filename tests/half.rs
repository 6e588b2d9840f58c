//! float16 and bfloat16 tensors: every algorithm's forward and the three
//! gradients against the CPU reference (exact sums rounded once to the
//! dtype), under the bound of an `f32` accumulation rounded once; the host
//! and GPU-resident paths alike; dtype mismatches refused with PyTorch's
//! words; the optimisers' f32 master weights.

mod common;

use common::{assert_grads_within_bound, assert_within, magnitude, rounded_bound, terms};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use wgpu_conv2d::{
    Algorithm, BackwardAlgorithm, Conv2d, Conv2dConfig, Conv2dGeometry, DType, GpuConv2d,
    GpuTensor, GradMask, PaddingMode, Sgd, SgdConfig, Tensor,
};

const HALVES: [DType; 2] = [DType::F16, DType::BF16];

const MODES: [PaddingMode; 4] = [
    PaddingMode::Zeros,
    PaddingMode::Reflect,
    PaddingMode::Replicate,
    PaddingMode::Circular,
];

/// A random layer and input in `dtype`: kernels up to 5, strides up to 3,
/// dilations up to 2, every padding mode, groups, 1 to 24 channels per
/// group, batch 1 or 2.
fn random_case(rng: &mut StdRng, k: usize, dtype: DType) -> Option<(Conv2d, Tensor)> {
    let groups = [1, 1, 2, 3][rng.random_range(0..4)];
    let (cpg, kpg) = (rng.random_range(1..=24), rng.random_range(1..=24));
    let kernel = (rng.random_range(1..=5), rng.random_range(1..=5));
    let dilation = rng.random_range(1..=2);
    let padding = (rng.random_range(0..=2), rng.random_range(0..=2));
    let config = Conv2dConfig::new(groups * cpg, groups * kpg, kernel)
        .with_stride(rng.random_range(1..=3))
        .with_dilation(dilation)
        .with_padding(padding)
        .with_groups(groups)
        .with_bias(rng.random_bool(0.7))
        .with_padding_mode(MODES[k % 4]);
    let shape = [
        rng.random_range(1..=2),
        groups * cpg,
        rng.random_range(4..=20),
        rng.random_range(4..=20),
    ];
    Conv2dGeometry::new(&config, &shape).ok()?;
    let layer = Conv2d::new(config, k as u64).ok()?.to_dtype(dtype);
    let input = common::random_tensor(&shape, 500 + k as u64).to_dtype(dtype);
    // Reflect needs padding < size; the reference says so: skip those.
    layer.forward_cpu(&input).ok()?;
    Some((layer, input))
}

/// Every algorithm that can run `layer` on `input`, forward through the host
/// API and through GPU-resident tensors, against the CPU reference.
fn check_forward(what: &str, layer: &Conv2d, input: &Tensor) -> usize {
    let g = Conv2dGeometry::new(layer.config(), input.shape()).unwrap();
    let want = layer.forward_cpu(input).unwrap();
    assert_eq!(want.dtype(), layer.dtype());
    let m = magnitude(layer, input);
    let mut ran = 0;
    for algorithm in std::iter::once(Algorithm::Auto).chain(Algorithm::KERNELS) {
        if algorithm.check(&g).is_err() {
            continue;
        }
        let what = format!("{what} [{algorithm}]");
        let gpu = GpuConv2d::new(common::gpu(), layer)
            .unwrap()
            .with_algorithm(algorithm);
        assert_eq!(gpu.dtype(), layer.dtype());
        let got = gpu.forward(input).unwrap();
        let mut tolerance: Vec<f32> = (m.data().iter().zip(want.data()))
            .map(|(&m, &w)| rounded_bound(terms(layer), m, w, layer.dtype()))
            .collect();
        if let Some(own) = common::own_bound(algorithm, layer, input) {
            for (t, w) in tolerance.iter_mut().zip(own.data()) {
                *t += w;
            }
        }
        let tolerance = Tensor::new(want.shape(), tolerance).unwrap();
        assert_eq!(got.dtype(), layer.dtype(), "{what}");
        assert_within(&what, &got, &want, &tolerance);
        // GPU-resident: the same bits.
        let resident = gpu
            .forward_gpu(&GpuTensor::upload(common::gpu(), input).unwrap())
            .unwrap();
        assert_eq!(resident.dtype(), layer.dtype());
        let resident = resident.download().unwrap();
        assert!(
            (resident.data().iter().zip(got.data())).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{what}: GPU-resident and host results differ"
        );
        ran += 1;
    }
    ran
}

#[test]
fn half_forward_agrees_with_the_cpu_reference_on_every_algorithm() {
    for dtype in HALVES {
        let mut rng = StdRng::seed_from_u64(0x16_0001 + dtype as u64);
        let (mut checked, mut runs) = (0, 0);
        let cases = common::sampled(40);
        while checked < cases {
            let Some((layer, input)) = random_case(&mut rng, checked, dtype) else {
                continue;
            };
            let what = format!(
                "{dtype} case {checked}: {:?} on {:?}",
                layer.config(),
                input.shape()
            );
            runs += check_forward(&what, &layer, &input);
            checked += 1;
        }
        eprintln!("{dtype}: {checked} cases, {runs} algorithm runs");
    }
}

#[test]
fn half_gradients_agree_with_the_cpu_reference() {
    for dtype in HALVES {
        let mut rng = StdRng::seed_from_u64(0x16_0002 + dtype as u64);
        let mut checked = 0;
        let cases = common::sampled(24);
        while checked < cases {
            let Some((layer, input)) = random_case(&mut rng, checked, dtype) else {
                continue;
            };
            let g = Conv2dGeometry::new(layer.config(), input.shape()).unwrap();
            let grad_output =
                common::random_tensor(&g.output_shape(), 900 + checked as u64).to_dtype(dtype);
            let want = layer.backward_cpu(&input, &grad_output).unwrap();
            assert_eq!(want.grad_input.dtype(), dtype);
            for algorithm in [BackwardAlgorithm::Auto, BackwardAlgorithm::Direct] {
                let what = format!(
                    "{dtype} case {checked} [{algorithm}]: {:?} on {:?}",
                    layer.config(),
                    input.shape()
                );
                let gpu = GpuConv2d::new(common::gpu(), &layer)
                    .unwrap()
                    .with_backward_algorithm(algorithm);
                let got = gpu.backward(&input, &grad_output).unwrap();
                assert_grads_within_bound(&what, &got, &want, &layer, &input, &grad_output);
                // GPU-resident: the same bits.
                let x = GpuTensor::upload(common::gpu(), &input).unwrap();
                let gy = GpuTensor::upload(common::gpu(), &grad_output).unwrap();
                let resident = gpu.backward_gpu(&x, &gy, GradMask::ALL).unwrap();
                for (name, r, h) in [
                    ("grad_input", &resident.grad_input, Some(&got.grad_input)),
                    ("grad_weight", &resident.grad_weight, Some(&got.grad_weight)),
                    ("grad_bias", &resident.grad_bias, got.grad_bias.as_ref()),
                ] {
                    let (Some(r), Some(h)) = (r, h) else { continue };
                    assert_eq!(r.dtype(), dtype, "{what}: {name}");
                    let r = r.download().unwrap();
                    assert!(
                        (r.data().iter().zip(h.data())).all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{what}: {name}: GPU-resident and host results differ"
                    );
                }
            }
            checked += 1;
        }
    }
}

/// Inputs of another dtype than the layer's are refused with PyTorch's
/// words (the bias named first where there is one, as PyTorch checks it
/// first), on the GPU as on the CPU reference; so is an output gradient of
/// another dtype than the input's. PyTorch's own messages for every pair are
/// in the golden data (`golden_half_mismatches_say_what_pytorch_says`).
#[test]
fn mismatched_dtypes_are_refused_as_pytorch_refuses_them() {
    let x = common::random_tensor(&[1, 2, 5, 5], 1);
    for (bias, f32_input, bf16_input) in [
        (
            true,
            "Input type (float) and bias type (c10::Half) should be the same",
            "Input type (c10::BFloat16) and bias type (c10::Half) should be the same",
        ),
        (
            false,
            "expected scalar type Float but found Half",
            "Input type (CPUBFloat16Type) and weight type (torch.HalfTensor) should be the same or input should be a MKLDNN tensor and weight is a dense tensor",
        ),
    ] {
        let config = Conv2dConfig::new(2, 3, 3).with_bias(bias);
        let layer = Conv2d::new(config, 1).unwrap().to_dtype(DType::F16);
        let gpu = GpuConv2d::new(common::gpu(), &layer).unwrap();
        assert_eq!(layer.forward_cpu(&x).unwrap_err().to_string(), f32_input);
        assert_eq!(gpu.forward(&x).unwrap_err().to_string(), f32_input);
        let resident = GpuTensor::upload(common::gpu(), &x).unwrap();
        assert_eq!(
            gpu.forward_gpu(&resident).unwrap_err().to_string(),
            f32_input
        );
        let bf = x.clone().to_dtype(DType::BF16);
        assert_eq!(gpu.forward(&bf).unwrap_err().to_string(), bf16_input);
        assert_eq!(layer.forward_cpu(&bf).unwrap_err().to_string(), bf16_input);
        let x16 = x.clone().to_dtype(DType::F16);
        let gy = Tensor::zeros([1, 3, 3, 3]).unwrap();
        let err = layer.backward_cpu(&x16, &gy).unwrap_err().to_string();
        assert_eq!(
            err,
            "Input type (c10::Half) and grad_output type (float) should be the same"
        );
        assert_eq!(gpu.backward(&x16, &gy).unwrap_err().to_string(), err);
        // The wrong channel count too: PyTorch names the bias's dtype first,
        // the channels before the weight's dtype.
        let four = Tensor::zeros([1, 4, 5, 5]).unwrap();
        let want = if bias {
            f32_input.to_string()
        } else {
            "Given groups=1, weight of size [3, 2, 3, 3], expected input[1, 4, 5, 5] to have 2 channels, but got 4 channels instead".to_string()
        };
        assert_eq!(layer.forward_cpu(&four).unwrap_err().to_string(), want);
        assert_eq!(gpu.forward(&four).unwrap_err().to_string(), want);
    }
}

/// A half layer's SGD step updates its f32 master with the half gradients;
/// the layer it gives back is the master rounded to the dtype, and the next
/// forward uses that half copy.
#[test]
fn optimisers_keep_an_f32_master_and_update_the_half_copy() {
    for dtype in HALVES {
        let config = Conv2dConfig::new(3, 4, 3).with_padding(1);
        let layer = Conv2d::new(config, 3).unwrap().to_dtype(dtype);
        let input = common::random_tensor(&[2, 3, 8, 8], 3).to_dtype(dtype);
        let grad_output = common::random_tensor(&[2, 4, 8, 8], 4).to_dtype(dtype);
        let mut gpu = GpuConv2d::new(common::gpu(), &layer).unwrap();
        let grads = gpu
            .backward_gpu(
                &GpuTensor::upload(common::gpu(), &input).unwrap(),
                &GpuTensor::upload(common::gpu(), &grad_output).unwrap(),
                GradMask::PARAMETERS,
            )
            .unwrap();
        let grad_weight = grads.grad_weight.as_ref().unwrap().download().unwrap();
        let lr = 1e-3;
        let mut sgd = Sgd::new(SgdConfig {
            lr,
            ..SgdConfig::default()
        })
        .unwrap();
        // Steps so small that the half copy may not move: the master does.
        for _ in 0..4 {
            sgd.step(&mut gpu, &grads).unwrap();
        }
        let trained = gpu.to_layer().unwrap();
        assert_eq!(trained.dtype(), dtype);
        for (k, ((&w0, &g), &w)) in (layer.weight().data().iter())
            .zip(grad_weight.data())
            .zip(trained.weight().data())
            .enumerate()
        {
            // Four f32 steps of lr·g from the half value, rounded once.
            let master = (0..4).fold(w0, |w, _| w - lr * g);
            assert_eq!(w, dtype.round(master), "{dtype} weight {k}");
        }
        // The forward uses the half copy: as the CPU reference of `trained`.
        let got = gpu.forward(&input).unwrap();
        let want = trained.forward_cpu(&input).unwrap();
        common::assert_within_bound(
            &format!("{dtype} after training"),
            &got,
            &want,
            &magnitude(&trained, &input),
            terms(&trained),
        );
    }
}

/// Half tensors split as float32 ones do: bindings capped at one to three
/// planes, so that the conversions go block by block and every pass splits;
/// forward on every algorithm that can run the case, and the gradients,
/// against the CPU reference.
#[test]
fn half_tensors_split_under_small_bindings() {
    for dtype in HALVES {
        let mut rng = StdRng::seed_from_u64(0x16_0003 + dtype as u64);
        let mut checked = 0;
        while checked < 12 {
            let Some((layer, input)) = random_case(&mut rng, checked, dtype) else {
                continue;
            };
            let g = Conv2dGeometry::new(layer.config(), input.shape()).unwrap();
            let plane = (g.height().input() * g.width().input())
                .max(g.height().output() * g.width().output());
            let device = common::gpu().adapter_info().device_type;
            let want = layer.forward_cpu(&input).unwrap();
            let m = magnitude(&layer, &input);
            for algorithm in std::iter::once(Algorithm::Auto).chain(Algorithm::KERNELS) {
                if algorithm.check(&g).is_err() || algorithm == Algorithm::Winograd {
                    continue;
                }
                let needs = algorithm
                    .min_binding_bytes(&g, device, wgpu_conv2d::Precision::Highest)
                    .unwrap();
                let cap = ((plane * rng.random_range(1..4) * 4) as u64).max(needs);
                let ctx = common::gpu().with_max_binding_bytes(cap);
                let what = format!(
                    "{dtype} split case {checked} [{algorithm}, {cap} bytes]: {:?} on {:?}",
                    layer.config(),
                    input.shape()
                );
                let got = GpuConv2d::new(&ctx, &layer)
                    .unwrap()
                    .with_algorithm(algorithm)
                    .forward(&input)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                match common::own_bound(algorithm, &layer, &input) {
                    // blocked-bf16: its own bound on top of the rounded one.
                    Some(own) => {
                        let tolerance = (m.data().iter().zip(want.data()).zip(own.data()))
                            .map(|((&m, &w), &o)| {
                                common::rounded_bound(terms(&layer), m, w, dtype) + o
                            })
                            .collect();
                        let tolerance = Tensor::new(want.shape(), tolerance).unwrap();
                        common::assert_within(&what, &got, &want, &tolerance);
                    }
                    None => common::assert_within_bound(&what, &got, &want, &m, terms(&layer)),
                }
            }
            let grad_output =
                common::random_tensor(&g.output_shape(), 700 + checked as u64).to_dtype(dtype);
            let cap = ((plane * 2 * 4) as u64).max(
                Algorithm::Direct
                    .min_binding_bytes(&g, device, wgpu_conv2d::Precision::Highest)
                    .unwrap(),
            );
            let ctx = common::gpu().with_max_binding_bytes(cap);
            let got = GpuConv2d::new(&ctx, &layer)
                .unwrap()
                .backward(&input, &grad_output)
                .unwrap();
            let want = layer.backward_cpu(&input, &grad_output).unwrap();
            assert_grads_within_bound(
                &format!("{dtype} split case {checked} backward ({cap} bytes)"),
                &got,
                &want,
                &layer,
                &input,
                &grad_output,
            );
            checked += 1;
        }
    }
}

/// The depthwise kernel reads and rounds packed half values itself (output
/// rows an even number long, calls in one chunk): on planes wide enough for
/// strips inside the data (aligned word loads) as well as at the borders,
/// every stride, dilation and padding mode, its result must be bit for bit
/// the float32 kernel's on the same (exactly widened) values, rounded once;
/// and within the dtype's bound of the CPU reference. Odd widths take the
/// widen-and-narrow path, which must agree the same way.
#[test]
fn half_depthwise_kernel_rounds_its_f32_sums_once() {
    for dtype in HALVES {
        let mut rng = StdRng::seed_from_u64(0x16_0004 + dtype as u64);
        let (mut checked, mut even) = (0, 0);
        while checked < 40 {
            let channels = rng.random_range(1..=6);
            let config = Conv2dConfig::new(
                channels,
                channels * rng.random_range(1..=2),
                (rng.random_range(1..=5), rng.random_range(1..=5)),
            )
            .with_groups(channels)
            .with_stride((rng.random_range(1..=2), rng.random_range(1..=2)))
            .with_dilation(rng.random_range(1..=2))
            .with_padding((rng.random_range(0..=2), rng.random_range(0..=2)))
            .with_bias(rng.random_bool(0.7))
            .with_padding_mode(MODES[checked % 4]);
            let shape = [
                rng.random_range(1..=2),
                channels,
                rng.random_range(16..=72),
                rng.random_range(16..=72),
            ];
            let Ok(g) = Conv2dGeometry::new(&config, &shape) else {
                continue;
            };
            let layer = Conv2d::new(config, 900 + checked as u64)
                .unwrap()
                .to_dtype(dtype);
            let input = common::random_tensor(&shape, 950 + checked as u64).to_dtype(dtype);
            let Ok(want) = layer.forward_cpu(&input) else {
                continue;
            };
            let what = format!("{dtype} depthwise case {checked}: {config:?} on {shape:?}");
            let run = |layer: &Conv2d, input: &Tensor| {
                GpuConv2d::new(common::gpu(), layer)
                    .unwrap()
                    .with_algorithm(Algorithm::Depthwise)
                    .forward(input)
                    .unwrap_or_else(|e| panic!("{what}: {e}"))
            };
            let got = run(&layer, &input);
            let wide = run(
                &layer.clone().to_dtype(DType::F32),
                &input.clone().to_dtype(DType::F32),
            );
            let rounded = wide.to_dtype(dtype);
            if let Some(k) =
                (0..got.numel()).find(|&k| got.data()[k].to_bits() != rounded.data()[k].to_bits())
            {
                panic!(
                    "{what}: output {k} is {}, the float32 kernel's sum rounded is {}",
                    got.data()[k],
                    rounded.data()[k]
                );
            }
            common::assert_within_bound(
                &what,
                &got,
                &want,
                &magnitude(&layer, &input),
                terms(&layer),
            );
            even += usize::from(g.width().output() % 2 == 0);
            checked += 1;
        }
        assert!(
            (10..30).contains(&even),
            "{dtype}: {even} of 40 even widths"
        );
    }
}

/// A bfloat16 layer on the blocked kernel reads its values as bfloat16 (the
/// kernel's bfloat16 operands, exact for them): its result is bit for bit
/// the float32 blocked kernel's on the same values, rounded once, padded or
/// read in place, whether forced or picked by `Auto`.
#[test]
fn bfloat16_layers_on_the_blocked_kernel_match_float32_on_their_values_bit_for_bit() {
    let cases = [
        (
            Conv2dConfig::new(24, 40, 3).with_padding(1),
            vec![2, 24, 21, 18],
        ),
        (
            Conv2dConfig::new(12, 20, (3, 5))
                .with_padding(2)
                .with_stride(2)
                .with_padding_mode(PaddingMode::Circular),
            vec![1, 12, 17, 23],
        ),
        (Conv2dConfig::new(32, 64, 1), vec![2, 32, 8, 8]),
    ];
    for (k, (config, shape)) in cases.into_iter().enumerate() {
        let layer = Conv2d::new(config, 90 + k as u64)
            .unwrap()
            .to_dtype(DType::BF16);
        let input = common::random_tensor(&shape, 95 + k as u64).to_dtype(DType::BF16);
        // The same values in float32.
        let wide = layer.clone().to_dtype(DType::F32);
        let wide_input = input.clone().to_dtype(DType::F32);
        for algorithm in [Algorithm::Blocked, Algorithm::Auto] {
            let what = format!("case {k} [{algorithm}]");
            let got = GpuConv2d::new(common::gpu(), &layer)
                .unwrap()
                .with_algorithm(algorithm)
                .forward(&input)
                .unwrap();
            let f32_layer = GpuConv2d::new(common::gpu(), &wide)
                .unwrap()
                .with_algorithm(algorithm);
            if f32_layer.resolved_algorithm(&shape).unwrap() != Algorithm::Blocked {
                continue;
            }
            let want = f32_layer
                .forward(&wide_input)
                .unwrap()
                .to_dtype(DType::BF16);
            assert_eq!(got.dtype(), DType::BF16, "{what}");
            let differ =
                (got.data().iter().zip(want.data())).position(|(a, b)| a.to_bits() != b.to_bits());
            assert_eq!(differ, None, "{what}: first differing output");
        }
    }
}

/// The same for the input gradient, whose phases run on the forward
/// kernels: a bfloat16 layer's blocked backward (its phases on bfloat16
/// operands) gives bit for bit the float32 layer's gradients on the same
/// values, rounded once (zeros padding: no rounded fold), at stride 1 and 2.
#[test]
fn bfloat16_input_gradients_on_the_blocked_phases_match_float32_bit_for_bit() {
    for (k, stride) in [1usize, 2].into_iter().enumerate() {
        let config = Conv2dConfig::new(16, 24, 3)
            .with_padding(1)
            .with_stride(stride);
        let layer = Conv2d::new(config, 120 + k as u64)
            .unwrap()
            .to_dtype(DType::BF16);
        let shape = [2, 16, 19, 22];
        let input = common::random_tensor(&shape, 125 + k as u64).to_dtype(DType::BF16);
        let g = Conv2dGeometry::new(&config, &shape).unwrap();
        let grad_output =
            common::random_tensor(&g.output_shape(), 130 + k as u64).to_dtype(DType::BF16);
        let run = |layer: &Conv2d, input: &Tensor, grad_output: &Tensor| {
            GpuConv2d::new(common::gpu(), layer)
                .unwrap()
                .with_backward_algorithm(BackwardAlgorithm::Blocked)
                .backward(input, grad_output)
                .unwrap()
        };
        let got = run(&layer, &input, &grad_output);
        let wide = run(
            &layer.clone().to_dtype(DType::F32),
            &input.clone().to_dtype(DType::F32),
            &grad_output.clone().to_dtype(DType::F32),
        );
        let want = wide.grad_input.to_dtype(DType::BF16);
        assert_eq!(got.grad_input.dtype(), DType::BF16);
        let differ = (got.grad_input.data().iter().zip(want.data()))
            .position(|(a, b)| a.to_bits() != b.to_bits());
        assert_eq!(
            differ, None,
            "stride {stride}: first differing input gradient"
        );
    }
}
