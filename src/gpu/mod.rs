//! The GPU path, in three layers that depend downwards only: the
//! `runtime` (context, buffer pool, kernel registry, recorder),
//! which knows nothing of convolutions; the convolution passes
//! (`conv`: forward and gradient kernels, each with its launch), which
//! know nothing of the operator; the dtype conversions (`convert`: f32 and
//! the packed 16-bit dtypes); and the operator on top ([`GpuConv2d`],
//! [`GpuTensor`], the parameter update in `optim`).

pub(crate) mod conv;
pub(crate) mod convert;
mod operator;
pub(crate) mod optim;
pub(crate) mod runtime;
mod tensor;

pub use conv::select::{Algorithm, BackwardAlgorithm};
pub use operator::{GpuConv2d, GpuGrads, GradMask};
pub use optim::{Adam, AdamConfig, Sgd, SgdConfig};
pub use runtime::{ADAPTER_HELP, GpuContext, PipelineCacheLoad, TuningRecord};
pub use tensor::GpuTensor;
