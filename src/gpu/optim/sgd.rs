//! `torch.optim.SGD` on the GPU (`shaders/sgd.wgsl`).

use std::collections::HashMap;

use bytemuck::{Pod, Zeroable};

use super::Parameter;
use crate::error::{Conv2dError, Result};
use crate::gpu::conv::params::to_u32;
use crate::gpu::runtime::buffers::output;
use crate::gpu::runtime::registry::Binding::{ReadOnly, ReadWrite, Uniform};
use crate::gpu::runtime::{PooledBuffer, Recorder, WrittenKernel};

/// The uniform block of `shaders/sgd.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
struct SgdParams {
    lr: f32,
    momentum: f32,
    dampening: f32,
    weight_decay: f32,
    len: u32,
    flags: u32,
    _pad0: u32,
    _pad1: u32,
}

/// SGD update: params, grad, value, momentum buffer.
const SGD: WrittenKernel = WrittenKernel::new(
    "sgd",
    include_str!("../../../shaders/sgd.wgsl"),
    64,
    &[Uniform, ReadOnly, ReadWrite, ReadWrite],
);

/// `torch.optim.SGD`'s hyper-parameters, with its defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdConfig {
    /// Learning rate (default 0.001).
    pub lr: f32,
    /// Momentum factor (default 0: no momentum buffer).
    pub momentum: f32,
    /// Dampening for momentum (default 0).
    pub dampening: f32,
    /// Weight decay, L2 penalty (default 0).
    pub weight_decay: f32,
    /// Nesterov momentum (default off; needs momentum and zero dampening).
    pub nesterov: bool,
    /// Maximise the objective instead of minimising it (default off).
    pub maximize: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
        }
    }
}

/// Stochastic gradient descent with PyTorch's update rule, its momentum
/// buffers on the GPU, one per parameter of each layer it steps.
///
/// ```no_run
/// # use wgpu_conv2d::*;
/// # fn main() -> Result<()> {
/// # let ctx = GpuContext::new()?;
/// # let mut layer = GpuConv2d::new(&ctx, &Conv2d::new(Conv2dConfig::new(1, 1, 3), 0)?)?;
/// # let (x, grad_y) = (GpuTensor::upload(&ctx, &Tensor::zeros([1, 1, 5, 5])?)?, GpuTensor::upload(&ctx, &Tensor::zeros([1, 1, 3, 3])?)?);
/// let mut sgd = Sgd::new(SgdConfig { lr: 0.05, momentum: 0.9, ..SgdConfig::default() })?;
/// let grads = layer.backward_gpu(&x, &grad_y, GradMask::PARAMETERS)?;
/// sgd.step(&mut layer, &grads)?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Sgd {
    config: SgdConfig,
    momentum_buffers: HashMap<(u64, u8), PooledBuffer>,
}

impl Sgd {
    /// An optimiser with `config`, checked as PyTorch checks it.
    pub fn new(config: SgdConfig) -> Result<Self> {
        let invalid = |message: String| Err(Conv2dError::InvalidOptimizer(message));
        if config.lr.is_nan() || config.lr < 0.0 {
            return invalid(format!("Invalid learning rate: {}", config.lr));
        }
        if config.momentum.is_nan() || config.momentum < 0.0 {
            return invalid(format!("Invalid momentum value: {}", config.momentum));
        }
        if config.weight_decay.is_nan() || config.weight_decay < 0.0 {
            return invalid(format!(
                "Invalid weight_decay value: {}",
                config.weight_decay
            ));
        }
        if config.nesterov && (config.momentum <= 0.0 || config.dampening != 0.0) {
            return invalid("Nesterov momentum requires a momentum and zero dampening".into());
        }
        Ok(Self {
            config,
            momentum_buffers: HashMap::new(),
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }

    /// Records one step on `parameters` into `rec`.
    pub(crate) fn encode(&mut self, rec: &mut Recorder, parameters: &[Parameter]) -> Result<()> {
        let ctx = rec.context().clone();
        for parameter in parameters {
            let started = self.momentum_buffers.contains_key(&parameter.key);
            let c = &self.config;
            let buffer = self
                .momentum_buffers
                .entry(parameter.key)
                .or_insert_with(|| output(&ctx, "momentum buffer", parameter.len));
            let params = SgdParams {
                lr: c.lr,
                momentum: c.momentum,
                dampening: c.dampening,
                weight_decay: c.weight_decay,
                len: to_u32("parameters", parameter.len)?,
                flags: u32::from(c.nesterov)
                    | u32::from(c.maximize) << 1
                    | u32::from(!started) << 2,
                _pad0: 0,
                _pad1: 0,
            };
            let params = rec.uniform("sgd", &params);
            rec.dispatch(
                &SGD.spec(),
                &[&params, &parameter.grad, parameter.value, buffer],
                parameter.len as u64,
            )?;
        }
        Ok(())
    }
}

/// Records plain SGD, `value -= lr · grad`, over the first `len` elements
/// (for [`GpuConv2d::sgd_step`]).
pub(crate) fn encode_plain_sgd(
    rec: &mut Recorder,
    grad: &wgpu::Buffer,
    value: &wgpu::Buffer,
    len: usize,
    lr: f32,
) -> Result<()> {
    let params = SgdParams {
        lr,
        momentum: 0.0,
        dampening: 0.0,
        weight_decay: 0.0,
        len: to_u32("parameters", len)?,
        flags: 0,
        _pad0: 0,
        _pad1: 0,
    };
    let params = rec.uniform("sgd", &params);
    // Without momentum the buffer is never read or written.
    let unused = rec.scratch("no momentum buffer", 1);
    rec.dispatch(&SGD.spec(), &[&params, grad, value, &unused], len as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::runtime::registry::tests::assert_mirrors;
    use crate::gpu::runtime::registry::tests::validate;

    #[test]
    fn the_kernel_validates_and_its_uniform_mirrors_wgsl() {
        validate(&SGD.spec());
        assert_mirrors::<SgdParams>(
            SGD.source,
            "SgdParams",
            &[
                "lr",
                "momentum",
                "dampening",
                "weight_decay",
                "len",
                "flags",
                "_pad0",
                "_pad1",
            ],
        );
    }

    #[test]
    fn hyper_parameters_are_checked_as_pytorch_checks_them() {
        let err = |config| Sgd::new(config).unwrap_err().to_string();
        assert_eq!(
            err(SgdConfig {
                lr: -0.1,
                ..SgdConfig::default()
            }),
            "Invalid learning rate: -0.1"
        );
        assert_eq!(
            err(SgdConfig {
                nesterov: true,
                ..SgdConfig::default()
            }),
            "Nesterov momentum requires a momentum and zero dampening"
        );
        assert_eq!(
            err(SgdConfig {
                momentum: -1.0,
                ..SgdConfig::default()
            }),
            "Invalid momentum value: -1"
        );
    }
}
