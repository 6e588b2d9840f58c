//! Buffer helpers: upload, output, read-back, size limits and error scopes.

use std::future::Future;

use bytemuck::Pod;

use super::context::GpuContext;
use super::pool::{Kind, PooledBuffer};
use crate::error::{Conv2dError, Result};

/// Storage buffers are whole vec4s: bindings must not be empty (zero-element
/// tensors still get one), and the blocked kernel's padding pass also reads
/// its input as `array<vec4<f32>>`.
const UNIT_BYTES: u64 = 16;

fn byte_len(elements: usize) -> u64 {
    (elements as u64 * 4)
        .next_multiple_of(UNIT_BYTES)
        .max(UNIT_BYTES)
}

/// A storage buffer holding `data`.
pub(crate) fn upload(ctx: &GpuContext, label: &str, data: &[f32]) -> PooledBuffer {
    let buffer = output(ctx, label, data.len());
    if !data.is_empty() {
        ctx.queue()
            .write_buffer(&buffer, 0, bytemuck::cast_slice(data));
    }
    buffer
}

/// A uniform buffer holding `value`.
pub(crate) fn uniform<T: Pod>(ctx: &GpuContext, label: &str, value: &T) -> PooledBuffer {
    let bytes = bytemuck::bytes_of(value);
    let buffer = ctx.pooled(Kind::Uniform, bytes.len() as u64, label);
    ctx.queue().write_buffer(&buffer, 0, bytes);
    buffer
}

/// A storage buffer for `elements` results. Its contents are undefined (a
/// pooled buffer keeps what its last user wrote): kernels write every element.
pub(crate) fn output(ctx: &GpuContext, label: &str, elements: usize) -> PooledBuffer {
    ctx.pooled(Kind::Storage, byte_len(elements), label)
}

/// A mappable buffer to copy `elements` results into.
pub(crate) fn staging(ctx: &GpuContext, elements: usize) -> PooledBuffer {
    ctx.pooled(Kind::Staging, byte_len(elements), "readback")
}

/// Maps `staging` (already filled by a submitted copy) and returns its first `elements` values.
pub(crate) async fn read_mapped(
    ctx: &GpuContext,
    staging: &PooledBuffer,
    elements: usize,
) -> Result<Vec<f32>> {
    // Spoiled until the mapping is undone: a future dropped mid-way (or a
    // failed mapping) must not hand a mapped buffer back to the pool.
    staging.spoil(true);
    let data = map_and_copy(ctx, staging, elements).await;
    if data.is_ok() {
        staging.spoil(false);
    }
    data
}

async fn map_and_copy(
    ctx: &GpuContext,
    staging: &wgpu::Buffer,
    elements: usize,
) -> Result<Vec<f32>> {
    let slice = staging.slice(..);
    let (sender, receiver) = futures_intrusive::channel::shared::oneshot_channel();
    slice.map_async(wgpu::MapMode::Read, move |result| {
        sender.send(result).ok();
    });
    ctx.device()
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| gpu_failure(ctx, e.to_string()))?;
    match receiver.receive().await {
        Some(Ok(())) => {}
        Some(Err(e)) => return Err(gpu_failure(ctx, format!("mapping the result failed: {e}"))),
        None => {
            return Err(gpu_failure(
                ctx,
                "mapping the result never completed".into(),
            ));
        }
    }
    let data = {
        let view = slice
            .get_mapped_range()
            .map_err(|e| gpu_failure(ctx, format!("reading the result failed: {e}")))?;
        bytemuck::cast_slice::<u8, f32>(&view)[..elements].to_vec()
    };
    staging.unmap();
    Ok(data)
}

/// Waits until the GPU has finished the work submitted so far, without
/// blocking the thread (the browser's event loop runs meanwhile).
pub(crate) async fn wait_idle(ctx: &GpuContext) -> Result<()> {
    let (sender, receiver) = futures_intrusive::channel::shared::oneshot_channel();
    ctx.queue().on_submitted_work_done(move || {
        sender.send(()).ok();
    });
    ctx.device()
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| gpu_failure(ctx, e.to_string()))?;
    receiver
        .receive()
        .await
        .ok_or_else(|| gpu_failure(ctx, "the GPU never finished its work".into()))
}

/// A device loss explains most failures; report it when it happened.
fn gpu_failure(ctx: &GpuContext, message: String) -> Conv2dError {
    ctx.check_alive().err().unwrap_or(Conv2dError::Gpu(message))
}

/// Fails unless every `(name, elements)` tensor fits one binding and 32-bit indexing.
pub(crate) fn check_fits(ctx: &GpuContext, tensors: &[(&'static str, usize)]) -> Result<()> {
    check_limit(
        ctx,
        tensors,
        ctx.max_binding_bytes().min(u32::MAX as u64 * 4),
    )
}

/// Fails unless every `(name, elements)` tensor fits one buffer of the device
/// (tensors split into several bindings still live in one staging buffer).
pub(crate) fn check_buffer_size(ctx: &GpuContext, tensors: &[(&'static str, usize)]) -> Result<()> {
    check_limit(ctx, tensors, ctx.limits().max_buffer_size)
}

fn check_limit(ctx: &GpuContext, tensors: &[(&'static str, usize)], limit: u64) -> Result<()> {
    for &(what, elements) in tensors {
        let bytes = (elements as u64).saturating_mul(4);
        if bytes > limit {
            return Err(Conv2dError::TensorTooLarge {
                what,
                bytes,
                limit,
                adapter: ctx.adapter_info().name.clone(),
            });
        }
    }
    Ok(())
}

/// Out-of-memory, validation and internal error scopes around a stretch of GPU calls.
pub(crate) struct Scopes {
    ctx: GpuContext,
    // Declared in the reverse of the order they are pushed: a `Scopes`
    // dropped without `pop` (an error returned mid-way) drops its fields in
    // declaration order, and wgpu wants scopes popped last in, first out.
    internal: wgpu::ErrorScopeGuard,
    validation: wgpu::ErrorScopeGuard,
    oom: wgpu::ErrorScopeGuard,
}

impl Scopes {
    /// Starts catching errors on this thread.
    pub(crate) fn push(ctx: &GpuContext) -> Self {
        let device = ctx.device();
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
        Self {
            ctx: ctx.clone(),
            internal,
            validation,
            oom,
        }
    }

    /// Stops catching; the future yields the first error caught. Popping
    /// before any `.await` keeps the caller's future `Send`.
    pub(crate) fn pop(self) -> impl Future<Output = Result<()>> + wgpu::WasmNotSend {
        let internal = self.internal.pop();
        let validation = self.validation.pop();
        let oom = self.oom.pop();
        let ctx = self.ctx;
        async move {
            let caught = [oom.await, validation.await, internal.await];
            // wgpu reports a device loss from its maintenance pass: run one so
            // that a lost device is named as such, not as the invalid buffers it leaves.
            let _ = ctx.device().poll(wgpu::PollType::Poll);
            ctx.check_alive()?;
            match caught.into_iter().flatten().next() {
                None => Ok(()),
                Some(wgpu::Error::OutOfMemory { .. }) => Err(Conv2dError::OutOfMemory(format!(
                    "the device could not allocate the buffers for this call (adapter '{}')",
                    ctx.adapter_info().name
                ))),
                Some(e) => Err(Conv2dError::Gpu(e.to_string())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_dropped_without_pop_leave_the_device_usable() {
        let ctx = GpuContext::new().expect("the tests need a GPU adapter");
        // An error returned between push and pop drops the scopes.
        drop(Scopes::push(&ctx));
        let scopes = Scopes::push(&ctx);
        let _ok = upload(&ctx, "fine", &[1.0]);
        assert!(pollster::block_on(scopes.pop()).is_ok());
    }

    #[test]
    fn a_validation_error_becomes_a_value() {
        let ctx = GpuContext::new().expect("the tests need a GPU adapter");
        let scopes = Scopes::push(&ctx);
        // MAP_READ may only be combined with COPY_DST: wgpu rejects this buffer.
        let _bad = ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some("invalid on purpose"),
            size: 16,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        match pollster::block_on(scopes.pop()) {
            Err(Conv2dError::Gpu(message)) => assert!(message.contains("Validation"), "{message}"),
            other => panic!("expected a GPU validation error, got {other:?}"),
        }
        // The context stays usable.
        let scopes = Scopes::push(&ctx);
        let _ok = upload(&ctx, "fine", &[1.0, 2.0]);
        assert!(pollster::block_on(scopes.pop()).is_ok());
    }
}
