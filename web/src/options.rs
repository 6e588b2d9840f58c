//! The options object of `Conv2d.create`, read into the crate's types with
//! messages that name the offending option and value.

use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;
use wgpu_conv2d::{
    Algorithm, BackwardAlgorithm, Conv2dConfig, DType, Padding, PaddingMode, Precision, Size2,
};

use crate::convert::{describe, error};

/// Every option `create` takes, as JavaScript spells them.
const KNOWN: [&str; 14] = [
    "inChannels",
    "outChannels",
    "kernelSize",
    "stride",
    "padding",
    "dilation",
    "groups",
    "paddingMode",
    "bias",
    "algorithm",
    "backwardAlgorithm",
    "precision",
    "dtype",
    "seed",
];

/// What `Conv2d.create` was asked for.
pub(crate) struct Options {
    pub config: Conv2dConfig,
    pub algorithm: Algorithm,
    pub backward_algorithm: BackwardAlgorithm,
    /// The accuracy `auto` keeps (`"highest"`, the default, `"high"` or
    /// `"medium"`).
    pub precision: Precision,
    /// The layer's dtype (`"float32"`, the default, `"float16"` or
    /// `"bfloat16"`).
    pub dtype: DType,
    /// Seed of PyTorch's default init when no weight is given.
    pub seed: Option<u64>,
}

impl Options {
    /// Reads `value`, an object like
    /// `{ inChannels: 4, outChannels: 8, kernelSize: [3, 3], padding: "same" }`;
    /// PyTorch's defaults for what is left out.
    pub(crate) fn read(value: &JsValue) -> Result<Self, JsValue> {
        let object = value.dyn_ref::<Object>().filter(|_| value.is_object()).ok_or_else(|| {
            error(format!(
                "Conv2d options must be an object such as {{ inChannels: 1, outChannels: 1, kernelSize: 3 }}, got {}",
                describe(value)
            ))
        })?;
        for key in Object::keys(object).iter() {
            let key = key.as_string().unwrap_or_default();
            if !KNOWN.contains(&key.as_str()) {
                return Err(error(format!(
                    "unknown Conv2d option '{key}' (expected one of {})",
                    KNOWN.join(", ")
                )));
            }
        }
        let get =
            |key: &str| Reflect::get(object, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED);
        let required = |key: &str| {
            let v = get(key);
            if v.is_undefined() {
                Err(error(format!("Conv2d option '{key}' is required")))
            } else {
                Ok(v)
            }
        };
        let optional = |key: &str| Some(get(key)).filter(|v| !v.is_undefined() && !v.is_null());

        let mut config = Conv2dConfig::new(
            count("inChannels", &required("inChannels")?)?,
            count("outChannels", &required("outChannels")?)?,
            pair("kernelSize", &required("kernelSize")?)?,
        );
        if let Some(v) = optional("stride") {
            config = config.with_stride(pair("stride", &v)?);
        }
        if let Some(v) = optional("padding") {
            config = config.with_padding(padding(&v)?);
        }
        if let Some(v) = optional("dilation") {
            config = config.with_dilation(pair("dilation", &v)?);
        }
        if let Some(v) = optional("groups") {
            config = config.with_groups(count("groups", &v)?);
        }
        if let Some(v) = optional("paddingMode") {
            let mode = string("paddingMode", &v)?
                .parse::<PaddingMode>()
                .map_err(error)?;
            config = config.with_padding_mode(mode);
        }
        if let Some(v) = optional("bias") {
            config = config.with_bias(v.as_bool().ok_or_else(|| {
                error(format!(
                    "Conv2d option 'bias' must be true or false, got {}",
                    describe(&v)
                ))
            })?);
        }
        let algorithm = match optional("algorithm") {
            Some(v) => string("algorithm", &v)?
                .parse::<Algorithm>()
                .map_err(error)?,
            None => Algorithm::Auto,
        };
        let backward_algorithm = match optional("backwardAlgorithm") {
            Some(v) => string("backwardAlgorithm", &v)?
                .parse::<BackwardAlgorithm>()
                .map_err(error)?,
            None => BackwardAlgorithm::Auto,
        };
        let precision = match optional("precision") {
            Some(v) => string("precision", &v)?
                .parse::<Precision>()
                .map_err(error)?,
            None => Precision::Highest,
        };
        let dtype = match optional("dtype") {
            Some(v) => string("dtype", &v)?.parse::<DType>().map_err(error)?,
            None => DType::F32,
        };
        let seed = optional("seed")
            .map(|v| count("seed", &v).map(|s| s as u64))
            .transpose()?;
        Ok(Self {
            config,
            algorithm,
            backward_algorithm,
            precision,
            dtype,
            seed,
        })
    }
}

/// A whole number ≥ 0 (PyTorch's own checks then say what it must be).
pub(crate) fn count(key: &str, value: &JsValue) -> Result<usize, JsValue> {
    integer(value)
        .filter(|&v| v >= 0)
        .map(|v| v as usize)
        .ok_or_else(|| {
            error(format!(
                "Conv2d option '{key}' must be a non-negative integer, got {}",
                describe(value)
            ))
        })
}

/// An integer-valued number within ±2⁵³.
fn integer(value: &JsValue) -> Option<i64> {
    value
        .as_f64()
        .filter(|v| v.fract() == 0.0 && v.abs() <= 9.007_199_254_740_991e15)
        .map(|v| v as i64)
}

/// `3` or `[3, 5]` (height, width).
fn pair(key: &str, value: &JsValue) -> Result<Size2, JsValue> {
    if value.as_f64().is_some() {
        return count(key, value).map(Size2::square);
    }
    let wrong = || {
        error(format!(
            "Conv2d option '{key}' must be an integer or an array of two integers [h, w], got {}",
            describe(value)
        ))
    };
    let array = value.dyn_ref::<js_sys::Array>().ok_or_else(wrong)?;
    if array.length() != 2 {
        return Err(wrong());
    }
    Ok(Size2::new(
        count(key, &array.get(0))?,
        count(key, &array.get(1))?,
    ))
}

/// `1`, `[1, 2]`, `"same"` or `"valid"`; negative values crop, as in PyTorch.
fn padding(value: &JsValue) -> Result<Padding, JsValue> {
    if let Some(word) = value.as_string() {
        return word.parse::<Padding>().map_err(error);
    }
    let wrong = || {
        error(format!(
            "Conv2d option 'padding' must be an integer, [h, w], \"same\" or \"valid\", got {}",
            describe(value)
        ))
    };
    if value.as_f64().is_some() {
        return integer(value).map(Padding::uniform).ok_or_else(wrong);
    }
    let array = value.dyn_ref::<js_sys::Array>().ok_or_else(wrong)?;
    match (
        array.length(),
        integer(&array.get(0)),
        integer(&array.get(1)),
    ) {
        (2, Some(h), Some(w)) => Ok(Padding::from((h, w))),
        _ => Err(wrong()),
    }
}

/// A string option.
fn string(key: &str, value: &JsValue) -> Result<String, JsValue> {
    value.as_string().ok_or_else(|| {
        error(format!(
            "Conv2d option '{key}' must be a string, got {}",
            describe(value)
        ))
    })
}
