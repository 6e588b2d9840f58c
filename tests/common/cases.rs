//! The test data's JSON (seed examples, golden cases) as the crate's types:
//! no GPU and no files, so that the web tests (web/tests) share it.

use serde_json::Value;
use wgpu_conv2d::{Conv2d, Conv2dConfig, Conv2dError, Padding, PaddingMode, Size2, Tensor};

/// `2` or `[2, 1]` from the JSON test data.
pub fn size2(v: &Value) -> Size2 {
    match v {
        Value::Number(n) => Size2::square(n.as_u64().unwrap() as usize),
        Value::Array(a) => Size2::new(
            a[0].as_u64().unwrap() as usize,
            a[1].as_u64().unwrap() as usize,
        ),
        other => panic!("not a size: {other}"),
    }
}

/// `1`, `[1, 2]`, `"same"` or `"valid"` from the JSON test data.
pub fn padding(v: &Value) -> Padding {
    match v {
        Value::String(s) => s.parse().unwrap(),
        Value::Number(n) => Padding::uniform(n.as_i64().unwrap()),
        Value::Array(a) => Padding::from((a[0].as_i64().unwrap(), a[1].as_i64().unwrap())),
        other => panic!("not a padding: {other}"),
    }
}

/// An `nn.Conv2d` parameter object (as the seed examples and golden data write it).
pub fn config(params: &Value) -> Conv2dConfig {
    let int = |k: &str| params[k].as_u64().unwrap_or_else(|| panic!("{k}")) as usize;
    Conv2dConfig::new(
        int("in_channels"),
        int("out_channels"),
        size2(&params["kernel_size"]),
    )
    .with_stride(size2(&params["stride"]))
    .with_padding(padding(&params["padding"]))
    .with_dilation(size2(&params["dilation"]))
    .with_groups(int("groups"))
    .with_bias(params["bias"].as_bool().unwrap())
    .with_padding_mode(
        params["padding_mode"]
            .as_str()
            .unwrap()
            .parse::<PaddingMode>()
            .unwrap(),
    )
}

/// A flat JSON array of numbers as `f32` (`null` where JSON cannot hold NaN/Inf is not used).
pub fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// A shape array.
pub fn shape(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

/// The layer of a seed or golden case: its parameters, weight and bias.
pub fn layer_from_case(case: &Value) -> Result<Conv2d, Conv2dError> {
    let config = config(&case["params"]);
    let weight = Tensor::new(shape(&case["weight_shape"]), floats(&case["weight"]))?;
    let bias = match &case["bias"] {
        Value::Null => None,
        b => Some(Tensor::new([config.out_channels], floats(b))?),
    };
    Conv2d::from_weights(config, weight, bias)
}
