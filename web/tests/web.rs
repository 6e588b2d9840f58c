//! The package's JavaScript API, driven from Rust by wasm-bindgen-test, on
//! the WebGPU the runner finds: headless Chromium (Dawn, Tint, SwiftShader)
//! or Deno (wgpu over the machine's Vulkan). `tools/web.sh test` runs both.
//! Every GPU result is compared with PyTorch's golden data or the crate's CPU
//! reference under the same fp32 bounds as the native tests.

#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use serde_json::Value;
use wasm_bindgen::JsValue;
use wasm_bindgen::convert::TryFromJsValue;
use wasm_bindgen_test::{console_log, wasm_bindgen_test};
use wgpu_conv2d::{Algorithm, Conv2d as Layer, Conv2dGeometry, Tensor};
use wgpu_conv2d_web::{Adam, Gradients, Sgd, Tensor as GpuTensor, adapter_info};

const SEEDS: &str = include_str!("../../tests/data/seed_examples.json");
const GOLDEN_FORWARD: &str = include_str!("../../tests/data/golden_forward.json");
const GOLDEN_BACKWARD: &str = include_str!("../../tests/data/golden_backward.json");

/// Runs `case` (params, input, weight, bias) through the JavaScript API
/// with every algorithm that can run it and checks each result against
/// `expected` (PyTorch's output) under the fp32 bound; returns how many ran.
async fn check_case(name: &str, case: &Value, expected: &Tensor) -> usize {
    let layer = layer_from_case(case).unwrap();
    let input = Tensor::new(shape(&case["input_shape"]), floats(&case["input"])).unwrap();
    let geometry = Conv2dGeometry::new(layer.config(), input.shape()).unwrap();
    let mag = magnitude(&layer, &input);
    let mut ran = 0;
    for algorithm in std::iter::once(Algorithm::Auto).chain(Algorithm::KERNELS) {
        if algorithm.check(&geometry).is_err() {
            continue;
        }
        let what = format!("{name} [{algorithm}]");
        let conv = create_layer(options(&case["params"], algorithm.name()), &layer)
            .await
            .unwrap_or_else(|e| panic!("{what}: create: {e}"));
        let got = settle(conv.forward(array(input.data()), js_shape(input.shape())))
            .await
            .unwrap_or_else(|e| panic!("{what}: forward: {e}"));
        let got = tensor(&got);
        let mut tolerance: Vec<f32> = mag
            .data()
            .iter()
            .map(|&m| bound(terms(&layer), m))
            .collect();
        if let Some(own) = own_bound(algorithm, &layer, &input) {
            for (t, w) in tolerance.iter_mut().zip(own.data()) {
                *t += w;
            }
        }
        let tolerance = Tensor::new(expected.shape(), tolerance).unwrap();
        assert_within(&what, &got, expected, &tolerance);
        ran += 1;
    }
    ran
}

#[wasm_bindgen_test]
async fn adapter_info_names_the_adapter() {
    let info = settle(js_sys::Promise::resolve(&JsValue::NULL))
        .await
        .unwrap();
    assert!(info.is_null());
    let info = adapter_info().await.unwrap();
    let name = field(&info, "name").as_string().unwrap();
    let backend = field(&info, "backend").as_string().unwrap();
    console_log!(
        "adapter: {name} ({backend}), features {:?}",
        field(&info, "features")
    );
    assert_eq!(backend, "BrowserWebGpu");
    assert!(
        field(&field(&info, "limits"), "maxComputeInvocationsPerWorkgroup")
            .as_f64()
            .unwrap()
            >= 256.0
    );
}

#[wasm_bindgen_test]
async fn seed_examples_match_pytorch_on_every_algorithm() {
    let seeds: Value = serde_json::from_str(SEEDS).unwrap();
    let mut runs = 0;
    for case in seeds["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let expected = Tensor::new(shape(&case["output_shape"]), floats(&case["output"])).unwrap();
        runs += check_case(name, case, &expected).await;
    }
    console_log!("seed examples: {runs} runs");
    assert!(runs >= 19 * 3);
}

#[wasm_bindgen_test]
async fn golden_forward_cases_match_pytorch_on_every_algorithm() {
    let data: Value = serde_json::from_str(GOLDEN_FORWARD).unwrap();
    let (mut values, mut runs, mut errors) = (0, 0, 0);
    let mut mismatches = Vec::new();
    for case in data["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        if case["error"].is_string() {
            errors += 1;
            if let Some(mismatch) = check_error_case(name, case).await {
                mismatches.push(mismatch);
            }
            continue;
        }
        let expected = Tensor::new(shape(&case["output_shape"]), floats(&case["output"])).unwrap();
        runs += check_case(name, case, &expected).await;
        values += 1;
    }
    assert!(
        mismatches.is_empty(),
        "messages other than PyTorch's:\n{}",
        mismatches.join("\n")
    );
    console_log!("golden forward: {values} value cases ({runs} runs), {errors} error cases");
    assert!(values >= 300 && errors >= 40);
}

/// A case PyTorch refused: `create` or `forward` must reject with a message
/// that starts with PyTorch's; a mismatch is returned.
async fn check_error_case(name: &str, case: &Value) -> Option<String> {
    let weight = if case["weight_shape"].is_null() {
        JsValue::UNDEFINED
    } else {
        array(&floats(&case["weight"])).into()
    };
    let bias = if case["bias"].is_null() || case["weight_shape"].is_null() {
        JsValue::UNDEFINED
    } else {
        array(&floats(&case["bias"])).into()
    };
    let mut options = options(&case["params"], "auto");
    if case["weight_shape"].is_null() {
        js_sys::Reflect::set(&options, &"seed".into(), &JsValue::from(0.0)).unwrap();
    }
    let created = settle(wgpu_conv2d_web::Conv2d::create(
        std::mem::take(&mut options),
        weight,
        bias,
    ))
    .await;
    let message = match created {
        Err(message) => message,
        Ok(conv) => {
            let conv = wgpu_conv2d_web::Conv2d::try_from_js_value(conv).unwrap();
            let input = floats(&case["input"]);
            settle(conv.forward(array(&input), js_shape(&shape(&case["input_shape"]))))
                .await
                .err()
                .unwrap_or_else(|| panic!("{name}: PyTorch raised {}, we did not", case["message"]))
        }
    };
    let want = case["message"].as_str().unwrap();
    // PyTorch's message word for word, then the values the crate adds.
    (!message.starts_with(want)).then(|| format!("{name}: got {message:?}, PyTorch {want:?}"))
}

#[wasm_bindgen_test]
async fn golden_gradients_match_pytorch_autograd() {
    let data: Value = serde_json::from_str(GOLDEN_BACKWARD).unwrap();
    let cases = data["cases"].as_array().unwrap();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let layer = layer_from_case(case).unwrap();
        let input = Tensor::new(shape(&case["input_shape"]), floats(&case["input"])).unwrap();
        let grad_output = floats(&case["grad_output"]);
        // Auto, and the weight gradient's tiled GEMM (which runs every case).
        for backward in ["auto", "implicit-gemm"] {
            let options = options(&case["params"], "auto");
            js_sys::Reflect::set(
                &options,
                &JsValue::from_str("backwardAlgorithm"),
                &JsValue::from_str(backward),
            )
            .unwrap();
            let conv = create_layer(options, &layer)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let got = settle(conv.backward(
                array(input.data()),
                js_shape(input.shape()),
                array(&grad_output),
            ))
            .await
            .unwrap_or_else(|e| panic!("{name} [{backward}]: backward: {e}"));
            let grad_output =
                Tensor::new(shape(&case["grad_output_shape"]), grad_output.clone()).unwrap();
            check_grads(
                &format!("{name} [{backward}]"),
                &got,
                case,
                &layer,
                &input,
                &grad_output,
            );
        }
    }
    console_log!("golden backward: {} cases", cases.len());
    assert!(cases.len() >= 160);
}

/// The gradients `got` (`{ gradInput, gradWeight, gradBias }`) against
/// PyTorch's in `case`, each under its fp32 bound (the native tests' check).
fn check_grads(
    name: &str,
    got: &JsValue,
    case: &Value,
    layer: &Layer,
    input: &Tensor,
    grad_output: &Tensor,
) {
    let got = wgpu_conv2d::Conv2dGrads {
        grad_input: tensor(&field(got, "gradInput")),
        grad_weight: tensor(&field(got, "gradWeight")),
        grad_bias: Some(field(got, "gradBias"))
            .filter(|b| !b.is_null())
            .map(|b| tensor(&b)),
    };
    let want = |key: &str, shape: &[usize]| Tensor::new(shape, floats(&case[key])).unwrap();
    let want = wgpu_conv2d::Conv2dGrads {
        grad_input: want("grad_input", input.shape()),
        grad_weight: want("grad_weight", layer.weight().shape()),
        grad_bias: layer.bias().map(|b| want("grad_bias", b.shape())),
    };
    assert_grads_within_bound(name, &got, &want, layer, input, grad_output);
}

#[wasm_bindgen_test]
async fn invalid_arguments_reject_with_pytorchs_messages() {
    let base = |extra: &[(&str, JsValue)]| {
        let mut pairs = vec![
            ("inChannels", JsValue::from(4.0)),
            ("outChannels", JsValue::from(8.0)),
            ("kernelSize", JsValue::from(3.0)),
        ];
        pairs.extend(extra.iter().cloned());
        object(&pairs)
    };
    let reject = |options: JsValue| async move {
        settle(wgpu_conv2d_web::Conv2d::create(
            options,
            JsValue::UNDEFINED,
            JsValue::UNDEFINED,
        ))
        .await
        .expect_err("create must reject")
    };
    for (options, message) in [
        (
            base(&[("paddingMode", "mirror".into())]),
            "padding_mode must be one of {'zeros', 'reflect', 'replicate', 'circular'}, but got padding_mode='mirror'",
        ),
        (
            base(&[("groups", JsValue::from(3.0))]),
            "in_channels must be divisible by groups",
        ),
        (
            base(&[("padding", "same".into()), ("stride", JsValue::from(2.0))]),
            "padding='same' is not supported for strided convolutions",
        ),
        (
            base(&[("padding", "sideways".into())]),
            "Invalid padding string 'sideways'",
        ),
        (
            base(&[("stride", JsValue::from(0.0))]),
            "non-positive stride is not supported",
        ),
        (
            base(&[("algorithm", "fft".into())]),
            "unknown algorithm 'fft' (expected auto, direct, implicit-gemm, gemm-1x1, depthwise, blocked, winograd or blocked-bf16)",
        ),
        (
            base(&[("kernelSize", JsValue::from(-1.0))]),
            "Conv2d option 'kernelSize' must be a non-negative integer, got -1",
        ),
        (
            base(&[("kernel", JsValue::from(3.0))]),
            "unknown Conv2d option 'kernel' (expected one of inChannels, outChannels, kernelSize, stride, padding, dilation, groups, paddingMode, bias, algorithm, backwardAlgorithm, precision, dtype, seed)",
        ),
        (
            base(&[("precision", "low".into())]),
            "unknown precision 'low' (expected highest, high or medium)",
        ),
        (
            base(&[("dtype", "float8".into())]),
            "unknown dtype 'float8' (expected f32, f16 or bf16)",
        ),
    ] {
        let got = reject(options).await;
        assert!(got.starts_with(message), "got {got:?}, want {message:?}");
    }
    // A weight of the wrong size; an input of the wrong channel count.
    let options = base(&[]);
    let got = settle(wgpu_conv2d_web::Conv2d::create(
        options,
        array(&[0.0; 5]).into(),
        JsValue::UNDEFINED,
    ))
    .await
    .unwrap_err();
    assert!(got.contains("5"), "{got}");
    let conv = create(base(&[("bias", false.into())]), &[0.5; 8 * 4 * 9], None)
        .await
        .unwrap();
    let got = settle(conv.forward(array(&[0.0; 3 * 25]), js_shape(&[1, 3, 5, 5])))
        .await
        .unwrap_err();
    assert_eq!(
        got,
        "Given groups=1, weight of size [8, 4, 3, 3], expected input[1, 3, 5, 5] to have 4 channels, but got 3 channels instead"
    );
    let got = settle(conv.forward(array(&[0.0; 10]), js_shape(&[1, 4, 5, 5])))
        .await
        .unwrap_err();
    assert!(got.contains("100") && got.contains("10"), "{got}");
    // A forced algorithm that cannot run names what it needs.
    let conv = create(
        base(&[
            ("algorithm", "winograd".into()),
            ("stride", JsValue::from(2.0)),
        ]),
        &[0.5; 8 * 4 * 9],
        Some(&[0.0; 8]),
    )
    .await
    .unwrap();
    let got = settle(conv.forward(array(&[0.0; 4 * 100]), js_shape(&[1, 4, 10, 10])))
        .await
        .unwrap_err();
    assert!(
        got.starts_with("algorithm 'winograd' cannot run this convolution"),
        "{got}"
    );
    // Optimisers check their hyper-parameters as PyTorch does.
    let err = Sgd::new(object(&[("lr", JsValue::from(-0.1))]))
        .err()
        .unwrap();
    assert_eq!(
        js_sys::Error::from(err).message(),
        "Invalid learning rate: -0.1"
    );
    let err = Adam::new(object(&[("betas", JsValue::from(2.0))]))
        .err()
        .unwrap();
    assert!(String::from(js_sys::Error::from(err).message()).contains("betas"));
}

/// `precision: "high"` lets `auto` pick Winograd where the adapter's rules
/// say it is faster, `"medium"` also the blocked kernel on bfloat16
/// operands; whatever it picks, the result is within the bound of what ran
/// (Winograd's own where it ran, blocked-bf16's where it ran).
#[wasm_bindgen_test]
async fn high_and_medium_precision_results_stay_within_their_bounds() {
    // 64 channels: where the rules pick Winograd under `high`; 32: where
    // they pick blocked-bf16 under `medium` on CPU adapters.
    for (precision, channels) in [("high", 64usize), ("medium", 32)] {
        let config = wgpu_conv2d::Conv2dConfig::new(channels, channels, 3).with_padding(1);
        let layer = Layer::new(config, 21).unwrap();
        let input = Tensor::new(
            [1, channels, 20, 20],
            (0..channels * 400)
                .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
                .collect(),
        )
        .unwrap();
        let options = object(&[
            ("inChannels", JsValue::from(channels as f64)),
            ("outChannels", JsValue::from(channels as f64)),
            ("kernelSize", JsValue::from(3.0)),
            ("padding", JsValue::from(1.0)),
            ("precision", precision.into()),
        ]);
        let conv = create_layer(options, &layer).await.unwrap();
        assert_eq!(conv.precision(), precision);
        let picked = settle(conv.resolved_algorithm(js_shape(input.shape())))
            .await
            .unwrap()
            .as_string()
            .unwrap();
        let got = tensor(
            &settle(conv.forward(array(input.data()), js_shape(input.shape())))
                .await
                .unwrap(),
        );
        let want = layer.forward_cpu(&input).unwrap();
        let mag = magnitude(&layer, &input);
        let mut tolerance: Vec<f32> = mag
            .data()
            .iter()
            .map(|&m| bound(terms(&layer), m))
            .collect();
        if picked == "winograd" {
            let own = winograd::winograd_bound(&layer, &input);
            for (t, w) in tolerance.iter_mut().zip(own.data()) {
                *t += w;
            }
        }
        if picked == "blocked-bf16" {
            for (t, &m) in tolerance.iter_mut().zip(mag.data()) {
                *t += bf16_operand_bound(terms(&layer), m);
            }
        }
        let tolerance = Tensor::new(want.shape(), tolerance).unwrap();
        assert_within(
            &format!("precision {precision} [{picked}]"),
            &got,
            &want,
            &tolerance,
        );
        console_log!("precision {precision}: auto ran {picked}");
    }
}

/// A float16 layer: Float32Array inputs converted to its dtype, results in
/// it (marked `dtype`), within the bound of an f32 sum rounded once; a
/// bfloat16 GPU tensor refused by it with PyTorch's words.
#[wasm_bindgen_test]
async fn half_layers_take_and_give_their_dtype() {
    let config = wgpu_conv2d::Conv2dConfig::new(3, 4, 3).with_padding(1);
    let layer = Layer::new(config, 16)
        .unwrap()
        .to_dtype(wgpu_conv2d::DType::F16);
    let x: Vec<f32> = (0..3 * 64)
        .map(|i| ((i * 29 % 97) as f32 / 40.0) - 1.2)
        .collect();
    let options = object(&[
        ("inChannels", JsValue::from(3.0)),
        ("outChannels", JsValue::from(4.0)),
        ("kernelSize", JsValue::from(3.0)),
        ("padding", JsValue::from(1.0)),
        ("dtype", "float16".into()),
    ]);
    let conv = create_layer(options, &layer).await.unwrap();
    assert_eq!(conv.dtype(), "float16");
    let got = settle(conv.forward(array(&x), js_shape(&[1, 3, 8, 8])))
        .await
        .unwrap();
    assert_eq!(field(&got, "dtype").as_string().unwrap(), "float16");
    let got = tensor(&got).to_dtype(wgpu_conv2d::DType::F16);
    let input = Tensor::new([1, 3, 8, 8], x.clone())
        .unwrap()
        .to_dtype(wgpu_conv2d::DType::F16);
    let want = layer.forward_cpu(&input).unwrap();
    assert_within_bound(
        "float16 forward",
        &got,
        &want,
        &magnitude(&layer, &input),
        terms(&layer),
    );
    let bf = resolve::<GpuTensor>(GpuTensor::upload(
        array(&x),
        js_shape(&[1, 3, 8, 8]),
        "bfloat16".into(),
    ))
    .await;
    assert_eq!(bf.dtype(), "bfloat16");
    let err = settle(conv.forward_gpu(&bf)).await.unwrap_err();
    assert_eq!(
        err,
        "Input type (c10::BFloat16) and bias type (c10::Half) should be the same"
    );
}

#[wasm_bindgen_test]
async fn layers_chain_on_the_gpu_forward_and_backward() {
    let first = Layer::new(wgpu_conv2d::Conv2dConfig::new(3, 8, 3).with_padding(1), 1).unwrap();
    let second = Layer::new(
        wgpu_conv2d::Conv2dConfig::new(8, 4, 3)
            .with_padding_mode(wgpu_conv2d::PaddingMode::Reflect)
            .with_padding(1),
        2,
    )
    .unwrap();
    let js_layer = |l: &Layer| {
        let c = l.config();
        object(&[
            ("inChannels", JsValue::from(c.in_channels as f64)),
            ("outChannels", JsValue::from(c.out_channels as f64)),
            ("kernelSize", JsValue::from(3.0)),
            ("padding", JsValue::from(1.0)),
            ("paddingMode", c.padding_mode.to_string().into()),
        ])
    };
    let conv1 = create_layer(js_layer(&first), &first).await.unwrap();
    let conv2 = create_layer(js_layer(&second), &second).await.unwrap();
    let x: Vec<f32> = (0..2 * 3 * 9 * 7)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    let x_cpu = Tensor::new([2, 3, 9, 7], x.clone()).unwrap();
    let upload = |data: &[f32], dims: &[usize]| {
        GpuTensor::upload(array(data), js_shape(dims), JsValue::UNDEFINED)
    };
    let x_gpu = resolve::<GpuTensor>(upload(&x, &[2, 3, 9, 7])).await;
    let h = resolve::<GpuTensor>(conv1.forward_gpu(&x_gpu)).await;
    let y = resolve::<GpuTensor>(conv2.forward_gpu(&h)).await;
    let y = tensor(&settle(y.download()).await.unwrap());
    let h_cpu = first.forward_cpu(&x_cpu).unwrap();
    let y_cpu = second.forward_cpu(&h_cpu).unwrap();
    // Two layers: the first's rounding passes through the second's |w|.
    let mag = magnitude(&second, &magnitude(&first, &x_cpu));
    let tol: Vec<f32> = mag
        .data()
        .iter()
        .map(|&m| bound(terms(&first) + terms(&second), m))
        .collect();
    let tol = Tensor::new(y_cpu.shape(), tol).unwrap();
    assert_within("two layers chained", &y, &y_cpu, &tol);

    // Backward through both, GPU-resident; the first layer needs no input gradient.
    let grad_y: Vec<f32> = (0..y_cpu.numel())
        .map(|i| ((i * 13 % 17) as f32 / 8.0) - 1.0)
        .collect();
    let grad_y_gpu = resolve::<GpuTensor>(upload(&grad_y, y_cpu.shape())).await;
    let grads2 =
        resolve::<Gradients>(conv2.backward_gpu(&h, &grad_y_gpu, JsValue::UNDEFINED)).await;
    let grad_h = grads2.grad_input().unwrap();
    let no_input = object(&[("input", false.into())]);
    let grads1 = resolve::<Gradients>(conv1.backward_gpu(&x_gpu, &grad_h, no_input)).await;
    assert!(grads1.grad_input().is_none());
    let grad_y_cpu = Tensor::new(y_cpu.shape(), grad_y).unwrap();
    let want2 = second.backward_cpu(&h_cpu, &grad_y_cpu).unwrap();
    let want1 = first.backward_cpu(&x_cpu, &want2.grad_input).unwrap();
    let got_w1 = tensor(
        &settle(grads1.grad_weight().unwrap().download())
            .await
            .unwrap(),
    );
    // |grad_w1| ≤ Σ|x|·|grad_h|, |grad_h| ≤ Σ|w2|·|grad_y|: the bound on the magnitudes.
    let mag_gh = Layer::from_weights(second.config().with_bias(false), abs(second.weight()), None)
        .unwrap()
        .backward_cpu(&abs(&h_cpu), &abs(&grad_y_cpu))
        .unwrap()
        .grad_input;
    let mag_w1 = Layer::from_weights(first.config().with_bias(false), abs(first.weight()), None)
        .unwrap()
        .backward_cpu(&abs(&x_cpu), &mag_gh)
        .unwrap()
        .grad_weight;
    // Both sums' roundings: grad_h's (its folds of the reflect padding
    // included) carried through, then grad_w1's own over its positions.
    let g2 = Conv2dGeometry::new(second.config(), h_cpu.shape()).unwrap();
    let grad_h_terms = g2.out_channels_per_group()
        * 9
        * folds(g2.padding_mode(), g2.height())
        * folds(g2.padding_mode(), g2.width());
    let positions = 2 * 9 * 7;
    let tol: Vec<f32> = mag_w1
        .data()
        .iter()
        .map(|&m| bound(positions + grad_h_terms, m))
        .collect();
    let tol = Tensor::new(mag_w1.shape(), tol).unwrap();
    assert_within(
        "grad_weight of the first of two layers",
        &got_w1,
        &want1.grad_weight,
        &tol,
    );
}

#[wasm_bindgen_test]
async fn an_sgd_and_an_adam_step_update_the_weights_on_the_gpu() {
    let layer = Layer::new(wgpu_conv2d::Conv2dConfig::new(2, 3, 3), 7).unwrap();
    let options = || {
        object(&[
            ("inChannels", JsValue::from(2.0)),
            ("outChannels", JsValue::from(3.0)),
            ("kernelSize", JsValue::from(3.0)),
        ])
    };
    let x: Vec<f32> = (0..2 * 6 * 6)
        .map(|i| ((i * 29 % 23) as f32 / 11.0) - 1.0)
        .collect();
    let x_cpu = Tensor::new([1, 2, 6, 6], x.clone()).unwrap();
    let grad_y: Vec<f32> = (0..3 * 16)
        .map(|i| ((i * 7 % 13) as f32 / 6.0) - 1.0)
        .collect();
    let grad_y_cpu = Tensor::new([1, 3, 4, 4], grad_y.clone()).unwrap();
    let grads_cpu = layer.backward_cpu(&x_cpu, &grad_y_cpu).unwrap();
    let x_gpu = resolve::<GpuTensor>(GpuTensor::upload(
        array(&x),
        js_shape(&[1, 2, 6, 6]),
        JsValue::UNDEFINED,
    ))
    .await;
    let gy_gpu = resolve::<GpuTensor>(GpuTensor::upload(
        array(&grad_y),
        js_shape(&[1, 3, 4, 4]),
        JsValue::UNDEFINED,
    ))
    .await;
    let weights = |conv: &wgpu_conv2d_web::Conv2d| {
        let promise = conv.weights();
        async move { tensor(&field(&settle(promise).await.unwrap(), "weight")) }
    };
    let (lr, terms) = (0.1f32, 16);
    let magnitude = Layer::from_weights(layer.config().with_bias(false), abs(layer.weight()), None)
        .unwrap()
        .backward_cpu(&abs(&x_cpu), &abs(&grad_y_cpu))
        .unwrap()
        .grad_weight;

    // SGD with momentum: the first step is w − lr·g.
    let conv = create_layer(options(), &layer).await.unwrap();
    let no_input = object(&[("input", false.into())]);
    let grads = resolve::<Gradients>(conv.backward_gpu(&x_gpu, &gy_gpu, no_input)).await;
    let sgd = Sgd::new(object(&[
        ("lr", JsValue::from(lr as f64)),
        ("momentum", JsValue::from(0.9)),
    ]))
    .unwrap();
    settle(sgd.step(&conv, &grads)).await.unwrap();
    let got = weights(&conv).await;
    let want: Vec<f32> = layer
        .weight()
        .data()
        .iter()
        .zip(grads_cpu.grad_weight.data())
        .map(|(w, g)| w - lr * g)
        .collect();
    let tol: Vec<f32> = layer
        .weight()
        .data()
        .iter()
        .zip(magnitude.data())
        .map(|(w, m)| lr * bound(terms, *m) + 2.0 * f32::EPSILON * (w.abs() + lr * m))
        .collect();
    let tol = Tensor::new(layer.weight().shape(), tol).unwrap();
    assert_within(
        "sgd step",
        &got,
        &Tensor::new(layer.weight().shape(), want).unwrap(),
        &tol,
    );

    // Adam's first step is w − lr·g/(|g| + eps) (bias-corrected moments).
    let conv = create_layer(options(), &layer).await.unwrap();
    let grads = resolve::<Gradients>(conv.backward_gpu(&x_gpu, &gy_gpu, JsValue::UNDEFINED)).await;
    let adam = Adam::new(object(&[("lr", JsValue::from(0.01))])).unwrap();
    settle(adam.step(&conv, &grads)).await.unwrap();
    let got = weights(&conv).await;
    for (k, ((w, g), got)) in layer
        .weight()
        .data()
        .iter()
        .zip(grads_cpu.grad_weight.data())
        .zip(got.data())
        .enumerate()
    {
        let step = 0.01 * g / (g.abs() + 1e-8);
        assert!(
            (got - (w - step)).abs() <= 1e-6,
            "adam step, weight {k}: got {got}, want {}",
            w - step
        );
    }
}

#[wasm_bindgen_test]
async fn one_signed_sums_past_65535_terms_are_exact() {
    // 70000 input channels of a 1x1 kernel, all ones: every output is exactly 70000.
    let channels = 70_000;
    let ones = vec![1.0f32; channels];
    let input = Tensor::new([1, channels, 1, 2], vec![1.0; 2 * channels]).unwrap();
    let geometry_layer = Layer::from_weights(
        wgpu_conv2d::Conv2dConfig::new(channels, 1, 1).with_bias(false),
        Tensor::new([1, channels, 1, 1], ones.clone()).unwrap(),
        None,
    )
    .unwrap();
    let geometry = Conv2dGeometry::new(geometry_layer.config(), input.shape()).unwrap();
    let mut ran = Vec::new();
    for algorithm in std::iter::once(Algorithm::Auto).chain(Algorithm::KERNELS) {
        if algorithm.check(&geometry).is_err() {
            continue;
        }
        let options = object(&[
            ("inChannels", JsValue::from(channels as f64)),
            ("outChannels", JsValue::from(1.0)),
            ("kernelSize", JsValue::from(1.0)),
            ("bias", false.into()),
            ("algorithm", algorithm.name().into()),
        ]);
        let conv = create(options, &ones, None).await.unwrap();
        let got = tensor(
            &settle(conv.forward(array(input.data()), js_shape(input.shape())))
                .await
                .unwrap(),
        );
        assert_eq!(got.data(), &[70_000.0, 70_000.0], "[{algorithm}]");
        ran.push(algorithm.name());
    }
    console_log!("70000-term sums exact on {ran:?}");
    assert!(ran.len() >= 3);
    // The bias and weight gradients over 300000 positions.
    let conv = create(
        object(&[
            ("inChannels", JsValue::from(1.0)),
            ("outChannels", JsValue::from(1.0)),
            ("kernelSize", JsValue::from(1.0)),
        ]),
        &[1.0],
        Some(&[1.0]),
    )
    .await
    .unwrap();
    let n = 300_000;
    let grads = settle(conv.backward(
        array(&vec![1.0; n]),
        js_shape(&[1, 1, 1, n]),
        array(&vec![1.0; n]),
    ))
    .await
    .unwrap();
    assert_eq!(tensor(&field(&grads, "gradBias")).data(), &[300_000.0]);
    assert_eq!(tensor(&field(&grads, "gradWeight")).data(), &[300_000.0]);
}

/// The depthwise kernel's generated variants (interior and border strips,
/// stride 1 and 2, reflect and zeros padding; float32, and float16 read and
/// rounded in the kernel) compile under this WebGPU and agree with the CPU
/// reference: planes wide enough for strips inside the data, which the
/// golden cases (at most 23 wide) may not reach.
#[wasm_bindgen_test]
async fn depthwise_layers_agree_on_wide_planes() {
    for (channels, stride, mode, shape, dtype) in [
        (6, 1, "reflect", [1, 6, 40, 44], wgpu_conv2d::DType::F32),
        (4, 2, "zeros", [2, 4, 37, 50], wgpu_conv2d::DType::F32),
        (6, 1, "circular", [1, 6, 36, 48], wgpu_conv2d::DType::F16),
    ] {
        let config = wgpu_conv2d::Conv2dConfig::new(channels, channels, 3)
            .with_groups(channels)
            .with_stride(stride)
            .with_padding(1)
            .with_padding_mode(mode.parse::<wgpu_conv2d::PaddingMode>().unwrap());
        let layer = Layer::new(config, 33).unwrap().to_dtype(dtype);
        let n: usize = shape.iter().product();
        let x: Vec<f32> = (0..n)
            .map(|i| ((i * 31 % 89) as f32 / 40.0) - 1.1)
            .collect();
        let options = object(&[
            ("inChannels", JsValue::from(channels as f64)),
            ("outChannels", JsValue::from(channels as f64)),
            ("kernelSize", JsValue::from(3.0)),
            ("stride", JsValue::from(stride as f64)),
            ("padding", JsValue::from(1.0)),
            ("groups", JsValue::from(channels as f64)),
            ("paddingMode", mode.into()),
            ("algorithm", "depthwise".into()),
            ("dtype", dtype.name().into()),
        ]);
        let conv = create_layer(options, &layer).await.unwrap();
        let got = settle(conv.forward(array(&x), js_shape(&shape)))
            .await
            .unwrap();
        let got = tensor(&got).to_dtype(dtype);
        let input = Tensor::new(shape, x).unwrap().to_dtype(dtype);
        let want = layer.forward_cpu(&input).unwrap();
        assert_within_bound(
            &format!("depthwise {mode} stride {stride} {dtype}"),
            &got,
            &want,
            &magnitude(&layer, &input),
            terms(&layer),
        );
    }
}
