//! What the web tests share: the JavaScript API driven from Rust, the test
//! data, and the fp32 error bounds (the same as the native tests').
#![allow(dead_code)]

#[path = "../../../tests/common/winograd.rs"]
pub mod winograd;

use js_sys::{Array, Float32Array, Object, Promise, Reflect};
use serde_json::Value;
use wasm_bindgen::convert::TryFromJsValue;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wgpu_conv2d::{Conv2d as Layer, PaddingMode, Tensor};
use wgpu_conv2d_web::Conv2d;

/// Awaits a promise of the package: its value, or its rejection's message.
pub async fn settle(promise: Promise) -> Result<JsValue, String> {
    JsFuture::from(promise).await.map_err(|e| {
        e.dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .unwrap_or_else(|| format!("{e:?}"))
    })
}

/// `{ key: value, ... }`.
pub fn object(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &JsValue::from_str(k), v).unwrap();
    }
    o.into()
}

pub fn array(values: &[f32]) -> Float32Array {
    Float32Array::from(values)
}

pub fn shape(values: &[usize]) -> JsValue {
    values
        .iter()
        .map(|&v| JsValue::from(v as f64))
        .collect::<Array>()
        .into()
}

/// A JSON value of the test data as the JavaScript value a web page would pass.
pub fn js(value: &Value) -> JsValue {
    match value {
        Value::Number(n) => JsValue::from(n.as_f64().unwrap()),
        Value::String(s) => JsValue::from_str(s),
        Value::Bool(b) => JsValue::from(*b),
        Value::Array(a) => a.iter().map(js).collect::<Array>().into(),
        Value::Null => JsValue::NULL,
        Value::Object(_) => panic!("no objects here"),
    }
}

/// The `Conv2d.create` options of a case's `nn.Conv2d` parameters.
pub fn options(params: &Value, algorithm: &str) -> JsValue {
    let p = |k: &str| js(&params[k]);
    object(&[
        ("inChannels", p("in_channels")),
        ("outChannels", p("out_channels")),
        ("kernelSize", p("kernel_size")),
        ("stride", p("stride")),
        ("padding", p("padding")),
        ("dilation", p("dilation")),
        ("groups", p("groups")),
        ("bias", p("bias")),
        ("paddingMode", p("padding_mode")),
        ("algorithm", JsValue::from_str(algorithm)),
    ])
}

pub fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

pub fn dims(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

/// `Conv2d.create` through the JavaScript API.
pub async fn create(
    options: JsValue,
    weight: &[f32],
    bias: Option<&[f32]>,
) -> Result<Conv2d, String> {
    let bias = bias.map_or(JsValue::UNDEFINED, |b| array(b).into());
    let value = settle(Conv2d::create(options, array(weight).into(), bias)).await?;
    Ok(Conv2d::try_from_js_value(value).expect("create resolves to a Conv2d"))
}

/// `{ data, shape }` as a host tensor.
pub fn tensor(value: &JsValue) -> Tensor {
    let get = |k: &str| Reflect::get(value, &JsValue::from_str(k)).unwrap();
    let data = get("data").dyn_into::<Float32Array>().unwrap().to_vec();
    let shape: Vec<usize> = Array::from(&get("shape"))
        .iter()
        .map(|d| d.as_f64().unwrap() as usize)
        .collect();
    Tensor::new(shape, data).unwrap()
}

pub fn field(value: &JsValue, key: &str) -> JsValue {
    Reflect::get(value, &JsValue::from_str(key)).unwrap()
}

pub fn abs(t: &Tensor) -> Tensor {
    Tensor::new(t.shape(), t.data().iter().map(|v| v.abs()).collect()).unwrap()
}

/// `Σ|w·x| + |b|` per output, from the CPU reference on absolute values.
pub fn magnitude(layer: &Layer, input: &Tensor) -> Tensor {
    Layer::from_weights(*layer.config(), abs(layer.weight()), layer.bias().map(abs))
        .unwrap()
        .forward_cpu(&abs(input))
        .unwrap()
}

/// Products summed into one output, plus the bias.
pub fn terms(layer: &Layer) -> usize {
    layer.config().fan_in() + usize::from(layer.bias().is_some())
}

/// `(terms + 2)·2⁻²³·Σ|w·x|`: the fp32 bound of a dot product in any order.
pub fn bound(terms: usize, magnitude: f32) -> f32 {
    (terms as f32 + 2.0) * f32::EPSILON * magnitude
}

/// Element by element within `tolerance`; NaN matches NaN, infinities exactly.
pub fn assert_within(what: &str, got: &Tensor, want: &Tensor, tolerance: &[f32]) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    for (k, ((&g, &w), &tol)) in got
        .data()
        .iter()
        .zip(want.data())
        .zip(tolerance)
        .enumerate()
    {
        assert!(
            (g - w).abs() <= tol || (g.is_nan() && w.is_nan()) || g == w,
            "{what}: element {k}: got {g}, want {w}, |diff| {} > bound {tol}",
            (g - w).abs()
        );
    }
}

/// Within the fp32 bound of `terms` products per element.
pub fn assert_within_bound(
    what: &str,
    got: &Tensor,
    want: &Tensor,
    magnitude: &Tensor,
    terms: usize,
) {
    let tolerance: Vec<f32> = magnitude.data().iter().map(|&m| bound(terms, m)).collect();
    assert_within(what, got, want, &tolerance);
}

/// The largest `|got − want|` in units of `2⁻²³ · max Σ|w·x|`.
pub fn normwise_error(got: &Tensor, want: &Tensor, magnitude: &Tensor) -> f64 {
    let scale = magnitude.data().iter().fold(0.0f32, |a, &m| a.max(m));
    let err = got
        .data()
        .iter()
        .zip(want.data())
        .filter(|(_, w)| w.is_finite())
        .map(|(&g, &w)| (g - w).abs())
        .fold(0.0f32, f32::max);
    if scale == 0.0 {
        return 0.0;
    }
    f64::from(err) / (f64::from(f32::EPSILON) * f64::from(scale))
}

/// Padded positions folding their gradient back onto one input position
/// along `axis` (itself included), per padding mode.
pub fn folds(mode: PaddingMode, axis: &wgpu_conv2d::Axis) -> usize {
    let (before, after) = (
        axis.pad_before().max(0) as usize,
        axis.pad_after().max(0) as usize,
    );
    match mode {
        PaddingMode::Zeros => 1,
        PaddingMode::Reflect | PaddingMode::Circular => {
            1 + usize::from(before > 0) + usize::from(after > 0)
        }
        PaddingMode::Replicate => 1 + before + after,
    }
}
