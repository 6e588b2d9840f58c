//! `GpuTensor`: a tensor kept on the GPU, so that layers chain without read-back.

use super::convert::{pack, unpack, words};
use super::runtime::buffers::{Scopes, check_buffer_size, read_mapped, staging, upload};
use super::runtime::{GpuContext, PooledBuffer};
use crate::dtype::DType;
use crate::error::Result;
use crate::tensor::Tensor;

/// A tensor in a GPU buffer, with its shape (`(N, C, H, W)` or `(C, H, W)`)
/// and dtype: `float32` takes 4 bytes per element, `float16` and `bfloat16`
/// 2 (two per `u32` word, the first in the low half).
///
/// Made by [`GpuTensor::upload`] or by [`GpuConv2d::forward_gpu`](super::GpuConv2d::forward_gpu);
/// read with [`download`](Self::download). Its buffer comes from the context's
/// pool and goes back to it when the tensor is dropped.
#[derive(Debug)]
pub struct GpuTensor {
    pub(crate) buffer: PooledBuffer,
    pub(crate) shape: Vec<usize>,
    pub(crate) dtype: DType,
    pub(crate) ctx: GpuContext,
}

impl GpuTensor {
    /// Copies `tensor` to the GPU of `ctx` (blocking; native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn upload(ctx: &GpuContext, tensor: &Tensor) -> Result<Self> {
        pollster::block_on(Self::upload_async(ctx, tensor))
    }

    /// Copies `tensor` to the GPU of `ctx`, in its dtype (a half tensor's
    /// values rounded to it, as everywhere it is used).
    pub async fn upload_async(ctx: &GpuContext, tensor: &Tensor) -> Result<Self> {
        ctx.check_alive()?;
        let dtype = tensor.dtype();
        let slots = Self::slots(dtype, tensor.numel());
        check_buffer_size(ctx, &[("tensor", slots)])?;
        let scopes = Scopes::push(ctx);
        let buffer = if dtype.is_half() {
            upload(ctx, "tensor", &pack(dtype, tensor.data()))
        } else {
            upload(ctx, "tensor", tensor.data())
        };
        scopes.pop().await?;
        Ok(Self {
            buffer,
            shape: tensor.shape().to_vec(),
            dtype,
            ctx: ctx.clone(),
        })
    }

    /// The 4-byte slots `len` elements of `dtype` take.
    pub(crate) fn slots(dtype: DType, len: usize) -> usize {
        if dtype.is_half() { words(len) } else { len }
    }

    /// Copies the tensor back to the host (blocking; native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn download(&self) -> Result<Tensor> {
        pollster::block_on(self.download_async())
    }

    /// Copies the tensor back to the host.
    pub async fn download_async(&self) -> Result<Tensor> {
        self.ctx.check_alive()?;
        let elements = Self::slots(self.dtype, self.numel());
        let scopes = Scopes::push(&self.ctx);
        let readback = staging(&self.ctx, elements);
        let mut encoder = self
            .ctx
            .device()
            .create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(&self.buffer, 0, &readback, 0, elements as u64 * 4);
        self.ctx.queue().submit([encoder.finish()]);
        scopes.pop().await?;
        let mut data = read_mapped(&self.ctx, &readback, elements).await?;
        if self.dtype.is_half() {
            data = unpack(self.dtype, &data, self.numel());
        }
        Ok(Tensor::new(self.shape.clone(), data)?.with_dtype_unchecked(self.dtype))
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The context whose device holds the tensor.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// The buffer: row-major `f32`, or for a half dtype its 16-bit values
    /// two per `u32` word (the first in the low half); at least 16 bytes
    /// even when empty.
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }
}
