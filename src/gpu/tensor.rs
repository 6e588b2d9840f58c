//! `GpuTensor`: a tensor kept on the GPU, so that layers chain without read-back.

use super::runtime::buffers::{Scopes, check_buffer_size, read_mapped, staging, upload};
use super::runtime::{GpuContext, PooledBuffer};
use crate::error::Result;
use crate::tensor::Tensor;

/// An f32 tensor in a GPU buffer, with its shape (`(N, C, H, W)` or `(C, H, W)`).
///
/// Made by [`GpuTensor::upload`] or by [`GpuConv2d::forward_gpu`](super::GpuConv2d::forward_gpu);
/// read with [`download`](Self::download). Its buffer comes from the context's
/// pool and goes back to it when the tensor is dropped.
#[derive(Debug)]
pub struct GpuTensor {
    pub(crate) buffer: PooledBuffer,
    pub(crate) shape: Vec<usize>,
    pub(crate) ctx: GpuContext,
}

impl GpuTensor {
    /// Copies `tensor` to the GPU of `ctx` (blocking; native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn upload(ctx: &GpuContext, tensor: &Tensor) -> Result<Self> {
        pollster::block_on(Self::upload_async(ctx, tensor))
    }

    /// Copies `tensor` to the GPU of `ctx`.
    pub async fn upload_async(ctx: &GpuContext, tensor: &Tensor) -> Result<Self> {
        ctx.check_alive()?;
        check_buffer_size(ctx, &[("tensor", tensor.numel())])?;
        let scopes = Scopes::push(ctx);
        let buffer = upload(ctx, "tensor", tensor.data());
        scopes.pop().await?;
        Ok(Self {
            buffer,
            shape: tensor.shape().to_vec(),
            ctx: ctx.clone(),
        })
    }

    /// Copies the tensor back to the host (blocking; native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn download(&self) -> Result<Tensor> {
        pollster::block_on(self.download_async())
    }

    /// Copies the tensor back to the host.
    pub async fn download_async(&self) -> Result<Tensor> {
        self.ctx.check_alive()?;
        let elements = self.numel();
        let scopes = Scopes::push(&self.ctx);
        let readback = staging(&self.ctx, elements);
        let mut encoder = self
            .ctx
            .device()
            .create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(&self.buffer, 0, &readback, 0, elements as u64 * 4);
        self.ctx.queue().submit([encoder.finish()]);
        scopes.pop().await?;
        let data = read_mapped(&self.ctx, &readback, elements).await?;
        Tensor::new(self.shape.clone(), data)
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The context whose device holds the tensor.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// The buffer (row-major f32; at least 4 bytes even when empty).
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }
}
