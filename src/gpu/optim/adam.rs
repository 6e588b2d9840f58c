//! `torch.optim.Adam` and `AdamW` on the GPU (`shaders/adam.wgsl`).

use std::collections::HashMap;

use bytemuck::{Pod, Zeroable};

use super::Parameter;
use crate::error::{Conv2dError, Result};
use crate::gpu::conv::params::to_u32;
use crate::gpu::runtime::buffers::output;
use crate::gpu::runtime::registry::Binding::{ReadOnly, ReadWrite, Uniform};
use crate::gpu::runtime::{PooledBuffer, Recorder, WrittenKernel};

/// The uniform block of `shaders/adam.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
struct AdamParams {
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    step_size: f32,
    bias_correction2_sqrt: f32,
    len: u32,
    flags: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

/// Adam update: params, grad, value, exp_avg, exp_avg_sq.
const ADAM: WrittenKernel = WrittenKernel::new(
    "adam",
    include_str!("../../../shaders/adam.wgsl"),
    64,
    &[Uniform, ReadOnly, ReadWrite, ReadWrite, ReadWrite],
);

/// `torch.optim.Adam`'s (or, with `decoupled_weight_decay`, `AdamW`'s)
/// hyper-parameters, with Adam's defaults; [`AdamConfig::adamw`] gives AdamW's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    /// Learning rate (default 0.001).
    pub lr: f32,
    /// Decay rates of the first and second moment estimates (default (0.9, 0.999)).
    pub betas: (f32, f32),
    /// Added to the denominator for stability (default 1e-8).
    pub eps: f32,
    /// Weight decay (default 0 for Adam, 0.01 for AdamW).
    pub weight_decay: f32,
    /// AdamW: decay the weight directly, `w *= 1 − lr·weight_decay`, instead
    /// of adding `weight_decay·w` to the gradient (default off).
    pub decoupled_weight_decay: bool,
    /// Maximise the objective instead of minimising it (default off).
    pub maximize: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
            maximize: false,
        }
    }
}

impl AdamConfig {
    /// `torch.optim.AdamW`'s defaults: decoupled weight decay of 0.01.
    pub fn adamw() -> Self {
        Self {
            weight_decay: 1e-2,
            decoupled_weight_decay: true,
            ..Self::default()
        }
    }
}

/// Adam's state for one parameter.
#[derive(Debug)]
struct Moments {
    exp_avg: PooledBuffer,
    exp_avg_sq: PooledBuffer,
    step: u32,
}

/// Adam and AdamW with PyTorch's update rule (amsgrad off), their moments and
/// step counts on the GPU, per parameter of each layer they step.
#[derive(Debug)]
pub struct Adam {
    config: AdamConfig,
    moments: HashMap<(u64, u8), Moments>,
}

impl Adam {
    /// An optimiser with `config`, checked as PyTorch checks it.
    pub fn new(config: AdamConfig) -> Result<Self> {
        let invalid = |message: String| Err(Conv2dError::InvalidOptimizer(message));
        let (beta1, beta2) = config.betas;
        if config.lr.is_nan() || config.lr < 0.0 {
            return invalid(format!("Invalid learning rate: {}", config.lr));
        }
        if config.eps.is_nan() || config.eps < 0.0 {
            return invalid(format!("Invalid epsilon value: {}", config.eps));
        }
        if !(0.0..1.0).contains(&beta1) {
            return invalid(format!("Invalid beta parameter at index 0: {beta1}"));
        }
        if !(0.0..1.0).contains(&beta2) {
            return invalid(format!("Invalid beta parameter at index 1: {beta2}"));
        }
        if config.weight_decay.is_nan() || config.weight_decay < 0.0 {
            return invalid(format!(
                "Invalid weight_decay value: {}",
                config.weight_decay
            ));
        }
        Ok(Self {
            config,
            moments: HashMap::new(),
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }

    /// Records one step on `parameters` into `rec`.
    pub(crate) fn encode(&mut self, rec: &mut Recorder, parameters: &[Parameter]) -> Result<()> {
        let ctx = rec.context().clone();
        let c = self.config;
        for parameter in parameters {
            let moments = match self.moments.entry(parameter.key) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let fresh = Moments {
                        exp_avg: output(&ctx, "exp_avg", parameter.len),
                        exp_avg_sq: output(&ctx, "exp_avg_sq", parameter.len),
                        step: 0,
                    };
                    rec.clear(&fresh.exp_avg, parameter.len);
                    rec.clear(&fresh.exp_avg_sq, parameter.len);
                    e.insert(fresh)
                }
            };
            moments.step = moments.step.saturating_add(1);
            // As PyTorch computes them, in Python floats (f64).
            let t = f64::from(moments.step);
            let bias_correction1 = 1.0 - f64::from(c.betas.0).powf(t);
            let bias_correction2 = 1.0 - f64::from(c.betas.1).powf(t);
            let params = AdamParams {
                lr: c.lr,
                beta1: c.betas.0,
                beta2: c.betas.1,
                eps: c.eps,
                weight_decay: c.weight_decay,
                step_size: (f64::from(c.lr) / bias_correction1) as f32,
                bias_correction2_sqrt: bias_correction2.sqrt() as f32,
                len: to_u32("parameters", parameter.len)?,
                flags: u32::from(c.decoupled_weight_decay) | u32::from(c.maximize) << 1,
                _pad0: 0,
                _pad1: 0,
                _pad2: 0,
            };
            let params = rec.uniform("adam", &params);
            rec.dispatch(
                &ADAM.spec(),
                &[
                    &params,
                    &parameter.grad,
                    parameter.value,
                    &moments.exp_avg,
                    &moments.exp_avg_sq,
                ],
                parameter.len as u64,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::runtime::registry::tests::assert_mirrors;
    use crate::gpu::runtime::registry::tests::validate;

    #[test]
    fn the_kernel_validates_and_its_uniform_mirrors_wgsl() {
        validate(&ADAM.spec());
        assert_mirrors::<AdamParams>(
            ADAM.source,
            "AdamParams",
            &[
                "lr",
                "beta1",
                "beta2",
                "eps",
                "weight_decay",
                "step_size",
                "bias_correction2_sqrt",
                "len",
                "flags",
                "_pad0",
                "_pad1",
                "_pad2",
            ],
        );
    }

    #[test]
    fn hyper_parameters_are_checked_as_pytorch_checks_them() {
        let err = |config| Adam::new(config).unwrap_err().to_string();
        assert_eq!(
            err(AdamConfig {
                betas: (1.0, 0.999),
                ..AdamConfig::default()
            }),
            "Invalid beta parameter at index 0: 1"
        );
        assert_eq!(
            err(AdamConfig {
                eps: -1.0,
                ..AdamConfig::default()
            }),
            "Invalid epsilon value: -1"
        );
        assert!(Adam::new(AdamConfig::adamw()).is_ok());
    }
}
