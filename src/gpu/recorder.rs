//! One call's GPU work: a command encoder and the pooled buffers its commands
//! use, held on loan until the work is submitted (a buffer given back earlier
//! could be taken and overwritten by the same call's next step).

use bytemuck::Pod;

use super::buffers::{output, uniform, upload};
use super::context::GpuContext;
use super::kernels::{KernelSpec, dispatch};
use super::pool::PooledBuffer;
use crate::error::Result;

/// Records the commands of one call; [`submit`](Self::submit) sends them in one submission.
pub(crate) struct Recorder {
    ctx: GpuContext,
    encoder: wgpu::CommandEncoder,
    held: Vec<PooledBuffer>,
}

impl Recorder {
    pub(crate) fn new(ctx: &GpuContext) -> Self {
        Self {
            ctx: ctx.clone(),
            encoder: ctx.device().create_command_encoder(&Default::default()),
            held: Vec::new(),
        }
    }

    /// Keeps `buffer` on loan until the submission; returns a handle to bind it.
    pub(crate) fn hold(&mut self, buffer: PooledBuffer) -> wgpu::Buffer {
        let handle = wgpu::Buffer::clone(&buffer);
        self.held.push(buffer);
        handle
    }

    /// A uniform block holding `value`.
    pub(crate) fn uniform<T: Pod>(&mut self, label: &str, value: &T) -> wgpu::Buffer {
        let buffer = uniform(&self.ctx, label, value);
        self.hold(buffer)
    }

    /// A storage buffer of `elements` floats, contents undefined.
    pub(crate) fn scratch(&mut self, label: &str, elements: usize) -> wgpu::Buffer {
        let buffer = output(&self.ctx, label, elements);
        self.hold(buffer)
    }

    /// A storage buffer holding `data`.
    pub(crate) fn upload(&mut self, label: &str, data: &[f32]) -> wgpu::Buffer {
        let buffer = upload(&self.ctx, label, data);
        self.hold(buffer)
    }

    /// Records one launch of `spec` (see [`dispatch`]).
    pub(crate) fn dispatch(
        &mut self,
        spec: KernelSpec,
        buffers: &[&wgpu::Buffer],
        invocations: u64,
    ) -> Result<()> {
        dispatch(&self.ctx, &mut self.encoder, spec, buffers, invocations)
    }

    /// Records a copy of `elements` floats.
    pub(crate) fn copy(
        &mut self,
        from: &wgpu::Buffer,
        from_element: usize,
        to: &wgpu::Buffer,
        to_element: usize,
        elements: usize,
    ) {
        self.encoder.copy_buffer_to_buffer(
            from,
            from_element as u64 * 4,
            to,
            to_element as u64 * 4,
            elements as u64 * 4,
        );
    }

    /// Submits everything recorded, then gives the held buffers back to the pool.
    pub(crate) fn submit(self) {
        self.ctx.queue().submit([self.encoder.finish()]);
    }
}
