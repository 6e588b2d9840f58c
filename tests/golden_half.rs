//! PyTorch's float16 and bfloat16 results (tests/data/golden_half.json, made
//! by tools/golden_half.py with torch 2.15.0 on the CPU): the forward on the
//! CPU reference and on every GPU algorithm that can run it, the autograd
//! gradients on both, and PyTorch's words for every dtype mismatch.
//!
//! PyTorch accumulates in at least `f32` and rounds each result once, as the
//! GPU does: two such results are within twice the `f32` sum's error plus one
//! unit in the dtype's last place (`rounded_bound` on twice the magnitude).

mod common;

use common::{
    assert_grads_within_scaled_bound, assert_within, floats, layer_from_case, load, magnitude,
    rounded_bound, shape, terms,
};
use serde_json::Value;
use wgpu_conv2d::{Algorithm, Conv2d, Conv2dGeometry, DType, GpuConv2d, Tensor};

fn dtype(case: &Value) -> DType {
    case["dtype"].as_str().unwrap().parse().unwrap()
}

/// The case's layer and input in its dtype (the stored values are the
/// dtype's, so the conversion is exact).
fn layer_and_input(case: &Value) -> (Conv2d, Tensor) {
    let d = dtype(case);
    let layer = layer_from_case(case).unwrap().to_dtype(d);
    let input = Tensor::new(shape(&case["input_shape"]), floats(&case["input"]))
        .unwrap()
        .to_dtype(d);
    assert!(
        (layer.weight().data().iter())
            .chain(input.data())
            .all(|&v| d.round(v).to_bits() == v.to_bits()),
        "{}: stored values are the dtype's",
        case["name"]
    );
    (layer, input)
}

#[test]
fn golden_half_forward_matches_pytorch_on_every_algorithm() {
    let data = load("golden_half.json");
    let cases = data["forward"].as_array().unwrap();
    assert!(cases.len() >= 180);
    let mut runs = 0;
    for case in cases {
        let name = format!("{} ({})", case["name"].as_str().unwrap(), dtype(case));
        let (layer, input) = layer_and_input(case);
        let want = Tensor::new(shape(&case["output_shape"]), floats(&case["output"]))
            .unwrap()
            .to_dtype(dtype(case));
        let m = magnitude(&layer, &input);
        let tolerance = |extra: Option<&Tensor>| {
            let mut t: Vec<f32> = (m.data().iter().zip(want.data()))
                .map(|(&m, &w)| rounded_bound(terms(&layer), 2.0 * m, w, dtype(case)))
                .collect();
            if let Some(extra) = extra {
                for (t, e) in t.iter_mut().zip(extra.data()) {
                    *t += e;
                }
            }
            Tensor::new(want.shape(), t).unwrap()
        };
        let cpu = layer.forward_cpu(&input).unwrap();
        assert_within(&format!("{name} (cpu)"), &cpu, &want, &tolerance(None));
        let g = Conv2dGeometry::new(layer.config(), input.shape()).unwrap();
        for algorithm in std::iter::once(Algorithm::Auto).chain(Algorithm::KERNELS) {
            if algorithm.check(&g).is_err() {
                continue;
            }
            let got = GpuConv2d::new(common::gpu(), &layer)
                .unwrap()
                .with_algorithm(algorithm)
                .forward(&input)
                .unwrap_or_else(|e| panic!("{name} [{algorithm}]: {e}"));
            let own = common::own_bound(algorithm, &layer, &input);
            assert_within(
                &format!("{name} [{algorithm}]"),
                &got,
                &want,
                &tolerance(own.as_ref()),
            );
            runs += 1;
        }
    }
    eprintln!("{} cases, {runs} GPU runs", cases.len());
}

#[test]
fn golden_half_gradients_match_pytorch_autograd() {
    let data = load("golden_half.json");
    let cases = data["backward"].as_array().unwrap();
    assert!(cases.len() >= 120);
    for case in cases {
        let name = format!("{} ({})", case["name"].as_str().unwrap(), dtype(case));
        let d = dtype(case);
        let (layer, input) = layer_and_input(case);
        let tensor = |shape: &[usize], key: &str| {
            Tensor::new(shape, floats(&case[key])).unwrap().to_dtype(d)
        };
        let grad_output = tensor(&common::shape(&case["grad_output_shape"]), "grad_output");
        let want = wgpu_conv2d::Conv2dGrads {
            grad_input: tensor(input.shape(), "grad_input"),
            grad_weight: tensor(layer.weight().shape(), "grad_weight"),
            grad_bias: layer.bias().map(|b| tensor(b.shape(), "grad_bias")),
        };
        let cpu = layer.backward_cpu(&input, &grad_output).unwrap();
        let gpu = GpuConv2d::new(common::gpu(), &layer)
            .unwrap()
            .backward(&input, &grad_output)
            .unwrap_or_else(|e| panic!("{name} (gpu): {e}"));
        for (side, got) in [("cpu", &cpu), ("gpu", &gpu)] {
            assert_grads_within_scaled_bound(
                &format!("{name} ({side})"),
                got,
                &want,
                &layer,
                &input,
                &grad_output,
                2.0,
            );
        }
    }
}

/// Every mismatch PyTorch refused, refused with its words: a bias of another
/// dtype than the weight when the layer is made, else the input's dtype
/// against the layer's, on the CPU reference and the GPU.
#[test]
fn golden_half_mismatches_say_what_pytorch_says() {
    let data = load("golden_half.json");
    let cases = data["mismatches"].as_array().unwrap();
    assert_eq!(cases.len(), 5);
    let config = wgpu_conv2d::Conv2dConfig::new(2, 3, 3);
    for case in cases {
        let d = |key: &str| case[key].as_str().unwrap().parse::<DType>().unwrap();
        let want = case["message"].as_str().unwrap();
        let weight = Tensor::zeros([3, 2, 3, 3]).unwrap().to_dtype(d("weight"));
        let bias = Tensor::zeros([3]).unwrap().to_dtype(d("bias"));
        let input = Tensor::zeros([1, 2, 5, 5]).unwrap().to_dtype(d("input"));
        let got = match Conv2d::from_weights(config, weight, Some(bias)) {
            Err(e) => e.to_string(),
            Ok(layer) => {
                let gpu = GpuConv2d::new(common::gpu(), &layer)
                    .unwrap()
                    .forward(&input)
                    .unwrap_err()
                    .to_string();
                let cpu = layer.forward_cpu(&input).unwrap_err().to_string();
                assert_eq!(gpu, cpu, "{}", case["name"]);
                cpu
            }
        };
        assert_eq!(got, want, "{}", case["name"]);
    }
}

/// The padding's backward alone, bit for bit: a depthwise 1×1 convolution
/// with weight 1 makes the gradient of the padded input `grad_output`
/// itself, so the input gradient is PyTorch's fold of it in the dtype (each
/// copy added with its own rounding, in PyTorch's order: row-major for
/// reflect and replicate, autograd undoing F.pad's copies for circular),
/// over values spread across many binades. The CPU reference and both GPU
/// backward algorithms must give exactly PyTorch's bits.
#[test]
fn golden_half_folds_match_pytorch_bit_for_bit() {
    let data = load("golden_half.json");
    let cases = data["folds"].as_array().unwrap();
    assert!(cases.len() >= 30);
    for case in cases {
        let name = format!("{} ({})", case["name"].as_str().unwrap(), dtype(case));
        let d = dtype(case);
        let config = common::config(&case["params"]);
        let weight = Tensor::new(config.weight_shape(), vec![1.0; config.out_channels])
            .unwrap()
            .to_dtype(d);
        let layer = Conv2d::from_weights(config, weight, None).unwrap();
        let input = Tensor::zeros(shape(&case["input_shape"]))
            .unwrap()
            .to_dtype(d);
        let grad_output = Tensor::new(
            shape(&case["grad_output_shape"]),
            floats(&case["grad_output"]),
        )
        .unwrap()
        .to_dtype(d);
        let want = floats(&case["grad_input"]);
        let same = |what: &str, got: &Tensor| {
            let differ: Vec<usize> = (got.data().iter().zip(&want))
                .enumerate()
                .filter(|(_, (a, b))| a.to_bits() != b.to_bits())
                .map(|(k, _)| k)
                .collect();
            assert!(
                differ.is_empty(),
                "{name} ({what}): {} of {} elements differ from PyTorch's, first {:?}: got {}, want {}",
                differ.len(),
                want.len(),
                differ[0],
                got.data()[differ[0]],
                want[differ[0]]
            );
        };
        same(
            "cpu",
            &layer.backward_cpu(&input, &grad_output).unwrap().grad_input,
        );
        for algorithm in [
            wgpu_conv2d::BackwardAlgorithm::Auto,
            wgpu_conv2d::BackwardAlgorithm::Direct,
        ] {
            let got = GpuConv2d::new(common::gpu(), &layer)
                .unwrap()
                .with_backward_algorithm(algorithm)
                .backward(&input, &grad_output)
                .unwrap();
            same(&format!("gpu, {algorithm}"), &got.grad_input);
        }
    }
}
