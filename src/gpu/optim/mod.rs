//! Optimisers on the GPU, apart from the operator: `torch.optim.SGD` and
//! `torch.optim.Adam`/`AdamW` with PyTorch's update rules, their state
//! (momentum buffers, moments, step counts) kept on the GPU per parameter.
//! They update parameter buffers; the operator gives them a layer's
//! (`step(&mut GpuConv2d, &GpuGrads)`, in `operator/optimise.rs`).

mod adam;
mod sgd;

pub use adam::{Adam, AdamConfig};
pub(crate) use sgd::encode_plain_sgd;
pub use sgd::{Sgd, SgdConfig};

/// One parameter buffer to update: its identity (a layer's id, and 0 for
/// the weight, 1 for the bias: optimiser state is kept per identity), the
/// buffer, its length, and its gradient (`f32`, at least `len` elements).
pub(crate) struct Parameter<'a> {
    pub key: (u64, u8),
    pub value: &'a wgpu::Buffer,
    pub len: usize,
    pub grad: wgpu::Buffer,
}
