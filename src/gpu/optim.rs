//! Parameter updates on the GPU: plain SGD (`shaders/sgd.wgsl`).

use bytemuck::{Pod, Zeroable};

use crate::error::Result;
use crate::gpu::conv::params::to_u32;
use crate::gpu::runtime::registry::Binding::{ReadOnly, ReadWrite, Uniform};
use crate::gpu::runtime::{Recorder, WrittenKernel};

/// The uniform block of `shaders/sgd.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
struct SgdParams {
    lr: f32,
    len: u32,
    _pad0: u32,
    _pad1: u32,
}

/// SGD update: params, grad, value.
const SGD: WrittenKernel = WrittenKernel::new(
    "sgd",
    include_str!("../../shaders/sgd.wgsl"),
    64,
    &[Uniform, ReadOnly, ReadWrite],
);

/// Records `value -= lr · grad` over the first `len` elements.
pub(crate) fn encode_sgd(
    rec: &mut Recorder,
    grad: &wgpu::Buffer,
    value: &wgpu::Buffer,
    len: usize,
    lr: f32,
) -> Result<()> {
    let params = SgdParams {
        lr,
        len: to_u32("parameters", len)?,
        _pad0: 0,
        _pad1: 0,
    };
    let params = rec.uniform("sgd", &params);
    rec.dispatch(&SGD.spec(), &[&params, grad, value], len as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::conv::params::tests::assert_mirrors;
    use crate::gpu::runtime::registry::tests::validate;

    #[test]
    fn the_kernel_validates_and_its_uniform_mirrors_wgsl() {
        validate(&SGD.spec());
        assert_mirrors::<SgdParams>(SGD.source, "SgdParams", &["lr", "len", "_pad0", "_pad1"]);
    }
}
