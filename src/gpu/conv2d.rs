//! `GpuConv2d`: a Conv2d layer whose weight and bias live on the GPU.

use std::sync::Mutex;

use super::algorithm::Algorithm;
use super::blocked;
use super::buffers::{Scopes, check_buffer_size, check_fits, output, read_mapped, staging, upload};
use super::context::GpuContext;
use super::params::ConvParams;
use super::plan::{Chunk, plan, plan_with_input_plane};
use super::pool::PooledBuffer;
use super::recorder::{PendingTime, Recorder};
use super::tensor::GpuTensor;
use crate::config::Conv2dConfig;
use crate::error::{Conv2dError, Result};
use crate::geometry::Conv2dGeometry;
use crate::layer::Conv2d;
use crate::tensor::{Tensor, checked_numel};

/// A [`Conv2d`] layer on the GPU. Weight and bias are uploaded once, at
/// construction, and stay on the GPU (training updates them there, see
/// [`sgd_step`](Self::sgd_step)); each forward uploads the input, runs the
/// direct kernel (one invocation per output element) and reads the result back.
///
/// `Send + Sync`: one operator may serve many threads.
#[derive(Debug)]
pub struct GpuConv2d {
    pub(super) ctx: GpuContext,
    pub(super) config: Conv2dConfig,
    pub(super) weight: PooledBuffer,
    pub(super) bias: PooledBuffer,
    pub(super) algorithm: Algorithm,
    /// The weight as the blocked kernel reads it, packed on first use and
    /// dropped when training changes the weight.
    pub(super) packed_weight: Mutex<Option<PooledBuffer>>,
}

impl GpuConv2d {
    /// Uploads `layer`'s weight and bias to the context's device.
    pub fn new(ctx: &GpuContext, layer: &Conv2d) -> Result<Self> {
        pollster::block_on(Self::new_async(ctx, layer))
    }

    /// Uploads `layer`'s weight and bias to the context's device.
    pub async fn new_async(ctx: &GpuContext, layer: &Conv2d) -> Result<Self> {
        ctx.check_alive()?;
        let bias_len = layer.bias().map_or(0, Tensor::numel);
        check_fits(
            ctx,
            &[("weight", layer.weight().numel()), ("bias", bias_len)],
        )?;
        let scopes = Scopes::push(ctx);
        let weight = upload(ctx, "weight", layer.weight().data());
        let bias = upload(ctx, "bias", layer.bias().map_or(&[][..], Tensor::data));
        scopes.pop().await?;
        Ok(Self {
            ctx: ctx.clone(),
            config: *layer.config(),
            weight,
            bias,
            algorithm: Algorithm::Auto,
            packed_weight: Mutex::new(None),
        })
    }

    /// The layer's configuration.
    pub fn config(&self) -> &Conv2dConfig {
        &self.config
    }

    /// The context it runs on.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// Downloads the current weight and bias (changed by training) as a [`Conv2d`].
    pub fn to_layer(&self) -> Result<Conv2d> {
        pollster::block_on(self.to_layer_async())
    }

    /// Downloads the current weight and bias (changed by training) as a [`Conv2d`].
    pub async fn to_layer_async(&self) -> Result<Conv2d> {
        self.ctx.check_alive()?;
        let weight_len = self.config.weight_shape().iter().product::<usize>();
        let bias_len = if self.config.bias {
            self.config.out_channels
        } else {
            0
        };
        let scopes = Scopes::push(&self.ctx);
        let readback = staging(&self.ctx, weight_len + bias_len);
        let mut encoder = self
            .ctx
            .device()
            .create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(&self.weight, 0, &readback, 0, weight_len as u64 * 4);
        encoder.copy_buffer_to_buffer(
            &self.bias,
            0,
            &readback,
            weight_len as u64 * 4,
            bias_len as u64 * 4,
        );
        self.ctx.queue().submit([encoder.finish()]);
        scopes.pop().await?;
        let mut data = read_mapped(&self.ctx, &readback, weight_len + bias_len).await?;
        let bias = data.split_off(weight_len);
        let bias = self
            .config
            .bias
            .then(|| Tensor::new([bias_len], bias))
            .transpose()?;
        Conv2d::from_weights(
            self.config,
            Tensor::new(self.config.weight_shape(), data)?,
            bias,
        )
    }

    /// The same layer with `algorithm` choosing the forward kernel
    /// ([`Algorithm::Auto`] by default).
    pub fn with_algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// The algorithm asked for.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The kernel a forward pass over an input of `input_shape` runs (what
    /// `Auto` picks), or why the forced algorithm cannot run it.
    pub fn resolved_algorithm(&self, input_shape: &[usize]) -> Result<Algorithm> {
        let geometry = Conv2dGeometry::new(&self.config, input_shape)?;
        self.algorithm.resolve(&geometry, self.device_type())
    }

    fn device_type(&self) -> wgpu::DeviceType {
        self.ctx.adapter_info().device_type
    }

    /// `layer(input)` on the GPU (blocking). The input is `(N, C, H, W)` or
    /// unbatched `(C, H, W)`; the output has the same rank.
    pub fn forward(&self, input: &Tensor) -> Result<Tensor> {
        pollster::block_on(self.forward_async(input))
    }

    /// `layer(input)` on the GPU: upload, compute and read back in one submission.
    ///
    /// Tensors larger than one storage binding are split over batch items and
    /// channel blocks (see [`GpuContext::max_binding_bytes`]), for every algorithm.
    pub async fn forward_async(&self, input: &Tensor) -> Result<Tensor> {
        self.ctx.check_alive()?;
        let call = self.prepare(input.shape())?;
        if call.elements == 0 {
            return Tensor::zeros(call.geometry.output_shape());
        }
        let scopes = Scopes::push(&self.ctx);
        let readback = staging(&self.ctx, call.elements);
        let mut rec = Recorder::new(&self.ctx);
        let input = rec.upload("input", input.data());
        let out = rec.scratch("output", call.elements);
        self.encode_forward(&mut rec, &call, &input, &out)?;
        rec.copy(&out, 0, &readback, 0, call.elements);
        rec.submit();
        scopes.pop().await?;
        let data = read_mapped(&self.ctx, &readback, call.elements).await?;
        Tensor::new(call.geometry.output_shape(), data)
    }

    /// `layer(input)` with input and output on the GPU: one submission, no
    /// read-back, buffers from the context's pool. The GPU work may still be
    /// running when this returns; later submissions on the context (another
    /// layer, [`GpuTensor::download`]) run after it.
    pub fn forward_gpu(&self, input: &GpuTensor) -> Result<GpuTensor> {
        let (output, _) = self.submit_forward_gpu(input, false)?;
        Ok(output)
    }

    /// [`forward_gpu`](Self::forward_gpu), and the kernel time in milliseconds
    /// measured with GPU timestamp queries (`None` where the device has none).
    /// Waits for the GPU to finish.
    pub fn forward_gpu_timed(&self, input: &GpuTensor) -> Result<(GpuTensor, Option<f64>)> {
        let (output, pending) = self.submit_forward_gpu(input, true)?;
        let millis = match pending {
            Some(pending) => Some(pollster::block_on(pending.millis(&self.ctx))?),
            None => {
                self.ctx
                    .device()
                    .poll(wgpu::PollType::wait_indefinitely())
                    .map_err(|e| Conv2dError::Gpu(e.to_string()))?;
                None
            }
        };
        Ok((output, millis))
    }

    fn submit_forward_gpu(
        &self,
        input: &GpuTensor,
        timed: bool,
    ) -> Result<(GpuTensor, Option<PendingTime>)> {
        self.ctx.check_alive()?;
        if !input.ctx.same_device(&self.ctx) {
            return Err(Conv2dError::ContextMismatch {
                tensor: input.ctx.adapter_info().name.clone(),
                layer: self.ctx.adapter_info().name.clone(),
            });
        }
        let call = self.prepare(input.shape())?;
        let scopes = Scopes::push(&self.ctx);
        let out = output(&self.ctx, "output", call.elements);
        let mut pending = None;
        if call.elements > 0 {
            let mut rec = if timed {
                Recorder::timed(&self.ctx)
            } else {
                Recorder::new(&self.ctx)
            };
            self.encode_forward(&mut rec, &call, &input.buffer, &out)?;
            pending = rec.submit_timed();
        }
        pollster::block_on(scopes.pop())?;
        let output = GpuTensor {
            buffer: out,
            shape: call.geometry.output_shape(),
            ctx: self.ctx.clone(),
        };
        Ok((output, pending))
    }

    /// Checks one forward call and cuts it into chunks, before any GPU work.
    fn prepare(&self, input_shape: &[usize]) -> Result<ForwardCall> {
        let geometry = Conv2dGeometry::new(&self.config, input_shape)?;
        let algorithm = self.algorithm.resolve(&geometry, self.device_type())?;
        let elements = checked_numel(&geometry.output_shape()).unwrap_or(usize::MAX);
        let chunks = if elements == 0 {
            Vec::new()
        } else {
            let input = checked_numel(input_shape).unwrap_or(usize::MAX);
            check_buffer_size(&self.ctx, &[("input", input), ("output", elements)])?;
            let max = (self.ctx.max_binding_bytes() / 4) as usize;
            match algorithm.variant(&geometry) {
                Some(variant) => {
                    if variant.packs() {
                        let packed = blocked::packed_len(&geometry);
                        check_buffer_size(&self.ctx, &[("packed weight", packed)])?;
                    }
                    // Each chunk's padded copy of its input block must fit a binding too.
                    let plane = variant.padded_plane(&geometry);
                    plan_with_input_plane(&geometry, max, plane)
                }
                None => plan(&geometry, max),
            }
            .map_err(|e| self.ctx.name_adapter(e))?
        };
        Ok(ForwardCall {
            geometry,
            algorithm,
            elements,
            chunks,
        })
    }

    /// Records the forward pass from `input` into `output` (both whole tensors).
    /// A call in one chunk binds them directly; split calls copy each chunk's
    /// input block into a scratch binding and its finished output block back.
    fn encode_forward(
        &self,
        rec: &mut Recorder,
        call: &ForwardCall,
        input: &wgpu::Buffer,
        output: &wgpu::Buffer,
    ) -> Result<()> {
        let geometry = &call.geometry;
        let split = call.chunks.len() > 1;
        let variant = call.algorithm.variant(geometry);
        let weight = match variant {
            Some(variant) if variant.packs() => self.packed_weight(geometry)?,
            _ => wgpu::Buffer::clone(&self.weight),
        };
        let mut block: Option<wgpu::Buffer> = None;
        for chunk in &call.chunks {
            let params = ConvParams::new(geometry, chunk, self.config.bias);
            // Records the chunk's dispatches from `input` into `output`.
            let compute = |rec: &mut Recorder, input: &wgpu::Buffer, output: &wgpu::Buffer| {
                if let Some(variant) = variant {
                    let buffers = [input, &weight, &*self.bias, output];
                    return blocked::encode_chunk(rec, geometry, chunk, variant, params, buffers);
                }
                let launch = call.algorithm.launch(geometry, chunk);
                let total = u32::try_from(launch.total).map_err(|_| {
                    Conv2dError::Gpu(format!(
                        "{} needs {} invocations in one dispatch, more than 32-bit indexing allows",
                        launch.spec.name, launch.total
                    ))
                })?;
                // Later slices of the reduction add onto the earlier ones' sums.
                for (k, (slice, inner)) in launch.slices.iter().enumerate() {
                    let params = ConvParams {
                        total,
                        accumulate: u32::from(chunk.accumulate || k > 0),
                        slice_begin: slice.start as u32,
                        slice_end: slice.end as u32,
                        inner_begin: inner.start as u32,
                        inner_end: inner.end as u32,
                        ..params
                    };
                    let params = rec.uniform("params", &params);
                    let buffers = [&params, input, &self.weight, &self.bias, output];
                    rec.dispatch(launch.spec, &buffers, launch.invocations)?;
                }
                Ok(())
            };
            if !split {
                compute(rec, input, output)?;
                continue;
            }
            let len = chunk.input_len(geometry);
            let scratch = rec.scratch("input block", len);
            rec.copy(input, chunk.input_offset(geometry), &scratch, 0, len);
            // Later blocks of input channels add into the same output block.
            let out = match block.take() {
                Some(out) if chunk.accumulate => out,
                _ => rec.scratch("output block", chunk.output_len(geometry)),
            };
            compute(rec, &scratch, &out)?;
            if chunk.completes {
                let at = chunk.output_offset(geometry);
                rec.copy(&out, 0, output, at, chunk.output_len(geometry));
            }
            block = Some(out);
        }
        Ok(())
    }

    /// The packed weight of the blocked kernel, packed (in a submission of its
    /// own) when the weight is new or changed.
    fn packed_weight(&self, geometry: &Conv2dGeometry) -> Result<wgpu::Buffer> {
        let mut cached = self.packed_weight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(packed) = cached.as_ref() {
            return Ok(wgpu::Buffer::clone(packed));
        }
        let packed = output(&self.ctx, "packed weight", blocked::packed_len(geometry));
        let mut rec = Recorder::new(&self.ctx);
        blocked::encode_pack(&mut rec, geometry, &self.weight, &packed)?;
        rec.submit();
        let handle = wgpu::Buffer::clone(&packed);
        *cached = Some(packed);
        Ok(handle)
    }
}

/// One checked forward call.
struct ForwardCall {
    geometry: Conv2dGeometry,
    algorithm: Algorithm,
    elements: usize,
    chunks: Vec<Chunk>,
}
