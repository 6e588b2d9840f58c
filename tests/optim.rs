//! The GPU optimisers against PyTorch's: trajectories of torch.optim.SGD,
//! Adam and AdamW (tests/data/golden_optim.json, made by tools/golden_optim.py)
//! replayed step by step on a layer's weight and bias.

mod common;

use common::{floats, load, shape};
use serde_json::Value;
use wgpu_conv2d::{
    Adam, AdamConfig, Conv2d, Conv2dConfig, GpuConv2d, GpuGrads, GpuTensor, Sgd, SgdConfig, Tensor,
};

/// The optimiser of a case, from PyTorch's keyword arguments.
enum Optimiser {
    Sgd(Sgd),
    Adam(Adam),
}

impl Optimiser {
    fn from_case(case: &Value) -> Self {
        let p = &case["params"];
        let f = |key: &str, default: f32| p[key].as_f64().map_or(default, |v| v as f32);
        let b = |key: &str| p[key].as_bool().unwrap_or(false);
        match case["optimizer"].as_str().unwrap() {
            "sgd" => Optimiser::Sgd(
                Sgd::new(SgdConfig {
                    lr: f("lr", 1e-3),
                    momentum: f("momentum", 0.0),
                    dampening: f("dampening", 0.0),
                    weight_decay: f("weight_decay", 0.0),
                    nesterov: b("nesterov"),
                    maximize: b("maximize"),
                })
                .unwrap(),
            ),
            kind => {
                let base = if kind == "adamw" {
                    AdamConfig::adamw()
                } else {
                    AdamConfig::default()
                };
                let betas = p["betas"].as_array().map_or(base.betas, |b| {
                    (b[0].as_f64().unwrap() as f32, b[1].as_f64().unwrap() as f32)
                });
                Optimiser::Adam(
                    Adam::new(AdamConfig {
                        lr: f("lr", base.lr),
                        betas,
                        eps: f("eps", base.eps),
                        weight_decay: f("weight_decay", base.weight_decay),
                        maximize: b("maximize"),
                        ..base
                    })
                    .unwrap(),
                )
            }
        }
    }

    fn step(&mut self, layer: &mut GpuConv2d, grads: &GpuGrads) {
        match self {
            Optimiser::Sgd(o) => o.step(layer, grads),
            Optimiser::Adam(o) => o.step(layer, grads),
        }
        .unwrap()
    }
}

/// Each step does a few float operations on the value and its update: its
/// result is within 16·ε of (|value| + |change|), and errors carry over to
/// the next step; so after step k the bound is 16·ε·(|w₀| + Σ |changes so far|).
fn check(what: &str, got: &[f32], want: &[f32], magnitude: &[f32]) {
    for (i, ((&g, &w), &m)) in got.iter().zip(want).zip(magnitude).enumerate() {
        let tol = 16.0 * f32::EPSILON * m;
        assert!(
            (g - w).abs() <= tol,
            "{what}[{i}]: got {g}, PyTorch {w}, |diff| {} > {tol}",
            (g - w).abs()
        );
    }
}

#[test]
fn optimisers_follow_pytorchs_trajectories() {
    let ctx = common::gpu();
    let data = load("golden_optim.json");
    let cases = data["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 10);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let weight = Tensor::new(shape(&case["weight_shape"]), floats(&case["weight"])).unwrap();
        let bias = Tensor::new([4], floats(&case["bias"])).unwrap();
        let layer = Conv2d::from_weights(
            Conv2dConfig::new(3, 4, 3),
            weight.clone(),
            Some(bias.clone()),
        )
        .unwrap();
        let mut gpu = GpuConv2d::new(ctx, &layer).unwrap();
        let mut optimiser = Optimiser::from_case(case);
        let mut magnitude_w: Vec<f32> = weight.data().iter().map(|v| v.abs()).collect();
        let mut magnitude_b: Vec<f32> = bias.data().iter().map(|v| v.abs()).collect();
        let (mut prev_w, mut prev_b) = (weight.data().to_vec(), bias.data().to_vec());
        let steps = case["grad_weight"].as_array().unwrap().len();
        for step in 0..steps {
            let upload = |key: &str, shape: &[usize]| {
                let data = floats(&case[key][step]);
                GpuTensor::upload(ctx, &Tensor::new(shape, data).unwrap()).unwrap()
            };
            let grads = GpuGrads {
                grad_input: None,
                grad_weight: Some(upload("grad_weight", weight.shape())),
                grad_bias: Some(upload("grad_bias", &[4])),
            };
            optimiser.step(&mut gpu, &grads);
            let now = gpu.to_layer().unwrap();
            let want_w = floats(&case["weight_after"][step]);
            let want_b = floats(&case["bias_after"][step]);
            for (m, (new, old)) in magnitude_w.iter_mut().zip(want_w.iter().zip(&prev_w)) {
                *m += (new - old).abs();
            }
            for (m, (new, old)) in magnitude_b.iter_mut().zip(want_b.iter().zip(&prev_b)) {
                *m += (new - old).abs();
            }
            check(
                &format!("{name} step {step} weight"),
                now.weight().data(),
                &want_w,
                &magnitude_w,
            );
            check(
                &format!("{name} step {step} bias"),
                now.bias().unwrap().data(),
                &want_b,
                &magnitude_b,
            );
            (prev_w, prev_b) = (want_w, want_b);
        }
    }
}

#[test]
fn a_parameter_without_a_gradient_is_left_alone_and_state_is_per_layer() {
    let ctx = common::gpu();
    let layer = Conv2d::new(Conv2dConfig::new(2, 3, 3), 4).unwrap();
    let mut a = GpuConv2d::new(ctx, &layer).unwrap();
    let mut b = GpuConv2d::new(ctx, &layer).unwrap();
    let mut sgd = Sgd::new(SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        ..SgdConfig::default()
    })
    .unwrap();
    let ones = |shape: &[usize]| {
        GpuTensor::upload(
            ctx,
            &Tensor::new(shape, vec![1.0; shape.iter().product()]).unwrap(),
        )
        .unwrap()
    };
    let weight_only = GpuGrads {
        grad_input: None,
        grad_weight: Some(ones(&[3, 2, 3, 3])),
        grad_bias: None,
    };
    // Two steps on `a` build its momentum (0.1·1, then 0.1·1.9); one on `b` starts afresh.
    sgd.step(&mut a, &weight_only).unwrap();
    sgd.step(&mut a, &weight_only).unwrap();
    sgd.step(&mut b, &weight_only).unwrap();
    let (a, b) = (a.to_layer().unwrap(), b.to_layer().unwrap());
    assert_eq!(a.bias(), layer.bias(), "no gradient, no change");
    let w0 = layer.weight().data()[0];
    assert!((a.weight().data()[0] - (w0 - 0.1 - 0.19)).abs() < 1e-6);
    assert!((b.weight().data()[0] - (w0 - 0.1)).abs() < 1e-6);
    // A gradient of the wrong size is an error naming it.
    let wrong = GpuGrads {
        grad_input: None,
        grad_weight: Some(ones(&[5])),
        grad_bias: None,
    };
    let mut c = GpuConv2d::new(ctx, &layer).unwrap();
    let err = sgd.step(&mut c, &wrong).unwrap_err().to_string();
    assert_eq!(err, "grad_weight has 5 elements, the layer's parameter 54");
}
