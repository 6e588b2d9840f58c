//! The GPU runtime, which knows nothing of convolutions: the context
//! (adapter, device, queue), the buffer pool, the kernel registry (pipelines
//! compiled once per kernel identity), the recorder of one call's commands,
//! buffer helpers and error scopes, kernels built ahead on a second device, the driver's loop limit, the subgroup
//! width kernels may rely on, and the table of measured choices.

#[cfg(not(target_arch = "wasm32"))]
mod background;
pub(crate) mod buffers;
mod context;
pub(crate) mod loops;
mod pipeline_cache;
mod pool;
pub(crate) mod recorder;
pub(crate) mod registry;
mod subgroups;
mod tuning;

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use background::Job;
pub use context::{ADAPTER_HELP, GpuContext};
pub use pipeline_cache::PipelineCacheLoad;
pub(crate) use pool::PooledBuffer;
pub(crate) use recorder::{Blocks, PendingTime, Recorder};
pub(crate) use registry::{KernelSpec, ShaderSource, WrittenKernel};
pub use tuning::TuningRecord;
