//! `GpuConv2d`: a Conv2d layer whose weight and bias live on the GPU.

use super::buffers::{
    Scopes, check_buffer_size, check_fits, output, read_mapped, staging, uniform, upload,
};
use super::context::GpuContext;
use super::kernels::{self, dispatch};
use super::params::ConvParams;
use super::plan::plan;
use crate::config::Conv2dConfig;
use crate::error::Result;
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
    pub(super) weight: wgpu::Buffer,
    pub(super) bias: wgpu::Buffer,
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
        let geometry = Conv2dGeometry::new(&self.config, input.shape())?;
        let shape = geometry.output_shape();
        let elements = checked_numel(&shape).unwrap_or(usize::MAX);
        if elements == 0 {
            return Tensor::zeros(shape);
        }
        check_buffer_size(&self.ctx, &[("input", input.numel()), ("output", elements)])?;
        let chunks = plan(&geometry, (self.ctx.max_binding_bytes() / 4) as usize)
            .map_err(|e| self.ctx.name_adapter(e))?;

        let scopes = Scopes::push(&self.ctx);
        let readback = staging(&self.ctx, elements);
        let mut encoder = self
            .ctx
            .device()
            .create_command_encoder(&Default::default());
        let mut result = None;
        for chunk in &chunks {
            let params = ConvParams::new(&geometry, chunk, self.config.bias);
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
            let params_buffer = uniform(&self.ctx, "params", &params);
            dispatch(
                &self.ctx,
                &mut encoder,
                kernels::DIRECT,
                &[&params_buffer, &input, &self.weight, &self.bias, &out],
                u64::from(params.total),
            )?;
            if chunk.completes {
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
