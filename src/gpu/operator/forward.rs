//! The forward pass of [`GpuConv2d`]: host tensors in and out, or tensors that
//! stay on the GPU.

use super::GpuConv2d;
use crate::error::{Conv2dError, Result};
use crate::geometry::Conv2dGeometry;
use crate::gpu::conv::forward::{ForwardBuffers, ForwardPass, WeightLayout};
#[cfg(not(target_arch = "wasm32"))]
use crate::gpu::conv::select::Algorithm;
use crate::gpu::convert::{pack, unpack};
use crate::gpu::runtime::buffers::{Scopes, output, read_mapped, staging};
use crate::gpu::runtime::{PendingTime, Recorder};
use crate::gpu::tensor::GpuTensor;
use crate::tensor::Tensor;

impl GpuConv2d {
    /// `layer(input)` on the GPU (blocking). The input is `(N, C, H, W)` or
    /// unbatched `(C, H, W)`; the output has the same rank. Native only: on
    /// the web use [`forward_async`](Self::forward_async).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn forward(&self, input: &Tensor) -> Result<Tensor> {
        pollster::block_on(self.forward_async(input))
    }

    /// `layer(input)` on the GPU: upload, compute and read back in one submission.
    ///
    /// Tensors larger than one storage binding are split over batch items and
    /// channel blocks (see [`GpuContext::max_binding_bytes`](crate::GpuContext::max_binding_bytes)),
    /// for every algorithm.
    pub async fn forward_async(&self, input: &Tensor) -> Result<Tensor> {
        self.ctx.check_alive()?;
        // PyTorch checks the bias's dtype before anything else, the weight's
        // after the shapes.
        if self.config.bias {
            self.check_dtype(input.dtype(), None)?;
        }
        let pass = self.prepare(input.shape()).await?;
        self.check_dtype(input.dtype(), None)?;
        let dtype = self.dtype;
        if pass.elements == 0 {
            return Ok(Tensor::zeros(pass.output_shape.clone())?.with_dtype_unchecked(dtype));
        }
        let scopes = Scopes::push(&self.ctx);
        // A half dtype travels packed both ways.
        let slots = GpuTensor::slots(dtype, pass.elements);
        let readback = staging(&self.ctx, slots);
        let mut rec = Recorder::new(&self.ctx);
        let input = if dtype.is_half() {
            rec.upload("input", &pack(dtype, input.data()))
        } else {
            rec.upload("input", input.data())
        };
        let out = rec.scratch("output", slots);
        self.encode(&mut rec, &pass, &input, &out)?;
        rec.copy(&out, 0, &readback, 0, slots);
        rec.submit();
        self.ctx.release_builds_ahead();
        scopes.pop().await?;
        let mut data = read_mapped(&self.ctx, &readback, slots).await?;
        if dtype.is_half() {
            data = unpack(dtype, &data, pass.elements);
        }
        Ok(Tensor::new(pass.output_shape.clone(), data)?.with_dtype_unchecked(dtype))
    }

    /// `layer(input)` with input and output on the GPU: one submission, no
    /// read-back, buffers from the context's pool. The GPU work may still be
    /// running when this returns; later submissions on the context (another
    /// layer, [`GpuTensor::download`]) run after it. Blocking until the
    /// device has checked the call; native only.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn forward_gpu(&self, input: &GpuTensor) -> Result<GpuTensor> {
        pollster::block_on(self.forward_gpu_async(input))
    }

    /// [`forward_gpu`](Self::forward_gpu), waiting for the device's error
    /// reports without blocking the thread.
    pub async fn forward_gpu_async(&self, input: &GpuTensor) -> Result<GpuTensor> {
        let (output, _, scopes) = self.submit_forward_gpu(input, false).await?;
        scopes.await?;
        Ok(output)
    }

    /// [`forward_gpu`](Self::forward_gpu), and the kernel time in milliseconds
    /// measured with GPU timestamp queries (`None` where the device has none).
    /// Waits for the GPU to finish (blocking; native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn forward_gpu_timed(&self, input: &GpuTensor) -> Result<(GpuTensor, Option<f64>)> {
        pollster::block_on(self.forward_gpu_timed_async(input))
    }

    /// [`forward_gpu_timed`](Self::forward_gpu_timed) without blocking.
    pub async fn forward_gpu_timed_async(
        &self,
        input: &GpuTensor,
    ) -> Result<(GpuTensor, Option<f64>)> {
        let (output, pending, scopes) = self.submit_forward_gpu(input, true).await?;
        scopes.await?;
        Ok((output, self.wait_timed(pending).await?))
    }

    /// Records and submits a GPU-resident forward; the returned future yields
    /// the errors the device reported for it.
    #[allow(clippy::type_complexity)]
    async fn submit_forward_gpu(
        &self,
        input: &GpuTensor,
        timed: bool,
    ) -> Result<(
        GpuTensor,
        Option<PendingTime>,
        impl Future<Output = Result<()>> + wgpu::WasmNotSend + use<>,
    )> {
        self.ctx.check_alive()?;
        if !input.ctx.same_device(&self.ctx) {
            return Err(Conv2dError::ContextMismatch {
                tensor: input.ctx.adapter_info().name.clone(),
                layer: self.ctx.adapter_info().name.clone(),
            });
        }
        if self.config.bias {
            self.check_dtype(input.dtype, None)?;
        }
        let pass = self.prepare(input.shape()).await?;
        self.check_dtype(input.dtype, None)?;
        let scopes = Scopes::push(&self.ctx);
        let out = output(
            &self.ctx,
            "output",
            GpuTensor::slots(self.dtype, pass.elements),
        );
        let mut pending = None;
        if pass.elements > 0 {
            let mut rec = if timed {
                Recorder::timed(&self.ctx)
            } else {
                Recorder::new(&self.ctx)
            };
            self.encode(&mut rec, &pass, &input.buffer, &out)?;
            pending = rec.submit_timed();
            self.ctx.release_builds_ahead();
        }
        let output = GpuTensor {
            buffer: out,
            shape: pass.output_shape.clone(),
            dtype: self.dtype,
            ctx: self.ctx.clone(),
        };
        Ok((output, pending, scopes.pop()))
    }

    /// Checks one forward call and cuts it into chunks, before any GPU work.
    pub(super) async fn prepare(&self, input_shape: &[usize]) -> Result<ForwardPass> {
        let geometry = Conv2dGeometry::new(&self.config, input_shape)?;
        let kernel = self
            .algorithm
            .kernel_on(&self.ctx, &geometry, self.config.bias, self.precision())
            .await?;
        let kernel = kernel.for_values_of(self.dtype);
        #[cfg(not(target_arch = "wasm32"))]
        let kernel = if self.algorithm == Algorithm::Auto && !self.ctx.autotunes() {
            self.while_building(&geometry, kernel)
        } else {
            kernel
        };
        ForwardPass::new(&self.ctx, geometry, kernel)
    }

    /// Records `pass` from `input` into `output` (both whole tensors of the
    /// layer's dtype; a half dtype's read and rounded by the kernel itself
    /// where it can ([`ForwardPass::in_storage`]), else widened first and
    /// rounded once at the end).
    fn encode(
        &self,
        rec: &mut Recorder,
        pass: &ForwardPass,
        input: &wgpu::Buffer,
        output: &wgpu::Buffer,
    ) -> Result<()> {
        let call = self.call_params(rec, &pass.geometry)?;
        let [weight, bias] = self.parameters()?;
        let weight = match pass.kernel.weight_layout(&pass.geometry) {
            Some(layout) => self.packed_weight(pass, layout, &weight)?,
            None => weight,
        };
        if let Some(native) = pass.in_storage(self.dtype) {
            return native.encode(
                rec,
                &ForwardBuffers {
                    call: &call,
                    input,
                    padded: None,
                    weight: &weight,
                    bias: &bias,
                    output,
                },
            );
        }
        let input_len = pass.geometry.input_shape_4d().iter().product();
        let input = self.widened(rec, input, input_len)?;
        let wide = self.wide_destination(rec, output, pass.elements);
        pass.encode(
            rec,
            &ForwardBuffers {
                call: &call,
                input: &input,
                padded: None,
                weight: &weight,
                bias: &bias,
                output: &wide,
            },
        )?;
        self.finish_narrow(rec, &wide, output, pass.elements)
    }

    /// The weight in `layout` (of `len` elements), as the pass's kernel reads
    /// it: made (in a submission of its own) when the weight is new or
    /// changed, else the cached one.
    fn packed_weight(
        &self,
        pass: &ForwardPass,
        (layout, len): (WeightLayout, usize),
        weight: &wgpu::Buffer,
    ) -> Result<wgpu::Buffer> {
        let mut cached = self.packed_weight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, packed)) = cached.iter().find(|(l, _)| *l == layout) {
            return Ok(wgpu::Buffer::clone(packed));
        }
        let packed = output(&self.ctx, "packed weight", len);
        let mut rec = Recorder::new(&self.ctx);
        let call = self.call_params(&mut rec, &pass.geometry)?;
        pass.kernel
            .encode_pack(&mut rec, &pass.geometry, &call, (weight, false), &packed)?;
        rec.submit();
        let handle = wgpu::Buffer::clone(&packed);
        cached.push((layout, packed));
        Ok(handle)
    }
}
