//! **wgpu-conv2d** runs `torch.nn.Conv2d`, exactly as PyTorch defines it, on any
//! GPU through wgpu and WGSL compute shaders (Vulkan, Metal, DX12, and lavapipe
//! on headless machines), with a CPU reference path to check every result against.
//!
//! ```no_run
//! use wgpu_conv2d::{Conv2d, Conv2dConfig, GpuContext, GpuConv2d, Padding, PaddingMode, Tensor};
//!
//! # fn main() -> Result<(), wgpu_conv2d::Conv2dError> {
//! let config = Conv2dConfig::new(3, 8, (3, 3))
//!     .with_padding(Padding::Same)
//!     .with_padding_mode(PaddingMode::Reflect);
//! let layer = Conv2d::new(config, 42)?; // PyTorch's default init, seeded
//! let input = Tensor::new([1, 3, 32, 32], vec![0.5; 3 * 32 * 32])?;
//!
//! let ctx = GpuContext::new()?;
//! let gpu = GpuConv2d::new(&ctx, &layer)?;
//! let output = gpu.forward(&input)?; // (1, 8, 32, 32)
//! let reference = layer.forward_cpu(&input)?;
//! assert_eq!(output.shape(), reference.shape());
//! # Ok(()) }
//! ```
//!
//! Every parameter of `nn.Conv2d` is supported: kernel size, stride, padding
//! (integers, pairs, `'same'`, `'valid'`), dilation, groups, bias and the four
//! padding modes, batched `(N, C, H, W)` or unbatched `(C, H, W)` input, in
//! `float32`, `float16` or `bfloat16` ([`DType`]). Invalid input gives a
//! [`Conv2dError`] whose message names the values, as PyTorch's do. How much
//! accuracy the automatic choice of kernel may trade for speed is a
//! [`Precision`].

#![warn(missing_docs)]

#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
mod config;
mod dtype;
mod error;
mod geometry;
mod gpu;
#[cfg(any(feature = "ndarray", feature = "image"))]
mod interop;
mod layer;
#[cfg(feature = "npy")]
pub mod npy;
mod precision;
mod reference;
mod tensor;

/// The wgpu this crate is built on: its types appear in the API
/// ([`GpuContext::device`], [`GpuTensor::buffer`], adapter information).
pub use wgpu;

/// The `half` crate whose `f16` and `bf16` the API takes and gives
/// ([`Tensor::from_f16`], [`Tensor::to_bf16_vec`], ndarray conversions).
pub use half;

pub use config::{Conv2dConfig, Padding, PaddingMode, Size2};
pub use dtype::DType;
pub use error::{Conv2dError, Result};
pub use geometry::{Axis, Conv2dGeometry};
pub use gpu::{
    ADAPTER_HELP, Adam, AdamConfig, Algorithm, BackwardAlgorithm, GpuContext, GpuConv2d, GpuGrads,
    GpuTensor, GradMask, PipelineCacheLoad, Sgd, SgdConfig, TuningRecord,
};
pub use layer::{Conv2d, Conv2dGrads};
pub use precision::Precision;
pub use tensor::Tensor;
