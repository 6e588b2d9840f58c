//! The convolution passes, built on the runtime: the uniform blocks
//! ([`params`]), the splitting of large tensors ([`plan`]), the choice of a
//! forward kernel ([`select`]), the forward kernels ([`forward`]) and the
//! gradient kernels ([`backward`]), each kernel with its launch arithmetic.
//! They know nothing of the operator that calls them.

pub(crate) mod backward;
pub(crate) mod forward;
pub(crate) mod params;
pub(crate) mod plan;
pub(crate) mod select;
mod sharing;
mod slicing;
mod unrolled;

/// A convolution kernel's source: the shared prelude (`shaders/common.wgsl`:
/// the uniform blocks, the workgroup size, the padding index map), then the
/// kernel's own file, then any further files of `shaders/` it uses.
macro_rules! conv_source {
    ($file:literal $(, $more:literal)*) => {
        concat!(
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/common.wgsl")),
            "\n",
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/", $file))
            $(, "\n", include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/", $more)))*
        )
    };
}
pub(crate) use conv_source;

#[cfg(test)]
mod tests {
    use super::backward::{grad_bias, grad_input, grad_weight, reduce};
    use super::forward::{blocked, direct, implicit_gemm};
    use crate::gpu::runtime::registry::tests::validate;

    #[test]
    fn every_written_kernel_validates_with_naga() {
        for kernel in [
            direct::DIRECT,
            implicit_gemm::IMPLICIT_GEMM,
            implicit_gemm::GEMM_1X1,
            blocked::PAD_INPUT,
            blocked::PAD_INPUT_BORDER,
            blocked::PAD_INPUT_BF16,
            blocked::PAD_INPUT_BORDER_BF16,
            grad_input::GRAD_PADDED,
            grad_input::FOLD_COLUMNS,
            grad_input::FOLD_ROWS,
            grad_input::TRANSPOSE_WEIGHT,
            grad_input::SCATTER_PHASE,
            grad_weight::GRAD_WEIGHT,
            grad_weight::gemm::GRAD_WEIGHT_GEMM,
            reduce::REDUCE_SPLITS,
            grad_bias::GRAD_BIAS,
        ]
        .into_iter()
        .chain(
            blocked::PACK_WEIGHT
                .iter()
                .flat_map(|(_, _, kernels)| *kernels),
        ) {
            validate(&kernel.spec());
        }
    }
}
