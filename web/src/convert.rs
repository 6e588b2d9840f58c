//! Between JavaScript values and the crate's types: errors, arrays, shapes.

use js_sys::{Array, Float32Array, Object, Reflect};
use wasm_bindgen::prelude::*;
use wgpu_conv2d::Tensor as HostTensor;

/// A rejected promise's value: an `Error` with `message`.
pub(crate) fn error(message: impl std::fmt::Display) -> JsValue {
    js_sys::Error::new(&message.to_string()).into()
}

/// A shape from a JavaScript array of non-negative integers.
pub(crate) fn shape(value: &JsValue, what: &str) -> Result<Vec<usize>, JsValue> {
    let wrong = || {
        error(format!(
            "{what} must be an array of non-negative integers, got {}",
            describe(value)
        ))
    };
    let array = value.dyn_ref::<Array>().ok_or_else(wrong)?;
    array
        .iter()
        .map(|d| {
            d.as_f64()
                .filter(|v| v.fract() == 0.0 && *v >= 0.0 && *v <= 9.007_199_254_740_991e15)
                .map(|v| v as usize)
                .ok_or_else(wrong)
        })
        .collect()
}

/// A host tensor of `shape` from `data`, checked like `Tensor::new`.
pub(crate) fn host_tensor(
    data: &Float32Array,
    shape_value: &JsValue,
    what: &str,
) -> Result<HostTensor, JsValue> {
    let shape = shape(shape_value, &format!("{what}'s shape"))?;
    HostTensor::new(shape, data.to_vec()).map_err(error)
}

/// `{ data: Float32Array, shape: number[], dtype: string }` (a half
/// dtype's values, as float32 numbers).
pub(crate) fn tensor_object(tensor: &HostTensor) -> JsValue {
    let object = Object::new();
    set(&object, "data", &Float32Array::from(tensor.data()).into());
    set(&object, "shape", &shape_array(tensor.shape()));
    set(&object, "dtype", &tensor.dtype().name().into());
    object.into()
}

/// A dtype from an optional JavaScript string (`float32` when undefined).
pub(crate) fn dtype(value: &JsValue) -> Result<wgpu_conv2d::DType, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(wgpu_conv2d::DType::F32);
    }
    value
        .as_string()
        .ok_or_else(|| {
            error(format!(
                "a dtype must be a string such as \"float16\", got {}",
                describe(value)
            ))
        })?
        .parse()
        .map_err(error)
}

/// A shape as a JavaScript array.
pub(crate) fn shape_array(shape: &[usize]) -> JsValue {
    shape
        .iter()
        .map(|&d| JsValue::from(d as f64))
        .collect::<Array>()
        .into()
}

/// `object[key] = value` (on a fresh plain object, which cannot fail).
pub(crate) fn set(object: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(object, &JsValue::from_str(key), value);
}

/// A short description of a value for an error message.
pub(crate) fn describe(value: &JsValue) -> String {
    if value.is_undefined() {
        "undefined".into()
    } else if let Some(s) = value.as_string() {
        format!("{s:?}")
    } else {
        js_sys::JSON::stringify(value)
            .ok()
            .and_then(|s| s.as_string())
            .unwrap_or_else(|| format!("{value:?}"))
    }
}
