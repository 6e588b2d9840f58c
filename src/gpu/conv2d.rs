//! `GpuConv2d`: a Conv2d layer whose weight and bias live on the GPU.

use super::buffers::{
    Scopes, check_buffer_size, check_fits, grid, output, read_mapped, staging, uniform, upload,
};
use super::context::GpuContext;
use super::kernels;
use super::params::ConvParams;
use super::plan::plan;
use crate::error::Result;
use crate::geometry::Conv2dGeometry;
use crate::layer::Conv2d;
use crate::tensor::{Tensor, checked_numel};

/// A [`Conv2d`] layer on the GPU. Weight and bias are uploaded once, at
/// construction; each call uploads the input, runs the direct kernel (one
/// invocation per output element) and reads the result back.
///
/// `Send + Sync`: one operator may serve many threads.
#[derive(Debug)]
pub struct GpuConv2d {
    ctx: GpuContext,
    layer: Conv2d,
    weight: wgpu::Buffer,
    bias: wgpu::Buffer,
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
            layer: layer.clone(),
            weight,
            bias,
        })
    }

    /// The layer this operator runs (its host copy of weight and bias).
    pub fn layer(&self) -> &Conv2d {
        &self.layer
    }

    /// The context it runs on.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// `layer(input)` on the GPU (blocking). The input is `(N, C, H, W)` or
    /// unbatched `(C, H, W)`; the output has the same rank.
    pub fn forward(&self, input: &Tensor) -> Result<Tensor> {
        pollster::block_on(self.forward_async(input))
    }

    /// `layer(input)` on the GPU.
    ///
    /// Tensors larger than one storage binding are split over batch items and
    /// channel blocks (see [`GpuContext::max_binding_bytes`]); all blocks go to
    /// the GPU in one submission and come back in one read-back.
    pub async fn forward_async(&self, input: &Tensor) -> Result<Tensor> {
        self.ctx.check_alive()?;
        let geometry = Conv2dGeometry::new(self.layer.config(), input.shape())?;
        let shape = geometry.output_shape();
        let elements = checked_numel(&shape).unwrap_or(usize::MAX);
        if elements == 0 {
            return Tensor::zeros(shape);
        }
        check_buffer_size(&self.ctx, &[("input", input.numel()), ("output", elements)])?;
        let chunks = plan(&geometry, (self.ctx.max_binding_bytes() / 4) as usize)
            .map_err(|e| self.ctx.name_adapter(e))?;
        let kernel = self.ctx.kernel(kernels::DIRECT);
        let has_bias = self.layer.bias().is_some();

        let scopes = Scopes::push(&self.ctx);
        let device = self.ctx.device();
        let readback = staging(&self.ctx, elements);
        let mut encoder = device.create_command_encoder(&Default::default());
        let mut result = None;
        for chunk in &chunks {
            let params = ConvParams::new(&geometry, chunk, has_bias);
            let (x, y) = grid(
                &self.ctx,
                u64::from(params.total),
                kernel.spec.workgroup_size,
            )?;
            let offset = chunk.input_offset(&geometry);
            let input = upload(
                &self.ctx,
                "input",
                &input.data()[offset..offset + chunk.input_len(&geometry)],
            );
            // Later blocks of input channels add into the same output block.
            let out = match result.take() {
                Some(out) if chunk.accumulate => out,
                _ => output(&self.ctx, "output", chunk.output_len(&geometry)),
            };
            let params = uniform(&self.ctx, "params", &params);
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(kernel.spec.name),
                layout: &kernel.layout,
                entries: &[
                    entry(0, &params),
                    entry(1, &input),
                    entry(2, &self.weight),
                    entry(3, &self.bias),
                    entry(4, &out),
                ],
            });
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                pass.set_pipeline(&kernel.pipeline);
                pass.set_bind_group(0, &bind_group, &[]);
                pass.dispatch_workgroups(x, y, 1);
            }
            if chunk.completes_output(&geometry) {
                let bytes = chunk.output_len(&geometry) as u64 * 4;
                let at = chunk.output_offset(&geometry) as u64 * 4;
                encoder.copy_buffer_to_buffer(&out, 0, &readback, at, bytes);
            }
            result = Some(out);
        }
        self.ctx.queue().submit([encoder.finish()]);
        scopes.pop().await?;
        let data = read_mapped(&self.ctx, &readback, elements).await?;
        Tensor::new(shape, data)
    }
}

fn entry(binding: u32, buffer: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: buffer.as_entire_binding(),
    }
}
