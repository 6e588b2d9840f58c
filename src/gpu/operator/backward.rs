//! The gradients of [`GpuConv2d`] and its SGD step, on the GPU: host tensors
//! in and out, or tensors that stay on the GPU.

use super::GpuConv2d;
use crate::error::{Conv2dError, Result};
use crate::geometry::Conv2dGeometry;
use crate::gpu::conv::backward::BackwardPass;
#[cfg(not(target_arch = "wasm32"))]
use crate::gpu::conv::select::BackwardAlgorithm;
use crate::gpu::convert::{Conversion, encode, pack, unpack};
use crate::gpu::optim::encode_plain_sgd;
use crate::gpu::runtime::buffers::{Scopes, output, read_mapped, staging};
use crate::gpu::runtime::{Blocks, PendingTime, Recorder};
use crate::gpu::tensor::GpuTensor;
use crate::layer::Conv2dGrads;
use crate::tensor::{Tensor, try_filled};

/// Which gradients a backward pass computes, as PyTorch's `output_mask` of
/// `convolution_backward`: a network's first layer needs no input gradient,
/// a frozen layer no weight gradient. The ones left out cost nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GradMask {
    /// The gradient with respect to the input.
    pub input: bool,
    /// The gradient with respect to the weight.
    pub weight: bool,
    /// The gradient with respect to the bias (ignored for a layer without one).
    pub bias: bool,
}

impl GradMask {
    /// Every gradient.
    pub const ALL: GradMask = GradMask {
        input: true,
        weight: true,
        bias: true,
    };

    /// The weight and bias gradients only (a first layer, or an optimiser step).
    pub const PARAMETERS: GradMask = GradMask {
        input: false,
        weight: true,
        bias: true,
    };
}

impl Default for GradMask {
    fn default() -> Self {
        GradMask::ALL
    }
}

/// Gradients on the GPU, each present where the [`GradMask`] asked for it
/// (the bias gradient also only for a layer with a bias).
#[derive(Debug)]
pub struct GpuGrads {
    /// Gradient with respect to the input, shaped like it.
    pub grad_input: Option<GpuTensor>,
    /// Gradient with respect to the weight.
    pub grad_weight: Option<GpuTensor>,
    /// Gradient with respect to the bias.
    pub grad_bias: Option<GpuTensor>,
}

/// Where one backward call writes each gradient (from element 0); a gradient
/// without a destination is not computed.
struct Destinations<'a> {
    grad_input: Option<&'a wgpu::Buffer>,
    grad_weight: Option<&'a wgpu::Buffer>,
    grad_bias: Option<&'a wgpu::Buffer>,
}

impl GpuConv2d {
    /// Gradients of `Σ grad_output · self(input)` with respect to the input, the
    /// weight and the bias (blocking). `grad_output` has the output's shape.
    ///
    /// With the default [`BackwardAlgorithm::Auto`](crate::BackwardAlgorithm),
    /// the input gradient runs on the forward kernels with stride 1 (a
    /// convolution of `grad_output` with the flipped, channel-swapped weight)
    /// and the weight gradient on a register-blocked kernel; the direct gather
    /// kernels run the rest. The input gradient's forward kernels are those
    /// `Auto` picks at the layer's [`precision`](Self::precision) (Winograd
    /// may run them under `Precision::High`). Large tensors are split into blocks that each fit
    /// one storage binding, as in [`forward`](Self::forward). Deterministic:
    /// the same inputs on the same context give the same bits. Native only:
    /// on the web use [`backward_async`](Self::backward_async).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn backward(&self, input: &Tensor, grad_output: &Tensor) -> Result<Conv2dGrads> {
        pollster::block_on(self.backward_async(input, grad_output))
    }

    /// Gradients of `Σ grad_output · self(input)`; see [`backward`](Self::backward).
    pub async fn backward_async(
        &self,
        input: &Tensor,
        grad_output: &Tensor,
    ) -> Result<Conv2dGrads> {
        self.ctx.check_alive()?;
        let finite = self.weight_is_finite().await?;
        let pass = self
            .backward_pass(input.shape(), grad_output.shape(), finite)
            .await?;
        self.check_dtype(input.dtype(), Some(grad_output.dtype()))?;
        let weight_len = pass.geometry.weight_len();
        let bias_len = usize::from(self.config.bias) * self.config.out_channels;
        let (gx, gw, gb) = if grad_output.numel() == 0 {
            // N = 0 or C_in = 0: PyTorch's gradients are all zeros.
            (
                try_filled("grad_input", input.numel(), 0.0)?,
                try_filled("grad_weight", weight_len, 0.0)?,
                try_filled("grad_bias", bias_len, 0.0)?,
            )
        } else if self.dtype.is_half() {
            self.backward_half(&pass, input, grad_output).await?
        } else {
            let scopes = Scopes::push(&self.ctx);
            let mut rec = Recorder::new(&self.ctx);
            // One read-back: grad_input, then grad_weight, then grad_bias.
            let total = input.numel() + weight_len + bias_len;
            let readback = staging(&self.ctx, total);
            let grad_weight = rec.scratch("grad_weight", weight_len);
            let grad_bias = rec.scratch("grad_bias", bias_len);
            self.encode_backward(
                &mut rec,
                &pass,
                [
                    &mut Blocks::host("input", input.data()),
                    &mut Blocks::host("grad_output", grad_output.data()),
                ],
                Destinations {
                    grad_input: Some(&readback),
                    grad_weight: Some(&grad_weight),
                    grad_bias: self.config.bias.then_some(&grad_bias),
                },
            )?;
            rec.copy(&grad_weight, 0, &readback, input.numel(), weight_len);
            rec.copy(
                &grad_bias,
                0,
                &readback,
                input.numel() + weight_len,
                bias_len,
            );
            rec.submit();
            self.ctx.release_builds_ahead();
            scopes.pop().await?;
            let mut data = read_mapped(&self.ctx, &readback, total).await?;
            let gb = data.split_off(input.numel() + weight_len);
            let gw = data.split_off(input.numel());
            (data, gw, gb)
        };
        let dtype = self.dtype;
        let tensor = |shape: &[usize], data| -> Result<Tensor> {
            Ok(Tensor::new(shape, data)?.with_dtype_unchecked(dtype))
        };
        Ok(Conv2dGrads {
            grad_input: tensor(input.shape(), gx)?,
            grad_weight: tensor(&self.config.weight_shape(), gw)?,
            grad_bias: self
                .config
                .bias
                .then(|| tensor(&[bias_len], gb))
                .transpose()?,
        })
    }

    /// [`backward_async`](Self::backward_async) of a half layer: input and
    /// output gradient go up packed and are widened on the GPU, the three
    /// gradients come back rounded once and packed.
    async fn backward_half(
        &self,
        pass: &BackwardPass,
        input: &Tensor,
        grad_output: &Tensor,
    ) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
        let dtype = self.dtype;
        let lens = [
            input.numel(),
            pass.geometry.weight_len(),
            usize::from(self.config.bias) * self.config.out_channels,
        ];
        let slots = lens.map(|len| GpuTensor::slots(dtype, len));
        let scopes = Scopes::push(&self.ctx);
        let mut rec = Recorder::new(&self.ctx);
        let x = rec.upload("input", &pack(dtype, input.data()));
        let gy = rec.upload("grad_output", &pack(dtype, grad_output.data()));
        let x = self.widened(&mut rec, &x, input.numel())?;
        let gy = self.widened(&mut rec, &gy, grad_output.numel())?;
        let grads = slots.map(|s| rec.scratch("gradient", s));
        self.encode_backward(
            &mut rec,
            pass,
            [
                &mut Blocks::gpu("input", &x, input.numel()),
                &mut Blocks::gpu("grad_output", &gy, grad_output.numel()),
            ],
            Destinations {
                grad_input: Some(&grads[0]),
                grad_weight: Some(&grads[1]),
                grad_bias: self.config.bias.then_some(&grads[2]),
            },
        )?;
        // One read-back: grad_input, then grad_weight, then grad_bias.
        let readback = staging(&self.ctx, slots.iter().sum());
        let mut at = 0;
        for (grad, len) in grads.iter().zip(slots) {
            rec.copy(grad, 0, &readback, at, len);
            at += len;
        }
        rec.submit();
        self.ctx.release_builds_ahead();
        scopes.pop().await?;
        let mut words = read_mapped(&self.ctx, &readback, at).await?;
        let gb = words.split_off(slots[0] + slots[1]);
        let gw = words.split_off(slots[0]);
        Ok((
            unpack(dtype, &words, lens[0]),
            unpack(dtype, &gw, lens[1]),
            unpack(dtype, &gb, lens[2]),
        ))
    }

    /// The gradients `mask` asks for, with input, output gradient and results
    /// on the GPU: one submission, nothing read back, buffers from the
    /// context's pool. As with [`forward_gpu`](Self::forward_gpu), the work
    /// may still run when this returns; later submissions run after it.
    /// Blocking until the device has checked the call; native only.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn backward_gpu(
        &self,
        input: &GpuTensor,
        grad_output: &GpuTensor,
        mask: GradMask,
    ) -> Result<GpuGrads> {
        pollster::block_on(self.backward_gpu_async(input, grad_output, mask))
    }

    /// [`backward_gpu`](Self::backward_gpu), waiting for the device's error
    /// reports without blocking the thread.
    pub async fn backward_gpu_async(
        &self,
        input: &GpuTensor,
        grad_output: &GpuTensor,
        mask: GradMask,
    ) -> Result<GpuGrads> {
        let finite = !mask.input || self.weight_is_finite().await?;
        self.check_gpu_tensors([input, grad_output])?;
        let pass = self
            .backward_pass(input.shape(), grad_output.shape(), finite)
            .await?;
        let (grads, _, scopes) =
            self.submit_backward_gpu(&pass, input, grad_output, mask, false)?;
        scopes.await?;
        Ok(grads)
    }

    /// [`backward_gpu`](Self::backward_gpu), and the kernel time in
    /// milliseconds from GPU timestamp queries (`None` where the device has
    /// none). Waits for the GPU to finish (blocking; native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn backward_gpu_timed(
        &self,
        input: &GpuTensor,
        grad_output: &GpuTensor,
        mask: GradMask,
    ) -> Result<(GpuGrads, Option<f64>)> {
        pollster::block_on(self.backward_gpu_timed_async(input, grad_output, mask))
    }

    /// [`backward_gpu_timed`](Self::backward_gpu_timed) without blocking.
    pub async fn backward_gpu_timed_async(
        &self,
        input: &GpuTensor,
        grad_output: &GpuTensor,
        mask: GradMask,
    ) -> Result<(GpuGrads, Option<f64>)> {
        let finite = !mask.input || self.weight_is_finite().await?;
        self.check_gpu_tensors([input, grad_output])?;
        let pass = self
            .backward_pass(input.shape(), grad_output.shape(), finite)
            .await?;
        let (grads, pending, scopes) =
            self.submit_backward_gpu(&pass, input, grad_output, mask, true)?;
        scopes.await?;
        Ok((grads, self.wait_timed(pending).await?))
    }

    /// Checks that the device is alive and that `tensors` live on it.
    fn check_gpu_tensors(&self, tensors: [&GpuTensor; 2]) -> Result<()> {
        self.ctx.check_alive()?;
        for tensor in tensors {
            if !tensor.ctx.same_device(&self.ctx) {
                return Err(Conv2dError::ContextMismatch {
                    tensor: tensor.ctx.adapter_info().name.clone(),
                    layer: self.ctx.adapter_info().name.clone(),
                });
            }
        }
        Ok(())
    }

    /// Records and submits the GPU-resident backward `pass`; the returned future yields
    /// the errors the device reported for it.
    #[allow(clippy::type_complexity)]
    fn submit_backward_gpu(
        &self,
        pass: &BackwardPass,
        input: &GpuTensor,
        grad_output: &GpuTensor,
        mask: GradMask,
        timed: bool,
    ) -> Result<(
        GpuGrads,
        Option<PendingTime>,
        impl Future<Output = Result<()>> + wgpu::WasmNotSend + use<>,
    )> {
        self.check_dtype(input.dtype, Some(grad_output.dtype))?;
        let scopes = Scopes::push(&self.ctx);
        let tensor = |shape: Vec<usize>, label: &str| {
            let len = shape.iter().product();
            GpuTensor {
                buffer: output(&self.ctx, label, GpuTensor::slots(self.dtype, len)),
                shape,
                dtype: self.dtype,
                ctx: self.ctx.clone(),
            }
        };
        let grads = GpuGrads {
            grad_input: mask
                .input
                .then(|| tensor(input.shape().to_vec(), "grad_input")),
            grad_weight: mask
                .weight
                .then(|| tensor(self.config.weight_shape().to_vec(), "grad_weight")),
            grad_bias: (mask.bias && self.config.bias)
                .then(|| tensor(vec![self.config.out_channels], "grad_bias")),
        };
        let mut rec = if timed {
            Recorder::timed(&self.ctx)
        } else {
            Recorder::new(&self.ctx)
        };
        if grad_output.numel() == 0 {
            // N = 0 or C_in = 0: PyTorch's gradients are all zeros.
            for grad in [&grads.grad_input, &grads.grad_weight, &grads.grad_bias]
                .into_iter()
                .flatten()
            {
                rec.clear(&grad.buffer, GpuTensor::slots(grad.dtype, grad.numel()));
            }
        } else {
            let x = self.widened(&mut rec, &input.buffer, input.numel())?;
            let gy = self.widened(&mut rec, &grad_output.buffer, grad_output.numel())?;
            self.encode_backward(
                &mut rec,
                pass,
                [
                    &mut Blocks::gpu("input", &x, input.numel()),
                    &mut Blocks::gpu("grad_output", &gy, grad_output.numel()),
                ],
                Destinations {
                    grad_input: grads.grad_input.as_ref().map(|t| &*t.buffer),
                    grad_weight: grads.grad_weight.as_ref().map(|t| &*t.buffer),
                    grad_bias: grads.grad_bias.as_ref().map(|t| &*t.buffer),
                },
            )?;
        }
        let pending = rec.submit_timed();
        self.ctx.release_builds_ahead();
        Ok((grads, pending, scopes.pop()))
    }

    /// One step of plain SGD on the GPU: `w -= lr · ∂L/∂w` (and the bias) with
    /// `L = Σ grad_output · self(input)`. Nothing is read back; use
    /// [`to_layer`](Self::to_layer) to fetch the trained weights. Blocking;
    /// native only.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn sgd_step(&mut self, input: &Tensor, grad_output: &Tensor, lr: f32) -> Result<()> {
        pollster::block_on(self.sgd_step_async(input, grad_output, lr))
    }

    /// One step of plain SGD on the GPU; see [`sgd_step`](Self::sgd_step).
    pub async fn sgd_step_async(
        &mut self,
        input: &Tensor,
        grad_output: &Tensor,
        lr: f32,
    ) -> Result<()> {
        self.ctx.check_alive()?;
        // No input gradient here: the weight's finiteness does not matter.
        let pass = self
            .backward_pass(input.shape(), grad_output.shape(), true)
            .await?;
        self.check_dtype(input.dtype(), Some(grad_output.dtype()))?;
        if grad_output.numel() == 0 {
            return Ok(());
        }
        let scopes = Scopes::push(&self.ctx);
        let mut rec = Recorder::new(&self.ctx);
        let weight_len = pass.geometry.weight_len();
        let bias_len = self.config.out_channels;
        let dtype = self.dtype;
        // A half layer's inputs and gradients are its dtype's values (the
        // gradients rounded to it, as the half copy's backward gives them);
        // the update is the f32 master's.
        let rounded = |data: &[f32]| -> Vec<f32> { data.iter().map(|&v| dtype.round(v)).collect() };
        let (x, gy) = (rounded(input.data()), rounded(grad_output.data()));
        let grad_weight = rec.scratch("grad_weight", weight_len);
        let grad_bias = rec.scratch("grad_bias", bias_len);
        self.encode_backward_wide(
            &mut rec,
            &pass,
            [
                &mut Blocks::host("input", &x),
                &mut Blocks::host("grad_output", &gy),
            ],
            Destinations {
                grad_input: None,
                grad_weight: Some(&grad_weight),
                grad_bias: self.config.bias.then_some(&grad_bias),
            },
        )?;
        let (grad_weight, grad_bias) = if dtype.is_half() {
            let rounded = [
                rec.scratch("grad_weight (rounded)", weight_len),
                rec.scratch("grad_bias (rounded)", bias_len),
            ];
            encode(
                &mut rec,
                dtype,
                Conversion::Round,
                [&grad_weight, &rounded[0]],
                weight_len,
            )?;
            if self.config.bias {
                encode(
                    &mut rec,
                    dtype,
                    Conversion::Round,
                    [&grad_bias, &rounded[1]],
                    bias_len,
                )?;
            }
            let [w, b] = rounded;
            (w, b)
        } else {
            (grad_weight, grad_bias)
        };
        encode_plain_sgd(&mut rec, &grad_weight, &self.weight, weight_len, lr)?;
        if self.config.bias {
            encode_plain_sgd(&mut rec, &grad_bias, &self.bias, bias_len, lr)?;
        }
        rec.submit();
        self.ctx.release_builds_ahead();
        // The blocked kernel's packed copy is stale now.
        self.parameters_changed();
        scopes.pop().await
    }

    /// Checks `grad_output_shape` against the output of an input of
    /// `input_shape` and cuts the call into chunks, or says which tensor is
    /// too large, before any GPU work. With a non-finite weight the input
    /// gradient runs on the direct gather: the transposed convolution would
    /// multiply the output gradient's zero padding by it (0 · inf is NaN),
    /// where PyTorch adds only the products of real outputs.
    async fn backward_pass(
        &self,
        input_shape: &[usize],
        grad_output_shape: &[usize],
        weight_finite: bool,
    ) -> Result<BackwardPass> {
        let geometry = Conv2dGeometry::new(&self.config, input_shape)?;
        geometry.check_grad_output(grad_output_shape)?;
        let input_len: usize = input_shape.iter().product();
        let bias_len = usize::from(self.config.bias) * self.config.out_channels;
        let gradients = input_len + geometry.weight_len() + bias_len;
        let mut kernels = self
            .backward_algorithm
            .kernels_on(&self.ctx, &geometry, self.precision())
            .await?;
        if !weight_finite && kernels.input.is_some() {
            if kernels.forced {
                return Err(Conv2dError::UnsupportedAlgorithm {
                    algorithm: "blocked (backward)",
                    reason: "its input gradient convolves the zero-padded output gradient, and the weight holds an infinite or NaN value (0 * inf is NaN where PyTorch adds nothing): use BackwardAlgorithm::Direct".into(),
                });
            }
            kernels.input = None;
        }
        // The input gradient's phases read a bfloat16 layer's values (its
        // output gradient and weight) as they are stored (see
        // `ForwardKernel::for_values_of`): the same bits, half the loads.
        if let Some((_, phases)) = kernels.input.as_mut() {
            for kernel in phases.iter_mut().flatten() {
                *kernel = kernel.for_values_of(self.dtype);
            }
        }
        #[cfg(not(target_arch = "wasm32"))]
        let kernels = if self.backward_algorithm == BackwardAlgorithm::Auto && !self.ctx.autotunes()
        {
            self.backward_while_building(&geometry, kernels)
        } else {
            kernels
        };
        BackwardPass::new(&self.ctx, geometry, gradients, kernels, self.dtype)
    }

    /// Records the gradients into `destinations` (the ones given, in the
    /// layer's dtype: a half dtype's computed in `f32` and rounded once into
    /// them) from blocks of the input and of the output gradient (`f32`).
    fn encode_backward(
        &self,
        rec: &mut Recorder,
        pass: &BackwardPass,
        blocks: [&mut Blocks; 2],
        destinations: Destinations,
    ) -> Result<()> {
        let lens = [
            pass.geometry.input_shape_4d().iter().product(),
            pass.geometry.weight_len(),
            self.config.out_channels,
        ];
        let given = [
            destinations.grad_input,
            destinations.grad_weight,
            destinations.grad_bias,
        ];
        let wide: Vec<Option<wgpu::Buffer>> = given
            .iter()
            .zip(lens)
            .map(|(d, len)| d.map(|d| self.wide_destination(rec, d, len)))
            .collect();
        self.encode_backward_wide(
            rec,
            pass,
            blocks,
            Destinations {
                grad_input: wide[0].as_ref(),
                grad_weight: wide[1].as_ref(),
                grad_bias: wide[2].as_ref(),
            },
        )?;
        for ((d, w), len) in given.iter().zip(&wide).zip(lens) {
            if let (Some(d), Some(w)) = (d, w) {
                self.finish_narrow(rec, w, d, len)?;
            }
        }
        Ok(())
    }

    /// Records the gradients in `f32` into `destinations` (the ones given).
    fn encode_backward_wide(
        &self,
        rec: &mut Recorder,
        pass: &BackwardPass,
        [inputs, grad_outputs]: [&mut Blocks; 2],
        destinations: Destinations,
    ) -> Result<()> {
        let call = self.call_params(rec, &pass.geometry)?;
        let [weight, _] = self.parameters()?;
        if destinations.grad_weight.is_some() || destinations.grad_bias.is_some() {
            pass.encode_param_grads(
                rec,
                &call,
                inputs,
                grad_outputs,
                destinations.grad_weight,
                destinations.grad_bias,
            )?;
        }
        if let Some(grad_input) = destinations.grad_input {
            pass.encode_grad_input(rec, &call, &weight, grad_outputs, grad_input)?;
        }
        Ok(())
    }
}
