//! One call's GPU work: a command encoder and the pooled buffers its commands
//! use, held on loan until the work is submitted (a buffer given back earlier
//! could be taken and overwritten by the same call's next step).

use std::collections::HashMap;

use bytemuck::Pod;

#[cfg(not(target_arch = "wasm32"))]
use super::background::SubmittedKernel;
#[cfg(not(target_arch = "wasm32"))]
use super::buffers::Scopes;
use super::buffers::{output, read_mapped, staging, uniform, upload};
use super::context::GpuContext;
use super::pool::{Kind, PooledBuffer};
use super::registry::KernelSpec;
use crate::error::{Conv2dError, Result};

/// Records the commands of one call; [`submit`](Self::submit) sends them in one submission.
pub(crate) struct Recorder {
    ctx: GpuContext,
    encoder: wgpu::CommandEncoder,
    held: Vec<PooledBuffer>,
    timer: Option<Timer>,
    /// The kernels dispatched, each once, in order, where the context builds
    /// ahead: their first builds are shared with a second device at the
    /// submission ([`GpuContext::build_alongside`]).
    #[cfg(not(target_arch = "wasm32"))]
    kernels: Vec<SubmittedKernel>,
}

/// Timestamps around every compute pass of a call (benchmarks only).
struct Timer {
    queries: wgpu::QuerySet,
    written: u32,
    /// The timed passes' kernels, in order.
    labels: Vec<String>,
}

/// Passes one timed call may hold; a call with more is not timed.
const MAX_TIMED_PASSES: u32 = 2048;

/// The kernel time of a timed call, read back after it ran.
pub(crate) struct PendingTime {
    readback: PooledBuffer,
    stamps: usize,
    period_ns: f64,
    labels: Vec<String>,
}

/// Set (to anything) to print every timed pass's kernel and milliseconds to
/// stderr: where a call's kernel time goes.
const TRACE_PASSES: &str = "WGPU_CONV2D_TRACE_PASSES";

impl PendingTime {
    /// Sum of the passes' durations in milliseconds; call after the work finished.
    pub(crate) async fn millis(self, ctx: &GpuContext) -> Result<f64> {
        let words = read_mapped(ctx, &self.readback, self.stamps * 2).await?;
        let ticks: Vec<u64> = bytemuck::cast_slice::<f32, u64>(&words).to_vec();
        let ms = |pass: &[u64]| pass[1].saturating_sub(pass[0]) as f64 * self.period_ns / 1e6;
        if std::env::var_os(TRACE_PASSES).is_some() {
            for (pass, label) in ticks.chunks_exact(2).zip(&self.labels) {
                eprintln!("{:>10.3} ms  {label}", ms(pass));
            }
        }
        let total: u64 = ticks
            .chunks_exact(2)
            .map(|pass| pass[1].saturating_sub(pass[0]))
            .sum();
        Ok(total as f64 * self.period_ns / 1e6)
    }
}

impl Recorder {
    pub(crate) fn new(ctx: &GpuContext) -> Self {
        Self {
            ctx: ctx.clone(),
            encoder: ctx.device().create_command_encoder(&Default::default()),
            held: Vec::new(),
            timer: None,
            #[cfg(not(target_arch = "wasm32"))]
            kernels: Vec::new(),
        }
    }

    /// A recorder that also times every compute pass, when the device has timestamp queries.
    pub(crate) fn timed(ctx: &GpuContext) -> Self {
        let mut rec = Self::new(ctx);
        if ctx.has_timestamps() {
            rec.timer = Some(Timer {
                queries: ctx.take_query_set(MAX_TIMED_PASSES * 2),
                written: 0,
                labels: Vec::new(),
            });
        }
        rec
    }

    /// The context recorded for.
    pub(crate) fn context(&self) -> &GpuContext {
        &self.ctx
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

    /// Records one launch of `spec` over `invocations` threads into its own
    /// compute pass, binding `buffers` in order (the uniform blocks first);
    /// the pass is timed when the recorder times and has room.
    pub(crate) fn dispatch(
        &mut self,
        spec: &KernelSpec,
        buffers: &[&wgpu::Buffer],
        invocations: u64,
    ) -> Result<()> {
        self.ctx.check_fits(spec)?;
        let kernel = self.ctx.kernel(spec);
        #[cfg(not(target_arch = "wasm32"))]
        if self.ctx.builds_ahead() {
            let key = spec.key();
            if !self.kernels.iter().any(|k| k.key == key) {
                self.kernels.push(SubmittedKernel {
                    key,
                    spec: spec.clone(),
                    code_length: kernel.code_length,
                });
            }
        }
        let (x, y) = grid(&self.ctx, invocations, spec.workgroup_size)?;
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(i, buffer)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: buffer.as_entire_binding(),
            })
            .collect();
        let label = spec.label();
        let bind_group = self
            .ctx
            .device()
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&label),
                layout: &kernel.layout,
                entries: &entries,
            });
        let timestamps = match &mut self.timer {
            Some(timer) if timer.written < MAX_TIMED_PASSES * 2 => {
                timer.written += 2;
                timer.labels.push(label.clone());
                Some(wgpu::ComputePassTimestampWrites {
                    query_set: &timer.queries,
                    beginning_of_pass_write_index: Some(timer.written - 2),
                    end_of_pass_write_index: Some(timer.written - 1),
                })
            }
            _ => None,
        };
        let mut pass = self
            .encoder
            .begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(&label),
                timestamp_writes: timestamps,
            });
        pass.set_pipeline(&kernel.pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(x, y, 1);
        Ok(())
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

    /// Records zeros into the first `elements` floats of `buffer`.
    pub(crate) fn clear(&mut self, buffer: &wgpu::Buffer, elements: usize) {
        if elements > 0 {
            self.encoder
                .clear_buffer(buffer, 0, Some(elements as u64 * 4));
        }
    }

    /// Submits everything recorded, then gives the held buffers back to the pool.
    pub(crate) fn submit(self) {
        self.submit_timed();
    }

    /// Submits everything recorded; for a timed recorder whose passes were all
    /// timed, also what reads their kernel time back.
    pub(crate) fn submit_timed(mut self) -> Option<PendingTime> {
        let mut timer = self.timer.take();
        let pending = match &mut timer {
            Some(timer) if timer.written > 0 && timer.written < MAX_TIMED_PASSES * 2 => {
                let stamps = timer.written as usize;
                let resolved = self
                    .ctx
                    .pooled(Kind::QueryResolve, stamps as u64 * 8, "timestamps");
                let readback = staging(&self.ctx, stamps * 2);
                self.encoder
                    .resolve_query_set(&timer.queries, 0..timer.written, &resolved, 0);
                self.copy(&resolved, 0, &readback, 0, stamps * 2);
                self.held.push(resolved);
                Some(PendingTime {
                    readback,
                    stamps,
                    period_ns: f64::from(self.ctx.queue().get_timestamp_period()),
                    labels: std::mem::take(&mut timer.labels),
                })
            }
            _ => None,
        };
        #[cfg(not(target_arch = "wasm32"))]
        self.ctx.build_alongside(&self.kernels, |theirs| {
            Box::new(move |second: &GpuContext| build_on_stand_ins(second, &theirs))
        });
        self.ctx.queue().submit([self.encoder.finish()]);
        // Later users of the set write it in later submissions, after this resolve.
        if let Some(timer) = timer {
            self.ctx.give_back_query_set(timer.queries);
        }
        pending
    }
}

/// Builds `kernels` on `ctx` (the second device, see
/// [`GpuContext::build_alongside`]), in order, by running each once over one
/// workgroup whose bindings are small zeroed buffers: a zero dispatch size
/// in the uniform block makes every invocation return at once. llvmpipe
/// builds at the dispatch and keeps the result in Mesa's cache, under the
/// same key as the main device's build of the same pipeline. Returns how
/// many were dispatched without an error.
#[cfg(not(target_arch = "wasm32"))]
fn build_on_stand_ins(ctx: &GpuContext, kernels: &[KernelSpec]) -> usize {
    /// Bytes of each stand-in buffer: more than any kernel's uniform block
    /// or fixed-size storage part.
    const STAND_IN_BYTES: u64 = 4096;
    // One buffer per binding place, for every kernel: bound as what each
    // kernel declares there.
    let places = kernels.iter().map(|k| k.bindings.len()).max().unwrap_or(0);
    let buffers: Vec<wgpu::Buffer> = (0..places)
        .map(|_| {
            ctx.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some("stand-in"),
                size: STAND_IN_BYTES,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            })
        })
        .collect();
    let mut built = 0;
    for spec in kernels {
        let scopes = Scopes::push(ctx);
        let bound: Vec<&wgpu::Buffer> = buffers[..spec.bindings.len()].iter().collect();
        let mut rec = Recorder::new(ctx);
        let recorded = rec.dispatch(spec, &bound, 1).is_ok();
        // One submission each: the cache holds each kernel as soon as built.
        rec.submit();
        let _ = ctx.device().poll(wgpu::PollType::wait_indefinitely());
        let popped = pollster::block_on(scopes.pop());
        built += usize::from(recorded && popped.is_ok());
    }
    built
}

/// Workgroup grid `(x, y)` covering `invocations` with `workgroup_size`-wide
/// groups, spilling onto `y` past the per-dimension limit (65535 by default).
pub(crate) fn grid(ctx: &GpuContext, invocations: u64, workgroup_size: u32) -> Result<(u32, u32)> {
    let max = u64::from(ctx.limits().max_compute_workgroups_per_dimension);
    let groups = invocations.div_ceil(u64::from(workgroup_size)).max(1);
    let x = groups.min(max);
    let y = groups.div_ceil(x);
    if y > max {
        return Err(Conv2dError::TensorTooLarge {
            what: "dispatch",
            bytes: invocations * 4,
            limit: max * max * u64::from(workgroup_size) * 4,
            adapter: ctx.adapter_info().name.clone(),
        });
    }
    Ok((x as u32, y as u32))
}

/// Blocks of one tensor, as the dispatches that bind them need them: from a
/// host array (each block uploaded once, however many dispatches bind it), or
/// from a GPU buffer (bound whole when the block is the whole tensor, else
/// copied into a scratch buffer once).
pub(crate) struct Blocks<'a> {
    label: &'static str,
    source: BlockSource<'a>,
    made: HashMap<(usize, usize), wgpu::Buffer>,
}

enum BlockSource<'a> {
    Host(&'a [f32]),
    Gpu {
        buffer: &'a wgpu::Buffer,
        len: usize,
    },
}

impl<'a> Blocks<'a> {
    /// Blocks of a host array.
    pub(crate) fn host(label: &'static str, data: &'a [f32]) -> Self {
        Self {
            label,
            source: BlockSource::Host(data),
            made: HashMap::new(),
        }
    }

    /// Blocks of the first `len` elements of a GPU buffer.
    pub(crate) fn gpu(label: &'static str, buffer: &'a wgpu::Buffer, len: usize) -> Self {
        Self {
            label,
            source: BlockSource::Gpu { buffer, len },
            made: HashMap::new(),
        }
    }

    /// A buffer holding elements `offset..offset + len`.
    pub(crate) fn get(&mut self, rec: &mut Recorder, offset: usize, len: usize) -> wgpu::Buffer {
        if let BlockSource::Gpu { buffer, len: whole } = self.source
            && offset == 0
            && len == whole
        {
            return buffer.clone();
        }
        if let Some(made) = self.made.get(&(offset, len)) {
            return made.clone();
        }
        let block = match self.source {
            BlockSource::Host(data) => rec.upload(self.label, &data[offset..offset + len]),
            BlockSource::Gpu { buffer, .. } => {
                let block = rec.scratch(self.label, len);
                rec.copy(buffer, offset, &block, 0, len);
                block
            }
        };
        self.made.insert((offset, len), block.clone());
        block
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_spills_onto_y_past_the_dimension_limit() {
        let ctx = GpuContext::new().expect("the tests need a GPU adapter");
        let max = ctx.limits().max_compute_workgroups_per_dimension;
        assert_eq!(grid(&ctx, 64, 64).unwrap(), (1, 1));
        assert_eq!(grid(&ctx, u64::from(max) * 64, 64).unwrap(), (max, 1));
        assert_eq!(grid(&ctx, u64::from(max) * 64 + 1, 64).unwrap(), (max, 2));
    }
}
