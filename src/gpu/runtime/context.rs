//! The GPU context: instance, adapter, device, queue and the pipeline cache.

use std::fmt;
use std::sync::{Arc, Mutex};

#[cfg(not(target_arch = "wasm32"))]
use super::background::{BackgroundBuilds, Job, KernelsJob, SubmittedKernel};
use super::pipeline_cache::{self, PipelineCacheLoad};
use super::pool::{BufferPool, Kind, PooledBuffer};
use super::registry::{Kernel, KernelSpec, Registry};
use super::subgroups;
#[cfg(not(target_arch = "wasm32"))]
use super::tuning::write_replacing;
use super::tuning::{TuningRecord, TuningTable};
use crate::error::{Conv2dError, Result};
use crate::precision::Precision;

/// How to get an adapter, appended to every "no adapter" error.
#[cfg(target_arch = "wasm32")]
pub const ADAPTER_HELP: &str = "No WebGPU adapter was found. Use a browser with WebGPU enabled (Chrome or \
Edge 113+; on Linux, Chromium with --enable-unsafe-webgpu), or Deno 2, and a page served over https or \
from localhost.";

/// How to get an adapter, appended to every "no adapter" error.
#[cfg(not(target_arch = "wasm32"))]
pub const ADAPTER_HELP: &str = "No GPU adapter was found. On a headless Linux machine install lavapipe, \
Mesa's CPU Vulkan driver (Debian/Ubuntu: `apt-get install -y mesa-vulkan-drivers`); otherwise install \
your GPU's Vulkan, Metal or DX12 driver. WGPU_BACKEND (vulkan, metal, dx12) and WGPU_ADAPTER_NAME \
(a substring of the adapter's name) choose among adapters.";

/// A connection to one GPU: adapter, device and queue, shared by every operator
/// created from it. Cheap to clone (all clones share the device), `Send + Sync`.
///
/// The adapter is wgpu's default choice, overridable with the usual
/// `WGPU_BACKEND`, `WGPU_ADAPTER_NAME` and `WGPU_POWER_PREF` environment variables.
#[derive(Clone)]
pub struct GpuContext {
    inner: Arc<Inner>,
    /// Cap on one buffer binding, at most the device's limit.
    max_binding_bytes: u64,
    /// Whether callers measure their choices (see [`GpuContext::with_autotune`]).
    autotune: bool,
    /// The accuracy automatic choices keep (see [`GpuContext::with_precision`]).
    precision: Precision,
    /// Whether kernels may share loads across a subgroup (see
    /// [`GpuContext::with_subgroups`]).
    subgroups: bool,
    /// Whether first calls may run a kernel quicker to build while the
    /// fast one builds elsewhere (see [`GpuContext::with_builds_ahead`]).
    /// Never on the web, which has no thread to build on.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    build_ahead: bool,
}

struct Inner {
    /// Kernels built ahead of use on a second device (llvmpipe). First, so
    /// that it is dropped, and its build in progress waited for, before the
    /// device. Native only: a browser has no threads to build on.
    #[cfg(not(target_arch = "wasm32"))]
    builds_ahead: BackgroundBuilds,
    adapter: wgpu::Adapter,
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    pipelines: Registry,
    buffers: Arc<BufferPool>,
    /// Timestamp query sets of earlier timed calls, for reuse.
    query_sets: Mutex<Vec<wgpu::QuerySet>>,
    /// The adapter's subgroup width, where kernels may rely on it
    /// (src/gpu/runtime/subgroups.rs).
    subgroup_width: Option<u32>,
    /// Set by the device-lost callback; every later call fails with it.
    lost: Arc<Mutex<Option<String>>>,
    /// Measured choices, shared by every clone.
    tuning: TuningTable,
}

impl fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.inner.info.name)
            .field("backend", &self.inner.info.backend)
            .finish()
    }
}

impl GpuContext {
    /// Opens the default adapter (blocking; native only: on the web use
    /// [`new_async`](Self::new_async), as a browser forbids blocking).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new() -> Result<Self> {
        pollster::block_on(Self::new_async())
    }

    /// Opens the default adapter.
    pub async fn new_async() -> Result<Self> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = select_adapter(&instance).await?;
        Self::on_adapter(adapter, true).await
    }

    /// A context on a device of its own on `adapter`, building kernels ahead
    /// of use on a second device where that helps (`build_ahead`, see
    /// [`with_builds_ahead`](Self::with_builds_ahead)).
    pub(crate) async fn on_adapter(adapter: wgpu::Adapter, build_ahead: bool) -> Result<Self> {
        let info = adapter.get_info();
        // Ask for everything the adapter offers: large tensors need the real
        // buffer and dispatch limits, not WebGPU's conservative defaults.
        let limits = adapter.limits();
        // Timestamps time the kernels in benchmarks, a pipeline cache keeps
        // compiled kernels across processes (Vulkan); everything works without.
        // Subgroup operations let kernels share loads between lanes; asked
        // for natively only (the web's are not yet in every browser, and
        // untested there).
        let wanted = wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::PIPELINE_CACHE
            | if cfg!(target_arch = "wasm32") {
                wgpu::Features::empty()
            } else {
                wgpu::Features::SUBGROUP
            };
        let features = adapter.features() & wanted;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("wgpu-conv2d"),
                required_features: features,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Conv2dError::RequestDevice {
                adapter: info.name.clone(),
                reason: e.to_string(),
            })?;

        let lost = Arc::new(Mutex::new(None));
        let lost_flag = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            *lost_flag.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(format!("{reason:?}: {message}"));
        });
        // wgpu's default handler panics; every operation runs inside error
        // scopes, so anything that still arrives here is only logged.
        device.on_uncaptured_error(Arc::new(|e| {
            eprintln!("wgpu-conv2d: uncaptured GPU error: {e}");
        }));

        let max_binding_bytes = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        let pipelines = Registry::default();
        if features.contains(wgpu::Features::PIPELINE_CACHE) {
            // SAFETY: no initial data.
            pipelines.set_pipeline_cache(unsafe {
                device.create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
                    label: Some("wgpu-conv2d pipelines"),
                    data: None,
                    fallback: true,
                })
            });
        }
        let subgroup_width = subgroups::verified_width(&device, &queue, features, &info).await;
        #[cfg(not(target_arch = "wasm32"))]
        let builds_ahead = if build_ahead {
            BackgroundBuilds::new(&info, &adapter, &device)
        } else {
            BackgroundBuilds::none()
        };
        #[cfg(target_arch = "wasm32")]
        let _ = build_ahead;
        Ok(Self {
            max_binding_bytes,
            autotune: false,
            precision: Precision::Highest,
            subgroups: true,
            build_ahead: true,
            inner: Arc::new(Inner {
                #[cfg(not(target_arch = "wasm32"))]
                builds_ahead,
                adapter,
                device,
                queue,
                info,
                limits,
                pipelines,
                buffers: Arc::default(),
                query_sets: Mutex::new(Vec::new()),
                subgroup_width,
                lost,
                tuning: TuningTable::default(),
            }),
        })
    }

    /// Name, backend, device type and driver of the adapter.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.inner.info
    }

    /// One line naming the adapter: `llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, Cpu, driver llvmpipe Mesa 22.3.6)`.
    pub fn describe(&self) -> String {
        let i = &self.inner.info;
        format!(
            "{} ({:?}, {:?}, driver {} {})",
            i.name, i.backend, i.device_type, i.driver, i.driver_info
        )
    }

    /// The limits the device was created with (the adapter's own).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.inner.limits
    }

    /// The wgpu adapter.
    pub fn adapter(&self) -> &wgpu::Adapter {
        &self.inner.adapter
    }

    /// The wgpu device.
    pub fn device(&self) -> &wgpu::Device {
        &self.inner.device
    }

    /// The wgpu queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.inner.queue
    }

    /// The pipeline of `spec`, compiled on first use.
    pub(crate) fn kernel(&self, spec: &KernelSpec) -> Arc<Kernel> {
        self.inner.pipelines.get(&self.inner.device, spec)
    }

    /// Fails, naming the limit, when the device cannot run `spec`.
    pub(crate) fn check_fits(&self, spec: &KernelSpec) -> Result<()> {
        match spec.exceeds(&self.inner.limits) {
            None => Ok(()),
            Some((limit, needed, allowed)) => Err(Conv2dError::DeviceLimit {
                kernel: spec.label(),
                limit,
                needed,
                allowed,
                adapter: self.inner.info.name.clone(),
            }),
        }
    }

    /// Whether kernels can be timed with GPU timestamp queries.
    pub fn has_timestamps(&self) -> bool {
        self.inner
            .device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// A timestamp query set of `count` entries: a reused one if there is one.
    pub(crate) fn take_query_set(&self, count: u32) -> wgpu::QuerySet {
        let reused = self
            .inner
            .query_sets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        reused.unwrap_or_else(|| {
            self.inner
                .device
                .create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("kernel time"),
                    ty: wgpu::QueryType::Timestamp,
                    count,
                })
        })
    }

    /// Keeps `set` for the next timed call.
    pub(crate) fn give_back_query_set(&self, set: wgpu::QuerySet) {
        self.inner
            .query_sets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(set);
    }

    /// A buffer of `kind` and `size` bytes from the context's pool.
    pub(crate) fn pooled(&self, kind: Kind, size: u64, label: &str) -> PooledBuffer {
        PooledBuffer::get(&self.inner.buffers, &self.inner.device, kind, size, label)
    }

    /// Bytes held by idle pooled buffers, kept for reuse by later calls.
    pub fn pooled_bytes(&self) -> u64 {
        self.inner.buffers.idle_bytes()
    }

    /// GPU buffers the crate has created on this context so far; calls that
    /// find pooled buffers of the sizes they need create none.
    pub fn buffers_created(&self) -> u64 {
        self.inner.buffers.created()
    }

    /// Whether `other` is a clone of this context (the same device).
    pub fn same_device(&self, other: &GpuContext) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Number of pipelines compiled so far (they are built once per context).
    pub fn pipelines_built(&self) -> usize {
        self.inner.pipelines.len()
    }

    /// Fills in this adapter's name in a size error raised without one.
    pub(crate) fn name_adapter(&self, error: Conv2dError) -> Conv2dError {
        match error {
            Conv2dError::TensorTooLarge {
                what, bytes, limit, ..
            } => Conv2dError::TensorTooLarge {
                what,
                bytes,
                limit,
                adapter: self.inner.info.name.clone(),
            },
            other => other,
        }
    }

    /// Fails with [`Conv2dError::DeviceLost`] once the device is gone.
    pub(crate) fn check_alive(&self) -> Result<()> {
        match &*self.inner.lost.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(reason) => Err(Conv2dError::DeviceLost(reason.clone())),
            None => Ok(()),
        }
    }

    /// Largest buffer one kernel binding may hold, in bytes. Larger tensors are
    /// split into several dispatches.
    pub fn max_binding_bytes(&self) -> u64 {
        self.max_binding_bytes
    }

    /// A context on the same device whose bindings hold at most `bytes` (never more
    /// than the device allows): to bound the memory of one dispatch, or to exercise
    /// the splitting of large tensors on small ones.
    pub fn with_max_binding_bytes(&self, bytes: u64) -> Self {
        let l = &self.inner.limits;
        Self {
            max_binding_bytes: bytes
                .clamp(4, l.max_storage_buffer_binding_size.min(l.max_buffer_size)),
            ..self.clone()
        }
    }

    /// A context on the same device under which `Algorithm::Auto` times its
    /// candidates instead of following fixed rules: the first call of each
    /// shape class runs every algorithm `Auto` may pick once on that shape
    /// (random data), discards any whose output disagrees with the direct
    /// kernel's beyond the fp32 bound, and keeps the fastest for the life of
    /// the device's contexts (all clones share the table); likewise
    /// `BackwardAlgorithm::Auto`'s weight gradient, per shape class. See
    /// [`tuning_records`](Self::tuning_records),
    /// [`save_tuning`](Self::save_tuning) and
    /// [`load_tuning`](Self::load_tuning).
    pub fn with_autotune(&self, on: bool) -> Self {
        Self {
            autotune: on,
            ..self.clone()
        }
    }

    /// Whether `Algorithm::Auto` is tuned on this context.
    pub fn autotunes(&self) -> bool {
        self.autotune
    }

    /// A context on the same device whose kernels may (`on`, the default) or
    /// may not share loads between the lanes of a subgroup, where the adapter
    /// offers subgroup operations with one fixed width. Either way they
    /// compute the same sums in the same order; off, they run the kernels
    /// that use no subgroup operation (to compare the two, or to rule the
    /// driver's subgroups out).
    pub fn with_subgroups(&self, on: bool) -> Self {
        Self {
            subgroups: on,
            ..self.clone()
        }
    }

    /// The width of the adapter's subgroups, where kernels may share loads
    /// across them: subgroup operations are on (the adapter has them, the
    /// context allows them: [`with_subgroups`](Self::with_subgroups)), every
    /// subgroup has that one width, and a probe at the device's creation saw
    /// them made of consecutive invocations. `None` otherwise.
    pub fn subgroup_width(&self) -> Option<u32> {
        self.inner.subgroup_width.filter(|_| self.subgroups)
    }

    /// A context on the same device whose layers' `Algorithm::Auto` keeps
    /// `precision` (see [`Precision`]; [`Precision::Highest`] by default),
    /// unless a layer overrides it
    /// ([`GpuConv2d::with_precision`](crate::GpuConv2d::with_precision)).
    pub fn with_precision(&self, precision: Precision) -> Self {
        Self {
            precision,
            ..self.clone()
        }
    }

    /// A context on the same device whose layers' `Algorithm::Auto` (and
    /// `BackwardAlgorithm::Auto`) may (`on`, the default) or may not run
    /// kernels that are quicker to build for the first calls of a shape
    /// whose picked kernels are not built yet, while those are built on a
    /// second device in a background thread, once the call is done.
    ///
    /// This applies on llvmpipe (lavapipe) alone, with Mesa's shader cache
    /// on: it builds each kernel with LLVM at its first dispatch, seconds for
    /// the large unrolled ones, and keeps it in the on-disk cache that the
    /// second device fills for this one. The quicker kernels are the blocked
    /// kernel with 8 output channels and 4 outputs per invocation (the
    /// forward, and the input gradient's phases) and the blocked weight
    /// gradient with at most 72 sums per invocation; their results agree
    /// with the picked kernels' within the same fp32 bound, though not bit
    /// for bit. The same second device also shares each call's first
    /// builds, whatever the algorithm: of the kernels a submission runs for
    /// the first time, it builds the last ones at once while the main
    /// device's queue builds the first, which changes where kernels are
    /// built, never what they compute. Dropping the device's last context
    /// waits for a build in progress. Forced algorithms and autotuned
    /// contexts run their picked kernels from the first call.
    pub fn with_builds_ahead(&self, on: bool) -> Self {
        Self {
            build_ahead: on,
            ..self.clone()
        }
    }

    /// Whether first calls on this context may run a kernel quicker to
    /// build while the fast one is built ahead: allowed
    /// ([`with_builds_ahead`](Self::with_builds_ahead)) and of use on this
    /// driver.
    pub fn builds_ahead(&self) -> bool {
        #[cfg(not(target_arch = "wasm32"))]
        return self.build_ahead && self.inner.builds_ahead.applies();
        #[cfg(target_arch = "wasm32")]
        false
    }

    /// Blocks until every kernel being built ahead of use is built (see
    /// [`with_builds_ahead`](Self::with_builds_ahead)): before timing a
    /// layer's later calls, for instance. Returns at once where none is.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn wait_for_builds_ahead(&self) {
        self.inner.builds_ahead.wait();
    }

    /// Whether the kernel `key` has been built ahead; the first time a key
    /// is asked for, `start` makes the job that builds it on the second
    /// device, which starts at the next
    /// [`release_builds_ahead`](Self::release_builds_ahead). Always `true`
    /// where building ahead does not apply.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn built_ahead(&self, key: &str, start: impl FnOnce() -> Job) -> bool {
        !self.builds_ahead() || self.inner.builds_ahead.ready(key, start)
    }

    /// Starts the builds asked for since the last call of this, once the
    /// work submitted so far is done: for a call to make after submitting
    /// itself. Nothing on the web.
    pub(crate) fn release_builds_ahead(&self) {
        #[cfg(not(target_arch = "wasm32"))]
        self.inner.builds_ahead.release();
    }

    /// Shares the first builds of a submission of `kernels` (in order; the
    /// recorder notes them only where this context
    /// [`builds_ahead`](Self::builds_ahead)) with the second device: the job
    /// `build` makes of those the second takes runs there at once (see
    /// `BackgroundBuilds::alongside`). For the recorder, just before it
    /// submits.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn build_alongside(
        &self,
        kernels: &[SubmittedKernel],
        build: impl FnOnce(Vec<KernelSpec>) -> KernelsJob,
    ) {
        self.inner.builds_ahead.alongside(kernels, build);
    }

    /// How many kernels were handed to the second device alongside this
    /// device's submissions, and how many of those it built without error.
    #[cfg(test)]
    pub(crate) fn alongside_counts(&self) -> (usize, usize) {
        self.inner.builds_ahead.alongside_counts()
    }

    /// A context that builds ahead whatever the driver (see
    /// [`BackgroundBuilds::force`]).
    #[cfg(test)]
    pub(crate) fn forcing_builds_ahead(&self) -> Self {
        self.inner.builds_ahead.force();
        self.with_builds_ahead(true)
    }

    /// The precision this context's layers keep unless they override it.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The tuning measurements made on this device so far, in order: each
    /// shape class, its candidates' times or why they were discarded, and
    /// the choice.
    pub fn tuning_records(&self) -> Vec<TuningRecord> {
        self.inner.tuning.records()
    }

    /// Whether compiled kernels can be kept across processes
    /// ([`save_pipeline_cache`](Self::save_pipeline_cache)): wgpu offers a
    /// pipeline cache on Vulkan.
    pub fn has_pipeline_cache(&self) -> bool {
        self.inner.pipelines.pipeline_cache().is_some()
    }

    /// The driver's data for the kernels compiled so far, sealed for this
    /// adapter (a header naming the adapter, driver and wgpu release, and a
    /// SHA-256 digest of the contents), for
    /// [`load_pipeline_cache_bytes`](Self::load_pipeline_cache_bytes) in a
    /// later process; `None` without a pipeline cache. What the driver's part
    /// holds is its choice: lavapipe (Mesa 22.3) and SwiftShader write only a
    /// header, and lavapipe keeps compiled shaders in Mesa's own on-disk cache
    /// (`~/.cache/mesa_shader_cache`) instead.
    pub fn pipeline_cache_bytes(&self) -> Option<Vec<u8>> {
        let data = self.inner.pipelines.pipeline_cache()?.get_data()?;
        Some(pipeline_cache::seal(
            &pipeline_cache::key(&self.inner.info),
            &data,
        ))
    }

    /// Writes [`pipeline_cache_bytes`](Self::pipeline_cache_bytes) to `path`,
    /// through a temporary file renamed over it. Returns whether there was
    /// anything to write: `false` without a pipeline cache.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn save_pipeline_cache(&self, path: impl AsRef<std::path::Path>) -> Result<bool> {
        let Some(bytes) = self.pipeline_cache_bytes() else {
            return Ok(false);
        };
        write_replacing(path.as_ref(), &bytes)?;
        Ok(true)
    }

    /// Compiles later kernels through pipeline cache data that
    /// [`pipeline_cache_bytes`](Self::pipeline_cache_bytes) made, so that the
    /// driver can skip compiling what it holds.
    ///
    /// Drivers trust that data, so none reaches wgpu unless it is, byte for
    /// byte, what this crate sealed for this adapter, driver and wgpu
    /// release (its SHA-256 digest and key match); wgpu then checks its own
    /// header, and data it refuses is not used either. Truncated, damaged,
    /// foreign or unrelated data is refused with the reason, and kernels
    /// compile as without a cache; the results are the same either way. The
    /// digest detects damage, not intent: whoever can write the data can
    /// write a matching digest, as they could the driver's own shader cache,
    /// so keep the file where only you can write.
    pub fn load_pipeline_cache_bytes(&self, bytes: &[u8]) -> PipelineCacheLoad {
        if !self.has_pipeline_cache() {
            return PipelineCacheLoad::Unsupported;
        }
        let data = match pipeline_cache::open(bytes, &pipeline_cache::key(&self.inner.info)) {
            Ok(data) => data,
            Err(reason) => return PipelineCacheLoad::Refused(reason),
        };
        let scope = self
            .inner
            .device
            .push_error_scope(wgpu::ErrorFilter::Validation);
        // SAFETY: `data` is exactly what `pipeline_cache_bytes` sealed for
        // this adapter, driver and wgpu release: its SHA-256 digest and key
        // were checked above. Without `fallback`, data that wgpu's own header
        // check refuses raises an error (caught below) instead of being used.
        let cache = unsafe {
            self.inner
                .device
                .create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
                    label: Some("wgpu-conv2d pipelines"),
                    data: Some(data),
                    fallback: false,
                })
        };
        // Native wgpu reports the error at once; this runs only where there is
        // a pipeline cache, which WebGPU never has.
        match ready_now(scope.pop()) {
            Some(None) => {
                self.inner.pipelines.set_pipeline_cache(cache);
                PipelineCacheLoad::Accepted
            }
            Some(Some(error)) => PipelineCacheLoad::Refused(format!("wgpu refused it: {error}")),
            None => PipelineCacheLoad::Refused("wgpu did not answer at once".into()),
        }
    }

    /// [`load_pipeline_cache_bytes`](Self::load_pipeline_cache_bytes) on the
    /// contents of `path` (written by
    /// [`save_pipeline_cache`](Self::save_pipeline_cache)); a missing file is
    /// [`PipelineCacheLoad::Missing`], a file that cannot be read an error.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_pipeline_cache(
        &self,
        path: impl AsRef<std::path::Path>,
    ) -> Result<PipelineCacheLoad> {
        if !self.has_pipeline_cache() {
            return Ok(PipelineCacheLoad::Unsupported);
        }
        let path = path.as_ref();
        match std::fs::read(path) {
            Ok(bytes) => Ok(self.load_pipeline_cache_bytes(&bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PipelineCacheLoad::Missing),
            Err(e) => Err(Conv2dError::TuningFile(format!("{}: {e}", path.display()))),
        }
    }

    /// The device's tuning table.
    pub(crate) fn tuning(&self) -> &TuningTable {
        &self.inner.tuning
    }

    /// The adapter as a tuning table names it: name, backend and driver.
    pub(crate) fn adapter_identity(&self) -> String {
        let i = &self.inner.info;
        format!(
            "{} ({:?}, {} {})",
            i.name, i.backend, i.driver, i.driver_info
        )
    }
}

/// The adapter named by `WGPU_ADAPTER_NAME`, or wgpu's default choice.
async fn select_adapter(instance: &wgpu::Instance) -> Result<wgpu::Adapter> {
    if let Ok(wanted) = std::env::var("WGPU_ADAPTER_NAME") {
        let wanted = wanted.to_lowercase();
        let adapters = instance.enumerate_adapters(wgpu::Backends::all()).await;
        let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
        return adapters
            .into_iter()
            .find(|a| a.get_info().name.to_lowercase().contains(&wanted))
            .ok_or_else(|| {
                Conv2dError::NoAdapter(format!(
                    "WGPU_ADAPTER_NAME={wanted:?} matches none of the adapters found ({}). {ADAPTER_HELP}",
                    if names.is_empty() { "none".to_string() } else { names.join(", ") }
                ))
            });
    }
    instance
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::from_env().unwrap_or_default(),
            ..Default::default()
        })
        .await
        .map_err(|e| Conv2dError::NoAdapter(format!("{e}. {ADAPTER_HELP}")))
}

/// The output of `future` if it is ready on its first poll.
fn ready_now<F: std::future::Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    }
}
