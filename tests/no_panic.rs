//! No input makes it panic: random, mostly invalid, parameters, shapes and values
//! (zero sizes, huge strides, kernels larger than the input, mismatched shapes,
//! NaN and ±Inf) at the API and at the CLI. Each call gives a correct result or
//! a clear error, the same on the CPU reference and the GPU.

mod common;

use std::process::Command;

use common::{assert_within_bound, magnitude, terms};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use wgpu_conv2d::npy::{read_npy, write_npy};
use wgpu_conv2d::{
    Conv2d, Conv2dConfig, Conv2dError, DType, GpuConv2d, Padding, PaddingMode, Size2, Tensor,
};

fn config() -> Config {
    // A fixed seed keeps CI deterministic; change it locally to explore further.
    Config {
        cases: 300,
        rng_seed: RngSeed::Fixed(0xc0_2d),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Mostly ordinary sizes, sometimes 0 or absurd.
fn size2(max: usize) -> impl Strategy<Value = Size2> {
    prop_oneof![
        40 => (1..=max, 1..=max).prop_map(|(h, w)| Size2::new(h, w)),
        1 => (0..=max, 0..=max).prop_map(|(h, w)| Size2::new(h, w)),
        1 => Just(Size2::new(1 << 33, 1)),
    ]
}

fn padding() -> impl Strategy<Value = Padding> {
    prop_oneof![
        3 => Just(Padding::Same),
        2 => Just(Padding::Valid),
        12 => (0i64..4, 0i64..4).prop_map(|(h, w)| Padding::Explicit { h, w }),
        2 => (-2i64..1, -2i64..1).prop_map(|(h, w)| Padding::Explicit { h, w }),
        1 => Just(Padding::uniform(1 << 50)),
    ]
}

/// Mostly ordinary numbers, sometimes NaN or an infinity.
fn value() -> impl Strategy<Value = f32> {
    prop_oneof![
        30 => -2.0f32..2.0,
        1 => Just(f32::NAN),
        1 => Just(f32::INFINITY),
        1 => Just(f32::NEG_INFINITY),
    ]
}

/// A configuration and an input that mostly fit each other, each part sometimes hostile.
fn case() -> impl Strategy<Value = (Conv2dConfig, Tensor)> {
    let groups = prop_oneof![30 => 1usize..4, 1 => Just(0usize)];
    let per_in = prop_oneof![15 => 1usize..3, 1 => Just(0usize)];
    (groups, per_in, 1usize..3, size2(4), size2(3), padding(), size2(3), any::<bool>(), 0usize..4)
        .prop_map(|(groups, per_in, per_out, kernel, stride, padding, dilation, bias, mode)| Conv2dConfig {
            in_channels: groups * per_in,
            out_channels: groups * per_out,
            kernel_size: kernel,
            stride,
            padding: if padding == Padding::Same && stride != Size2::square(1) { Padding::Valid } else { padding },
            dilation,
            groups,
            bias,
            padding_mode: PaddingMode::ALL[mode],
        })
        .prop_flat_map(|config| {
            let channels = prop_oneof![20 => Just(config.in_channels), 1 => 0usize..5];
            // Mostly room for the dilated kernel, sometimes not.
            let dim = |k: usize, d: usize| {
                let span = d.saturating_mul(k.saturating_sub(1)).saturating_add(1).min(12);
                prop_oneof![9 => span..span + 5, 1 => 0usize..3]
            };
            let h = dim(config.kernel_size.h, config.dilation.h);
            let w = dim(config.kernel_size.w, config.dilation.w);
            let rank = prop_oneof![12 => Just(4usize), 6 => Just(3usize), 1 => Just(5usize), 1 => Just(2usize)];
            (Just(config), 0usize..3, channels, h, w, rank)
        })
        .prop_flat_map(|(config, n, c, h, w, rank)| {
            let shape = match rank {
                2 => vec![h, w],
                3 => vec![c, h, w],
                4 => vec![n, c, h, w],
                _ => vec![1, n, c, h, w],
            };
            let len: usize = shape.iter().product();
            (Just(config), Just(shape), prop::collection::vec(value(), len))
        })
        .prop_map(|(config, shape, data)| (config, Tensor::new(shape, data).unwrap()))
}

fn weights(config: &Conv2dConfig, values: &[f32]) -> Option<Conv2d> {
    let layer = Conv2d::new(*config, 9).ok()?;
    // Replace the initial weights with arbitrary values, NaN and Inf included.
    let mut weight = layer.weight().clone();
    for (w, v) in weight.data_mut().iter_mut().zip(values.iter().cycle()) {
        *w = *v;
    }
    Conv2d::from_weights(*config, weight, layer.bias().cloned()).ok()
}

static VALID: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_api_returns_a_result_or_an_error((config, x) in case(), values in prop::collection::vec(value(), 1..16)) {
        let Some(layer) = weights(&config, &values) else {
            prop_assert!(Conv2d::new(config, 9).is_err());
            return Ok(());
        };
        let cpu = layer.forward_cpu(&x);
        let gpu = GpuConv2d::new(common::gpu(), &layer).and_then(|g| g.forward(&x));
        match (cpu, gpu) {
            (Ok(want), Ok(got)) => {
                VALID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                assert_within_bound("random", &got, &want, &magnitude(&layer, &x), terms(&layer));
            }
            (Err(c), Err(g)) => prop_assert_eq!(c, g),
            (c, g) => prop_assert!(false, "paths disagree: cpu {:?}, gpu {:?}", c.map(|t| t.shape().to_vec()), g.map(|t| t.shape().to_vec())),
        }
    }
}

fn dtype() -> impl Strategy<Value = DType> {
    prop_oneof![Just(DType::F32), Just(DType::F16), Just(DType::BF16)]
}

proptest! {
    #![proptest_config(Config { cases: 120, ..config() })]

    /// The same in float16 and bfloat16, with the input sometimes of another
    /// dtype than the layer's: a result on both paths (within the bound of
    /// an `f32` sum rounded once, and the gradients too), or the same error.
    #[test]
    fn half_dtypes_return_a_result_or_an_error(
        (config, x) in case(),
        values in prop::collection::vec(value(), 1..16),
        layer_dtype in dtype(),
        other in prop_oneof![6 => Just(None), 1 => dtype().prop_map(Some)],
    ) {
        let Some(layer) = weights(&config, &values) else {
            return Ok(());
        };
        let layer = layer.to_dtype(layer_dtype);
        let x = x.to_dtype(other.unwrap_or(layer_dtype));
        let gpu_layer = GpuConv2d::new(common::gpu(), &layer);
        let cpu = layer.forward_cpu(&x);
        let gpu = gpu_layer.as_ref().map_err(Clone::clone).and_then(|g| g.forward(&x));
        match (cpu, gpu) {
            (Ok(want), Ok(got)) => {
                prop_assert_eq!(got.dtype(), layer_dtype);
                assert_within_bound("random half", &got, &want, &magnitude(&layer, &x), terms(&layer));
                let grad_output = Tensor::new(want.shape(), vec![0.5; want.numel()])
                    .unwrap()
                    .to_dtype(x.dtype());
                let cpu = layer.backward_cpu(&x, &grad_output);
                let gpu = gpu_layer.unwrap().backward(&x, &grad_output);
                match (cpu, gpu) {
                    (Ok(want), Ok(got)) => common::assert_grads_within_bound("random half", &got, &want, &layer, &x, &grad_output),
                    (Err(c), Err(g)) => prop_assert_eq!(c, g),
                    (c, g) => prop_assert!(false, "backward paths disagree: cpu {:?}, gpu {:?}", c.is_ok(), g.is_ok()),
                }
            }
            (Err(c), Err(g)) => prop_assert_eq!(c, g),
            (c, g) => prop_assert!(false, "paths disagree: cpu {:?}, gpu {:?}", c.map(|t| t.shape().to_vec()), g.map(|t| t.shape().to_vec())),
        }
    }
}

#[test]
fn the_random_api_cases_are_mostly_valid() {
    // Guards the generator: a property test that only ever hits errors proves little.
    let before = VALID.load(std::sync::atomic::Ordering::Relaxed);
    the_api_returns_a_result_or_an_error();
    let valid = VALID.load(std::sync::atomic::Ordering::Relaxed) - before;
    eprintln!("{valid} of 300 random cases ran to a result");
    assert!(
        valid >= 100,
        "only {valid} of 300 random cases ran to a result"
    );
}

proptest! {
    #![proptest_config(Config { cases: 24, ..config() })]

    #[test]
    fn the_cli_exits_cleanly(
        (config, x) in case(),
        bias_len in prop::option::of(prop_oneof![5 => Just(usize::MAX), 1 => 0usize..5]),
        stride in prop_oneof![8 => Just("1".to_string()), 2 => "[1-3](,[1-3])?", 1 => "0|x|-1|1,2,3"],
        padding in prop_oneof![8 => "[0-2](,[0-2])?|same|valid", 1 => "-1|foo|1,"],
        mode in prop_oneof![8 => "zeros|reflect|replicate|circular", 1 => Just("mirror".to_string())],
        backend in "gpu|cpu",
    ) {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("no_panic_cli");
        std::fs::create_dir_all(&dir).unwrap();
        let (xp, wp, bp, yp) = (dir.join("x.npy"), dir.join("w.npy"), dir.join("b.npy"), dir.join("y.npy"));
        let _ = std::fs::remove_file(&yp);
        write_npy(&xp, &x).unwrap();
        let wshape = [config.out_channels, config.in_channels / config.groups.max(1), config.kernel_size.h.min(5), config.kernel_size.w.min(5)];
        let n: usize = wshape.iter().product();
        write_npy(&wp, &Tensor::new(wshape, (0..n).map(|i| (i % 5) as f32 - 2.0).collect()).unwrap()).unwrap();
        let groups = config.groups.to_string();
        let mut args = vec![
            "forward".to_string(), "--input".into(), xp.display().to_string(), "--weight".into(), wp.display().to_string(),
            "--stride".into(), stride, "--padding".into(), padding, "--groups".into(), groups,
            "--padding-mode".into(), mode, "--backend".into(), backend, "--output".into(), yp.display().to_string(),
        ];
        if let Some(len) = bias_len {
            let len = if len == usize::MAX { config.out_channels } else { len };
            write_npy(&bp, &Tensor::new([len], vec![0.5; len]).unwrap()).unwrap();
            args.extend(["--bias".into(), bp.display().to_string()]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_wgpu-conv2d")).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => prop_assert!(read_npy(&yp).is_ok(), "success must leave a readable output"),
            Some(1) | Some(2) => {
                prop_assert_eq!(stderr.lines().count(), 1, "one stderr line: {:?}", stderr);
                prop_assert!(!yp.exists(), "no output after an error");
            }
            other => prop_assert!(false, "exit {:?} (a panic or a signal): {}", other, stderr),
        }
    }
}

proptest! {
    #![proptest_config(Config { cases: 40, ..config() })]

    /// Sizes that pass every check but no machine could hold: the CPU
    /// reference and the GPU path refuse them with an error, never an abort.
    #[test]
    fn absurd_paddings_are_errors_on_every_backend(
        pad in 1_000_000i64..(1 << 40),
        (c, h, w, k) in (1usize..4, 1usize..9, 1usize..9, 1usize..3),
        mode in 0usize..2,
    ) {
        // Zeros or replicate: the modes that accept any padding.
        let mode = [PaddingMode::Zeros, PaddingMode::Replicate][mode];
        let layer = Conv2d::new(Conv2dConfig::new(c, 2, k).with_padding(Padding::uniform(pad)).with_padding_mode(mode), 1).unwrap();
        let x = Tensor::zeros([1, c, h, w]).unwrap();
        let cpu = layer.forward_cpu(&x).unwrap_err();
        prop_assert!(
            matches!(cpu, Conv2dError::HostMemory { .. } | Conv2dError::ValueTooLarge { .. }),
            "cpu: {}", cpu
        );
        let gpu = GpuConv2d::new(common::gpu(), &layer).and_then(|g| g.forward(&x)).unwrap_err();
        prop_assert!(matches!(gpu, Conv2dError::TensorTooLarge { .. }), "gpu: {}", gpu);
    }

    /// The benchmark refuses tensors the device cannot hold before making them on the host.
    #[test]
    fn absurd_benchmark_shapes_are_errors(
        dims in prop::collection::vec(prop_oneof![3 => 1usize..4, 1 => 100_000usize..(1 << 40)], 4),
        out_channels in prop_oneof![1 => 1usize..4, 1 => (1usize << 30)..usize::MAX],
    ) {
        prop_assume!(dims.iter().any(|&d| d >= 100_000) || out_channels >= 1 << 30);
        let config = Conv2dConfig::new(dims[1], out_channels, 1);
        let options = wgpu_conv2d::bench::BenchOptions { min_runs: 1, max_runs: 1, min_time: std::time::Duration::ZERO, ..Default::default() };
        let result = wgpu_conv2d::bench::measure(common::gpu(), config, &dims, wgpu_conv2d::Algorithm::Direct, &options);
        prop_assert!(result.is_err(), "{:?} with {} output channels ran", dims, out_channels);
    }
}
