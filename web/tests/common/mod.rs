//! What the web tests share: the JavaScript API driven from Rust, and, from
//! the native tests' common files, the test data's readers and the fp32
//! error bounds.
#![allow(dead_code)]

#[path = "../../../tests/common/bounds.rs"]
mod bounds;
#[path = "../../../tests/common/cases.rs"]
mod cases;
#[path = "../../../tests/common/winograd.rs"]
pub mod winograd;

pub use bounds::*;
pub use cases::*;

use js_sys::{Array, Float32Array, Object, Promise, Reflect};
use serde_json::Value;
use wasm_bindgen::convert::TryFromJsValue;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wgpu_conv2d::Tensor;
use wgpu_conv2d_web::Conv2d;

/// Awaits a promise of the package: its value, or its rejection's message.
pub async fn settle(promise: Promise) -> Result<JsValue, String> {
    JsFuture::from(promise).await.map_err(|e| {
        e.dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .unwrap_or_else(|| format!("{e:?}"))
    })
}

/// Awaits a promise that must resolve to a `T` of the package.
pub async fn resolve<T: TryFromJsValue>(promise: Promise) -> T {
    let value = settle(promise)
        .await
        .unwrap_or_else(|e| panic!("rejected: {e}"));
    T::try_from_js_value(value).unwrap_or_else(|_| panic!("resolved to another type"))
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

/// A shape as the JavaScript array the package takes.
pub fn js_shape(values: &[usize]) -> JsValue {
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

/// `Conv2d.create` with `layer`'s weight and bias.
pub async fn create_layer(options: JsValue, layer: &wgpu_conv2d::Conv2d) -> Result<Conv2d, String> {
    create(
        options,
        layer.weight().data(),
        layer.bias().map(Tensor::data),
    )
    .await
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
