//! Kernels built ahead of their first use, on a second device of the same
//! adapter, for a driver that builds a kernel's machine code only when a
//! dispatch first runs it.
//!
//! llvmpipe (lavapipe) builds each compute kernel with LLVM at its first
//! dispatch, on the queue's one thread, so a large kernel's first call
//! waits seconds for it, and no other work of that device can hide the
//! build. A second device has a queue, and a thread, of its own, and
//! llvmpipe keeps what it builds in Mesa's on-disk shader cache, which every
//! device of the process reads: a job that runs a kernel once on the second
//! device leaves it built for the first, whose later dispatch loads it from
//! the cache (tens of milliseconds instead of seconds). Callers run
//! something cheaper to build meanwhile and ask [`BackgroundBuilds::ready`]
//! before each call; a job starts once the call that asked for it is done
//! ([`BackgroundBuilds::release`]), so as not to slow that call down.
//!
//! Only on llvmpipe over Vulkan with Mesa's shader cache on: elsewhere the
//! driver builds when a pipeline is created, or keeps nothing across devices.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::GpuContext;

/// One build: runs once on the second device.
pub(crate) type Job = Box<dyn FnOnce(&GpuContext) + Send>;

/// Where a keyed build stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Queued or running on the second device.
    Building,
    /// Done (or failed there: the main device then builds it itself).
    Done,
}

/// The builds of one device, shared by all its contexts.
pub(crate) struct BackgroundBuilds {
    /// Whether the driver builds at first dispatch and shares a disk cache.
    applies: AtomicBool,
    /// The adapter to open the second device on, and the device whose
    /// submitted work each job waits for.
    main: Option<(wgpu::Adapter, wgpu::Device)>,
    state: Arc<(Mutex<State>, Condvar)>,
}

#[derive(Default)]
struct State {
    builds: HashMap<String, Status>,
    /// Jobs asked for and not yet handed to the worker.
    waiting: Vec<(String, Job)>,
    /// The worker's queue, once it has been started.
    jobs: Option<Sender<(String, Job)>>,
    /// Set when the device's contexts are gone: queued jobs are skipped.
    closing: bool,
    worker: Option<JoinHandle<()>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl BackgroundBuilds {
    /// The builds of `device` on `adapter`, described by `info`.
    pub(crate) fn new(
        info: &wgpu::AdapterInfo,
        adapter: &wgpu::Adapter,
        device: &wgpu::Device,
    ) -> Self {
        Self {
            applies: AtomicBool::new(applies_to(
                info.backend,
                &info.driver,
                std::env::var("MESA_SHADER_CACHE_DISABLE").ok(),
            )),
            main: Some((adapter.clone(), device.clone())),
            state: Arc::default(),
        }
    }

    /// Builds that never run: the second device's own.
    pub(crate) fn none() -> Self {
        Self {
            applies: AtomicBool::new(false),
            main: None,
            state: Arc::default(),
        }
    }

    /// Whether building ahead helps on this device.
    pub(crate) fn applies(&self) -> bool {
        self.main.is_some() && self.applies.load(Ordering::Relaxed)
    }

    /// Builds ahead on any driver: for tests of what callers run meanwhile.
    #[cfg(test)]
    pub(crate) fn force(&self) {
        self.applies.store(true, Ordering::Relaxed);
    }

    /// Whether the build `key` is done: `false` while it waits or runs, and
    /// `false` the first time it is asked for, when `start` makes the job
    /// that builds it. The job waits until [`release`](Self::release).
    pub(crate) fn ready(&self, key: &str, start: impl FnOnce() -> Job) -> bool {
        let (state, _) = &*self.state;
        let mut state = lock(state);
        match state.builds.get(key) {
            Some(Status::Done) => true,
            Some(Status::Building) => false,
            None => {
                state.builds.insert(key.to_owned(), Status::Building);
                state.waiting.push((key.to_owned(), start()));
                false
            }
        }
    }

    /// Hands the waiting jobs to the worker thread (started on first use,
    /// with the second device), which runs each once the main device has
    /// finished the work submitted before it: a call that asked for a build
    /// releases it after submitting itself, so that the build does not take
    /// the CPU from that call's own (quicker) build and run.
    pub(crate) fn release(&self) {
        let Some((adapter, device)) = &self.main else {
            return;
        };
        let (state, done) = &*self.state;
        let mut state = lock(state);
        if state.waiting.is_empty() {
            return;
        }
        if state.jobs.is_none() {
            let (sender, receiver) = channel::<(String, Job)>();
            let (adapter, device) = (adapter.clone(), device.clone());
            let shared = self.state.clone();
            let worker = std::thread::Builder::new()
                .name("wgpu-conv2d background builds".into())
                .spawn(move || {
                    let (state, done) = &*shared;
                    // Opened after the first wait, not to compete with the call.
                    let mut second = None;
                    for (key, job) in receiver {
                        if !lock(state).closing {
                            let _ = device.poll(wgpu::PollType::wait_indefinitely());
                            let second = second.get_or_insert_with(|| {
                                pollster::block_on(GpuContext::on_adapter(adapter.clone(), false))
                            });
                            if let Ok(second) = second {
                                // A job that panics is a build that failed:
                                // the worker goes on, and waiters are woken.
                                let _ = catch_unwind(AssertUnwindSafe(|| job(second)));
                            }
                        }
                        lock(state).builds.insert(key, Status::Done);
                        done.notify_all();
                    }
                });
            if let Ok(worker) = worker {
                state.jobs = Some(sender);
                state.worker = Some(worker);
            }
        }
        for (key, job) in std::mem::take(&mut state.waiting) {
            let sent = state
                .jobs
                .as_ref()
                .is_some_and(|jobs| jobs.send((key.clone(), job)).is_ok());
            if !sent {
                // No worker: the main device builds it, as without this.
                state.builds.insert(key, Status::Done);
                done.notify_all();
            }
        }
    }

    /// Blocks until every build asked for so far is done (releasing those
    /// that wait).
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn wait(&self) {
        self.release();
        let (state, done) = &*self.state;
        let mut state = lock(state);
        while state.builds.values().any(|&s| s == Status::Building) {
            state = done.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Drop for BackgroundBuilds {
    /// Waits for the build in progress: a process must not exit while the
    /// driver builds on another thread.
    fn drop(&mut self) {
        let (state, _) = &*self.state;
        let worker = {
            let mut state = lock(state);
            state.closing = true;
            state.jobs = None;
            state.worker.take()
        };
        if let Some(worker) = worker {
            let _ = worker.join();
        }
    }
}

/// Whether an adapter on `backend` with `driver` is llvmpipe over Vulkan,
/// with Mesa's shader cache not turned off by `cache_disable`
/// (`MESA_SHADER_CACHE_DISABLE`).
fn applies_to(backend: wgpu::Backend, driver: &str, cache_disable: Option<String>) -> bool {
    let cache_off = cache_disable
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "y"));
    backend == wgpu::Backend::Vulkan && driver == "llvmpipe" && !cache_off
}

#[cfg(test)]
mod tests {
    use super::*;
    use wgpu::Backend::{Gl, Vulkan};

    #[test]
    fn only_llvmpipe_over_vulkan_with_its_cache_builds_ahead() {
        assert!(applies_to(Vulkan, "llvmpipe", None));
        assert!(applies_to(Vulkan, "llvmpipe", Some("false".into())));
        assert!(!applies_to(Vulkan, "llvmpipe", Some("true".into())));
        assert!(!applies_to(Vulkan, "llvmpipe", Some("1".into())));
        assert!(!applies_to(Gl, "llvmpipe", None));
        assert!(!applies_to(Vulkan, "SwiftShader driver", None));
    }
}
