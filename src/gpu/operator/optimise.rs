//! Stepping a layer's parameters with an optimiser.

use super::{GpuConv2d, GpuGrads};
use crate::error::{Conv2dError, Result};
use crate::gpu::convert::{Conversion, encode};
use crate::gpu::optim::{Adam, Parameter, Sgd};
use crate::gpu::runtime::Recorder;
use crate::gpu::runtime::buffers::Scopes;

impl GpuConv2d {
    /// The parameters that `grads` has gradients for (PyTorch skips a
    /// parameter whose gradient is `None`), checked against the layer; a
    /// half gradient is widened to `f32` in `rec` (the update is the `f32`
    /// master's).
    fn parameters_for<'a>(
        &'a self,
        rec: &mut Recorder,
        grads: &'a GpuGrads,
    ) -> Result<Vec<Parameter<'a>>> {
        let (id, [(weight, weight_len), (bias, bias_len)]) = self.parameter_buffers();
        let mut found = Vec::new();
        for (index, value, len, grad, what) in [
            (0, weight, weight_len, &grads.grad_weight, "grad_weight"),
            (1, bias, bias_len, &grads.grad_bias, "grad_bias"),
        ] {
            let Some(grad) = grad else { continue };
            if !grad.ctx.same_device(&self.ctx) {
                return Err(Conv2dError::ContextMismatch {
                    tensor: grad.ctx.adapter_info().name.clone(),
                    layer: self.ctx.adapter_info().name.clone(),
                });
            }
            if grad.numel() != len {
                return Err(Conv2dError::InvalidOptimizer(format!(
                    "{what} has {} elements, the layer's parameter {len}",
                    grad.numel()
                )));
            }
            let grad = if grad.dtype.is_half() {
                let wide = rec.scratch("gradient (f32)", len);
                encode(
                    rec,
                    grad.dtype,
                    Conversion::Widen,
                    [&grad.buffer, &wide],
                    len,
                )?;
                wide
            } else {
                wgpu::Buffer::clone(&grad.buffer)
            };
            found.push(Parameter {
                key: (id, index),
                value,
                len,
                grad,
            });
        }
        Ok(found)
    }

    /// Submits the update `encode` records for this layer's parameters with
    /// `grads`, and marks them changed; with `timed`, waits for it and
    /// returns its kernel time.
    async fn apply_update(
        &mut self,
        grads: &GpuGrads,
        timed: bool,
        encode: impl FnOnce(&mut Recorder, &[Parameter]) -> Result<()>,
    ) -> Result<Option<f64>> {
        let ctx = self.ctx.clone();
        ctx.check_alive()?;
        let scopes = Scopes::push(&ctx);
        let mut rec = if timed {
            Recorder::timed(&ctx)
        } else {
            Recorder::new(&ctx)
        };
        let recorded = self
            .parameters_for(&mut rec, grads)
            .and_then(|parameters| encode(&mut rec, &parameters));
        // Nothing is submitted when recording failed.
        let pending = recorded.is_ok().then(|| rec.submit_timed()).flatten();
        let reported = scopes.pop().await;
        recorded?;
        self.parameters_changed();
        reported?;
        if timed {
            self.wait_timed(pending).await
        } else {
            Ok(None)
        }
    }
}

impl Sgd {
    /// One step on `layer`'s weight and bias with `grads` (parameters without
    /// a gradient are left alone, as in PyTorch), on the GPU, one submission.
    /// Blocking until the device has checked it; native only.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn step(&mut self, layer: &mut GpuConv2d, grads: &GpuGrads) -> Result<()> {
        pollster::block_on(self.step_async(layer, grads))
    }

    /// [`step`](Self::step) without blocking.
    pub async fn step_async(&mut self, layer: &mut GpuConv2d, grads: &GpuGrads) -> Result<()> {
        layer
            .apply_update(grads, false, |rec, parameters| self.encode(rec, parameters))
            .await?;
        Ok(())
    }

    /// [`step`](Self::step), waiting for it to finish; its kernel time in
    /// milliseconds from GPU timestamp queries (`None` where the device has
    /// none). For the benchmarks, which are native only.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) async fn step_timed(
        &mut self,
        layer: &mut GpuConv2d,
        grads: &GpuGrads,
    ) -> Result<Option<f64>> {
        layer
            .apply_update(grads, true, |rec, parameters| self.encode(rec, parameters))
            .await
    }
}

impl Adam {
    /// One step on `layer`'s weight and bias with `grads` (parameters without
    /// a gradient are left alone, as in PyTorch), on the GPU, one submission.
    /// Blocking until the device has checked it; native only.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn step(&mut self, layer: &mut GpuConv2d, grads: &GpuGrads) -> Result<()> {
        pollster::block_on(self.step_async(layer, grads))
    }

    /// [`step`](Self::step) without blocking.
    pub async fn step_async(&mut self, layer: &mut GpuConv2d, grads: &GpuGrads) -> Result<()> {
        layer
            .apply_update(grads, false, |rec, parameters| self.encode(rec, parameters))
            .await?;
        Ok(())
    }
}
