//! The GPU path: context, kernels, buffers and the [`GpuConv2d`] operator.

mod algorithm;
mod backward;
mod blocked;
pub(crate) mod buffers;
mod context;
mod conv2d;
pub(crate) mod kernels;
mod loops;
pub(crate) mod params;
pub(crate) mod plan;
mod pool;
mod recorder;
mod tensor;

pub use algorithm::Algorithm;
pub use context::{ADAPTER_HELP, GpuContext};
pub use conv2d::GpuConv2d;
pub use tensor::GpuTensor;
