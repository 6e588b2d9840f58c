//! `GpuConv2d`: a Conv2d layer whose weight and bias live on the GPU.

use super::buffers::{Scopes, check_fits, grid, output, read_mapped, staging, uniform, upload};
use super::context::GpuContext;
use super::kernels;
use super::params::ConvParams;
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
    pub async fn forward_async(&self, input: &Tensor) -> Result<Tensor> {
        self.ctx.check_alive()?;
        let geometry = Conv2dGeometry::new(self.layer.config(), input.shape())?;
        let shape = geometry.output_shape();
        let elements = checked_numel(&shape).unwrap_or(usize::MAX);
        if elements == 0 {
            return Tensor::zeros(shape);
        }
        check_fits(&self.ctx, &[("input", input.numel()), ("output", elements)])?;
        let kernel = self.ctx.kernel(kernels::DIRECT);
        let params = ConvParams::new(&geometry, self.layer.bias().is_some());
        let (x, y) = grid(&self.ctx, elements as u64, kernel.spec.workgroup_size)?;

        let scopes = Scopes::push(&self.ctx);
        let readback = {
            let device = self.ctx.device();
            let params = uniform(&self.ctx, "params", &params);
            let input = upload(&self.ctx, "input", input.data());
            let result = output(&self.ctx, "output", elements);
            let readback = staging(&self.ctx, elements);
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("conv2d_direct"),
                layout: &kernel.layout,
                entries: &[
                    entry(0, &params),
                    entry(1, &input),
                    entry(2, &self.weight),
                    entry(3, &self.bias),
                    entry(4, &result),
                ],
            });
            let mut encoder = device.create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                pass.set_pipeline(&kernel.pipeline);
                pass.set_bind_group(0, &bind_group, &[]);
                pass.dispatch_workgroups(x, y, 1);
            }
            encoder.copy_buffer_to_buffer(&result, 0, &readback, 0, None);
            self.ctx.queue().submit([encoder.finish()]);
            readback
        };
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
