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
//! The same device also shares a call's own first builds: a submission
//! whose kernels the main device has never run hands some of them to the
//! second device at once ([`BackgroundBuilds::alongside`]), which builds
//! them on zero-sized work while the main device's queue builds the others
//! in order. Each builds on a core of its own, and the main device loads
//! from the cache what the second has finished when its queue reaches it.
//!
//! Only on llvmpipe over Vulkan with Mesa's shader cache on: elsewhere the
//! driver builds when a pipeline is created, or keeps nothing across devices.

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::GpuContext;
use super::registry::{KernelKey, KernelSpec};

/// One build: runs once on the second device.
pub(crate) type Job = Box<dyn FnOnce(&GpuContext) + Send>;

/// Builds kernels on the second device; returns how many it built.
pub(crate) type KernelsJob = Box<dyn FnOnce(&GpuContext) -> usize + Send>;

/// A kernel a submission runs, as [`BackgroundBuilds::alongside`] weighs it.
#[derive(Debug, Clone)]
pub(crate) struct SubmittedKernel {
    /// What identifies its build.
    pub key: KernelKey,
    /// What the second device builds.
    pub spec: KernelSpec,
    /// Its code's length without comments and indentation: what stands for
    /// its build time (the generated, unrolled kernels are the longest and
    /// the slowest to build; the written ones carry long comments).
    pub code_length: usize,
}

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

/// What the worker thread is handed.
enum Work {
    /// A keyed build, run once the main device has finished the work
    /// submitted before it.
    Build(String, Job),
    /// A job that builds this many kernels of a submission the main device
    /// is making, to run at once (see [`BackgroundBuilds::alongside`]).
    Alongside(usize, KernelsJob),
}

#[derive(Default)]
struct State {
    builds: HashMap<String, Status>,
    /// Kernels the main device has been handed in a submission (and so has
    /// built, or is building).
    submitted: HashSet<KernelKey>,
    /// Kernels handed to the second device alongside a submission and not
    /// yet built (or failed).
    alongside: usize,
    /// Kernels handed to the second device alongside submissions, and of
    /// those, the ones it has built.
    handed_alongside: usize,
    built_alongside: usize,
    /// Jobs asked for and not yet handed to the worker.
    waiting: Vec<(String, Job)>,
    /// The worker's queue, once it has been started.
    jobs: Option<Sender<Work>>,
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
        let (state, done) = &*self.state;
        let mut state = lock(state);
        if state.waiting.is_empty() {
            return;
        }
        self.start_worker(&mut state);
        for (key, job) in std::mem::take(&mut state.waiting) {
            let sent = state
                .jobs
                .as_ref()
                .is_some_and(|jobs| jobs.send(Work::Build(key.clone(), job)).is_ok());
            if !sent {
                // No worker: the main device builds it, as without this.
                state.builds.insert(key, Status::Done);
                done.notify_all();
            }
        }
    }

    /// Shares the builds of a submission about to be made of `kernels` (in
    /// the order it runs them): those the main device has not been handed
    /// before, it builds in order as its queue reaches them, but for the
    /// last ones, which the second device takes at once (see
    /// [`alongside_share`]) and builds last first, through the job `build`
    /// makes of them, to have built them by the time the main device's
    /// queue reaches them, which then loads them from the cache. Call just
    /// before submitting. No result changes: only where the driver builds.
    pub(crate) fn alongside(
        &self,
        kernels: &[SubmittedKernel],
        build: impl FnOnce(Vec<KernelSpec>) -> KernelsJob,
    ) {
        if !self.applies() || kernels.is_empty() {
            return;
        }
        let (state, _) = &*self.state;
        let mut state = lock(state);
        let fresh: Vec<&SubmittedKernel> = kernels
            .iter()
            .filter(|kernel| state.submitted.insert(kernel.key.clone()))
            .collect();
        let lengths: Vec<usize> = fresh.iter().map(|kernel| kernel.code_length).collect();
        let share = alongside_share(&lengths);
        if share == 0 {
            return;
        }
        let theirs: Vec<KernelSpec> = fresh[fresh.len() - share..]
            .iter()
            .rev()
            .map(|kernel| kernel.spec.clone())
            .collect();
        self.start_worker(&mut state);
        let count = theirs.len();
        if let Some(jobs) = &state.jobs
            && jobs.send(Work::Alongside(count, build(theirs))).is_ok()
        {
            state.alongside += count;
            state.handed_alongside += count;
        }
    }

    /// Starts the worker thread unless it runs: it opens the second device
    /// when its first work needs it.
    fn start_worker(&self, state: &mut State) {
        let Some((adapter, device)) = &self.main else {
            return;
        };
        if state.jobs.is_some() {
            return;
        }
        let (sender, receiver) = channel::<Work>();
        let (adapter, device) = (adapter.clone(), device.clone());
        let shared = self.state.clone();
        let worker = std::thread::Builder::new()
            .name("wgpu-conv2d background builds".into())
            .spawn(move || {
                let (state, done) = &*shared;
                let mut second = None;
                let mut open = || {
                    second
                        .get_or_insert_with(|| {
                            pollster::block_on(GpuContext::on_adapter(adapter.clone(), false))
                        })
                        .as_ref()
                        .ok()
                        .cloned()
                };
                for work in receiver {
                    let closing = lock(state).closing;
                    match work {
                        Work::Alongside(count, job) => {
                            let mut built = 0;
                            if let Some(second) = open().filter(|_| !closing) {
                                let _ = catch_unwind(AssertUnwindSafe(|| {
                                    built = job(&second);
                                }));
                            }
                            let mut state = lock(state);
                            state.alongside -= count;
                            state.built_alongside += built;
                            done.notify_all();
                        }
                        Work::Build(key, job) => {
                            if !closing {
                                // Opened after this wait, not to compete with the call.
                                let _ = device.poll(wgpu::PollType::wait_indefinitely());
                                if let Some(second) = open() {
                                    // A job that panics is a build that failed:
                                    // the worker goes on, and waiters are woken.
                                    let _ = catch_unwind(AssertUnwindSafe(|| job(&second)));
                                }
                            }
                            lock(state).builds.insert(key, Status::Done);
                            done.notify_all();
                        }
                    }
                }
            });
        if let Ok(worker) = worker {
            state.jobs = Some(sender);
            state.worker = Some(worker);
        }
    }

    /// How many kernels were handed to the second device alongside
    /// submissions, and how many of those it has built.
    #[cfg(test)]
    pub(crate) fn alongside_counts(&self) -> (usize, usize) {
        let state = lock(&self.state.0);
        (state.handed_alongside, state.built_alongside)
    }

    /// Blocks until every build asked for so far is done (releasing those
    /// that wait), and every kernel handed over alongside a submission.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn wait(&self) {
        self.release();
        let (state, done) = &*self.state;
        let mut state = lock(state);
        while state.alongside > 0 || state.builds.values().any(|&s| s == Status::Building) {
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

/// How many of a submission's new kernels, of WGSL code `lengths` (standing
/// for build times, see [`SubmittedKernel::code_length`]) in the order the
/// main device builds them, the second device takes from the end, to build
/// last first from the moment of the submission: the most whose total is at
/// most 3/4 of what the main device builds before it reaches them. The
/// margin covers what the lengths misjudge: a kernel the main device's
/// queue reaches while the second still builds it is built twice, and
/// waited for all the same. None when the last kernel alone is too long.
fn alongside_share(lengths: &[usize]) -> usize {
    let total: usize = lengths.iter().sum();
    let mut taken = 0;
    let mut share = 0;
    for &length in lengths.iter().rev() {
        let (theirs, before) = (taken + length, total - taken - length);
        if 4 * theirs > 3 * before {
            break;
        }
        taken = theirs;
        share += 1;
    }
    share
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
    fn the_second_device_takes_the_last_kernels_it_can_build_in_time() {
        // Nothing to share in one kernel, or where the last one is too long.
        assert_eq!(alongside_share(&[]), 0);
        assert_eq!(alongside_share(&[100]), 0);
        assert_eq!(alongside_share(&[100, 100]), 0);
        assert_eq!(alongside_share(&[100, 100, 180]), 0);
        // At most 3/4 of what comes before: 75 against 100, not 76.
        assert_eq!(alongside_share(&[100, 75]), 1);
        assert_eq!(alongside_share(&[100, 76]), 0);
        // A backward's first call (build times in ms): the two padded
        // copies, the weight gradient and its reduction stay; the bias
        // gradient, its reduction, the weight packing and the input
        // gradient's kernel go.
        assert_eq!(alongside_share(&[47, 46, 94, 63, 20, 17, 31, 100]), 4);
        // Taking stops at the first kernel that does not fit.
        assert_eq!(alongside_share(&[400, 10, 300, 10]), 1);
    }

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
