//! Reuse of GPU buffers between calls: a call takes buffers of the sizes it
//! needs and gives them back when done, so repeated calls with the same shapes
//! allocate nothing new.
//!
//! Reuse is safe without waiting for the GPU: a buffer comes back to the pool
//! once the call has submitted its work, and the queue runs the next user's
//! writes and dispatches after that submission.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Idle buffers the pool keeps at most, in bytes; beyond that they are freed.
const MAX_IDLE_BYTES: u64 = 512 << 20;

/// What a pooled buffer is for; each kind has its own usage flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// Read and written by kernels, copied to and from.
    Storage,
    /// A kernel's uniform block.
    Uniform,
    /// Mapped for reading results back.
    Staging,
    /// Where timestamp queries are resolved.
    QueryResolve,
}

impl Kind {
    fn usage(self) -> wgpu::BufferUsages {
        use wgpu::BufferUsages as U;
        match self {
            Kind::Storage => U::STORAGE | U::COPY_SRC | U::COPY_DST,
            Kind::Uniform => U::UNIFORM | U::COPY_DST,
            Kind::Staging => U::MAP_READ | U::COPY_DST,
            Kind::QueryResolve => U::QUERY_RESOLVE | U::COPY_SRC,
        }
    }
}

/// Idle buffers of one device, by kind and exact size.
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    idle: Mutex<Idle>,
    created: AtomicU64,
}

#[derive(Debug, Default)]
struct Idle {
    buffers: HashMap<(Kind, u64), Vec<wgpu::Buffer>>,
    bytes: u64,
}

impl BufferPool {
    fn take(&self, kind: Kind, size: u64) -> Option<wgpu::Buffer> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let buffer = idle.buffers.get_mut(&(kind, size))?.pop()?;
        idle.bytes -= size;
        Some(buffer)
    }

    fn give_back(&self, kind: Kind, buffer: wgpu::Buffer) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let size = buffer.size();
        if idle.bytes + size <= MAX_IDLE_BYTES {
            idle.bytes += size;
            idle.buffers.entry((kind, size)).or_default().push(buffer);
        }
    }

    /// Buffers created so far (not taken from the idle ones).
    pub(crate) fn created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }

    /// Bytes held by idle buffers.
    pub(crate) fn idle_bytes(&self) -> u64 {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).bytes
    }
}

/// A buffer on loan from a pool; it goes back when dropped.
#[derive(Debug)]
pub(crate) struct PooledBuffer {
    buffer: Option<wgpu::Buffer>,
    kind: Kind,
    pool: Arc<BufferPool>,
    /// Set when a failed mapping may have left the buffer unusable.
    spoiled: AtomicBool,
}

impl PooledBuffer {
    /// A buffer of `kind` and `size` bytes from `pool`: an idle one if there
    /// is one, else a new one made on `device`.
    pub(crate) fn get(
        pool: &Arc<BufferPool>,
        device: &wgpu::Device,
        kind: Kind,
        size: u64,
        label: &str,
    ) -> Self {
        let buffer = pool.take(kind, size).unwrap_or_else(|| {
            pool.created.fetch_add(1, Ordering::Relaxed);
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage: kind.usage(),
                mapped_at_creation: false,
            })
        });
        Self {
            buffer: Some(buffer),
            kind,
            pool: pool.clone(),
            spoiled: AtomicBool::new(false),
        }
    }

    /// Whether to keep the buffer out of the pool when it is dropped.
    pub(crate) fn spoil(&self, spoiled: bool) {
        self.spoiled.store(spoiled, Ordering::Relaxed);
    }
}

impl Deref for PooledBuffer {
    type Target = wgpu::Buffer;

    fn deref(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("present until drop")
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take()
            && !self.spoiled.load(Ordering::Relaxed)
        {
            self.pool.give_back(self.kind, buffer);
        }
    }
}
