//! A Conv2d layer: a checked configuration with its weight and bias.

use rand::{Rng, RngExt, SeedableRng, rngs::StdRng};

use crate::config::Conv2dConfig;
use crate::dtype::{DType, mismatch};
use crate::error::{Conv2dError, Result, fmt_shape};
use crate::tensor::{Tensor, checked_numel, try_with_capacity};

/// The parameters of one `nn.Conv2d`: configuration, weight
/// `(out_channels, in_channels / groups, kH, kW)` and optional bias `(out_channels,)`.
///
/// Construction validates everything, so a `Conv2d` is always consistent.
/// [`forward_cpu`](Self::forward_cpu) and [`backward_cpu`](Self::backward_cpu)
/// run it on the CPU reference; [`GpuConv2d`](crate::GpuConv2d) on a GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2d {
    config: Conv2dConfig,
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Conv2d {
    /// A layer initialised as PyTorch does by default, from a seed:
    /// weight and bias drawn from `U(−1/√fan_in, 1/√fan_in)`,
    /// `fan_in = (in_channels / groups)·kH·kW`.
    pub fn new(config: Conv2dConfig, seed: u64) -> Result<Self> {
        Self::with_rng(config, &mut StdRng::seed_from_u64(seed))
    }

    /// Like [`new`](Self::new), seeded from the system's entropy (the
    /// operating system's, or the browser's `crypto.getRandomValues` on the
    /// web): a different layer every call, as `nn.Conv2d(...)` gives.
    pub fn new_random(config: Conv2dConfig) -> Result<Self> {
        let seed = getrandom::u64().map_err(|e| Conv2dError::Entropy(e.to_string()))?;
        Self::new(config, seed)
    }

    /// Like [`new`](Self::new), drawing from the given generator (weight first, then bias).
    pub fn with_rng(config: Conv2dConfig, rng: &mut impl Rng) -> Result<Self> {
        config.validate()?;
        let fan_in = config.fan_in();
        // PyTorch 2.15 gives bound 0 (all zeros) when fan_in is 0.
        let bound = if fan_in == 0 {
            0.0
        } else {
            1.0 / (fan_in as f64).sqrt()
        };
        let mut draw = |what: &'static str, shape: &[usize]| -> Result<Tensor> {
            let n = checked_numel(shape).ok_or_else(|| Conv2dError::ValueTooLarge {
                what,
                value: fmt_shape(shape),
            })?;
            let mut values = try_with_capacity(what, n)?;
            values.extend((0..n).map(|_| {
                if bound == 0.0 {
                    0.0
                } else {
                    rng.random_range(-bound..bound) as f32
                }
            }));
            Tensor::new(shape, values)
        };
        let weight = draw("weight", &config.weight_shape())?;
        let bias = if config.bias {
            Some(draw("bias", &[config.out_channels])?)
        } else {
            None
        };
        Ok(Self {
            config,
            weight,
            bias,
        })
    }

    /// A layer with the given weight and bias; their shapes must match `config`
    /// (`bias` must be `Some` exactly when `config.bias` is true), and the
    /// bias's dtype the weight's (the layer's [`dtype`](Self::dtype)).
    pub fn from_weights(
        config: Conv2dConfig,
        weight: Tensor,
        bias: Option<Tensor>,
    ) -> Result<Self> {
        config.validate()?;
        let expected = config.weight_shape();
        if weight.shape() != expected {
            return Err(Conv2dError::WeightShape {
                expected: expected.to_vec(),
                got: weight.shape().to_vec(),
            });
        }
        if let Some(b) = &bias
            && b.dtype() != weight.dtype()
        {
            return Err(mismatch(weight.dtype(), "bias", b.dtype()));
        }
        match (&bias, config.bias) {
            (Some(b), true) if b.shape() != [config.out_channels] => Err(Conv2dError::BiasShape {
                weight_shape: expected.to_vec(),
                expected: config.out_channels,
                got: b.shape().to_vec(),
            }),
            (Some(_), true) | (None, false) => Ok(Self {
                config,
                weight,
                bias,
            }),
            _ => Err(Conv2dError::BiasPresence {
                configured: config.bias,
            }),
        }
    }

    /// A layer whose configuration comes from the weight's shape, as
    /// `F.conv2d(input, weight, bias, ...)` works: `out_channels = weight.size(0)`,
    /// `in_channels = weight.size(1)·groups`, kernel `weight.shape[2..]`.
    /// Stride, padding, dilation, groups and padding mode are taken from `params`.
    pub fn from_weight_shape(
        params: Conv2dConfig,
        weight: Tensor,
        bias: Option<Tensor>,
    ) -> Result<Self> {
        let &[out_channels, per_group, kh, kw] = weight.shape() else {
            return Err(Conv2dError::WeightRank(weight.shape().to_vec()));
        };
        if params.groups == 0 {
            return Err(Conv2dError::NonPositiveGroups(0));
        }
        if out_channels < params.groups {
            return Err(Conv2dError::TooFewOutChannels {
                groups: params.groups,
                weight_shape: weight.shape().to_vec(),
            });
        }
        let in_channels =
            per_group
                .checked_mul(params.groups)
                .ok_or_else(|| Conv2dError::ValueTooLarge {
                    what: "in_channels",
                    value: format!("{per_group} * {}", params.groups),
                })?;
        if let Some(b) = &bias
            && b.shape() != [out_channels]
        {
            return Err(Conv2dError::BiasShape {
                weight_shape: weight.shape().to_vec(),
                expected: out_channels,
                got: b.shape().to_vec(),
            });
        }
        let config = Conv2dConfig {
            in_channels,
            out_channels,
            kernel_size: (kh, kw).into(),
            bias: bias.is_some(),
            ..params
        };
        Self::from_weights(config, weight, bias)
    }

    /// The configuration.
    pub fn config(&self) -> &Conv2dConfig {
        &self.config
    }

    /// The weight, `(out_channels, in_channels / groups, kH, kW)`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias, `(out_channels,)`, if the layer has one.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// The parameters' dtype (the weight's; the bias has the same), which
    /// inputs must have: `float32` unless made with
    /// [`to_dtype`](Self::to_dtype) or from half tensors.
    pub fn dtype(&self) -> DType {
        self.weight.dtype()
    }

    /// The same layer with its weight and bias converted to `dtype`, as
    /// PyTorch's `layer.to(dtype)` (`layer.half()`, `layer.bfloat16()`).
    pub fn to_dtype(self, dtype: DType) -> Self {
        Self {
            config: self.config,
            weight: self.weight.to_dtype(dtype),
            bias: self.bias.map(|b| b.to_dtype(dtype)),
        }
    }
}

/// The gradients of one backward pass, shaped like what they differentiate.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2dGrads {
    /// Gradient with respect to the input (its shape, 3-D or 4-D).
    pub grad_input: Tensor,
    /// Gradient with respect to the weight.
    pub grad_weight: Tensor,
    /// Gradient with respect to the bias, when the layer has one.
    pub grad_bias: Option<Tensor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_init_is_bounded_by_one_over_sqrt_fan_in() {
        // fan_in = (4 / 2) * 3 * 5 = 30, as PyTorch reports for groups=2, k=(3,5).
        let config = Conv2dConfig::new(4, 6, (3, 5)).with_groups(2);
        let layer = Conv2d::new(config, 7).unwrap();
        let bound = 1.0 / 30f32.sqrt();
        let w = layer.weight().data();
        assert!(w.iter().all(|v| v.abs() < bound));
        // A uniform sample of 180 values reaches close to both ends.
        assert!(w.iter().cloned().fold(f32::MIN, f32::max) > 0.8 * bound);
        assert!(w.iter().cloned().fold(f32::MAX, f32::min) < -0.8 * bound);
        assert!(layer.bias().unwrap().data().iter().all(|v| v.abs() < bound));
        assert_eq!(
            Conv2d::new(config, 7).unwrap(),
            layer,
            "same seed, same layer"
        );
        assert_ne!(Conv2d::new(config, 8).unwrap(), layer);
    }

    #[test]
    fn a_layer_converts_to_a_dtype_and_its_bias_must_agree() {
        let config = Conv2dConfig::new(2, 3, 3);
        let layer = Conv2d::new(config, 1).unwrap().to_dtype(DType::F16);
        assert_eq!(layer.dtype(), DType::F16);
        assert_eq!(layer.bias().unwrap().dtype(), DType::F16);
        assert!((layer.weight().data().iter()).all(|&v| DType::F16.round(v) == v));
        let err = Conv2d::from_weights(
            config,
            layer.weight().clone(),
            Some(Tensor::zeros([3]).unwrap()),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Input type (c10::Half) and bias type (float) should be the same"
        );
    }

    #[test]
    fn zero_fan_in_gives_zero_bias() {
        let layer = Conv2d::new(Conv2dConfig::new(0, 3, 3), 1).unwrap();
        assert_eq!(layer.weight().numel(), 0);
        assert_eq!(layer.bias().unwrap().data(), &[0.0; 3]);
    }

    #[test]
    fn weights_must_match_the_config() {
        let config = Conv2dConfig::new(3, 6, 3);
        let w = Tensor::zeros([6, 3, 3, 3]).unwrap();
        let err =
            Conv2d::from_weights(config, w.clone(), Some(Tensor::zeros([5]).unwrap())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Given weight of size [6, 3, 3, 3], expected bias to be 1-dimensional with 6 elements, but got bias of size [5] instead"
        );
        let err = Conv2d::from_weights(config, w.clone(), None).unwrap_err();
        assert!(matches!(
            err,
            Conv2dError::BiasPresence { configured: true }
        ));
        let err =
            Conv2d::from_weights(config, Tensor::zeros([6, 3, 3, 2]).unwrap(), None).unwrap_err();
        assert!(matches!(err, Conv2dError::WeightShape { .. }));
    }
}
