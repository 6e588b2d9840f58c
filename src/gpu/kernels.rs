//! The WGSL kernels of the crate and the cache of their compiled pipelines.
//!
//! Each kernel is described once ([`KernelSpec`]); its pipeline and bind group
//! layout are created the first time a context needs them and then reused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::buffers::grid;
use super::context::GpuContext;
use crate::error::Result;

/// How a kernel binds one resource (bindings are numbered in order, group 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// `var<uniform>`.
    Uniform,
    /// `var<storage, read>`.
    ReadOnly,
    /// `var<storage, read_write>`.
    ReadWrite,
}

/// A WGSL compute kernel: its source, entry point and bindings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KernelSpec {
    /// Name, used as label and cache key.
    pub name: &'static str,
    /// WGSL source.
    pub source: &'static str,
    /// Entry point.
    pub entry_point: &'static str,
    /// Workgroup size in invocations (one-dimensional kernels).
    pub workgroup_size: u32,
    /// Bindings in order.
    pub bindings: &'static [Binding],
    /// Values of the shader's `override` constants: one compiled variant per spec.
    pub constants: &'static [(&'static str, f64)],
}

/// A convolution kernel's source: the shared prelude, then the kernel.
macro_rules! conv_kernel {
    ($file:literal) => {
        concat!(
            include_str!("../../shaders/common.wgsl"),
            "\n",
            include_str!(concat!("../../shaders/", $file))
        )
    };
}

use Binding::{ReadOnly, ReadWrite, Uniform};

/// Every kernel of the crate: entry point `main`, 64 invocations per workgroup.
const fn spec(
    name: &'static str,
    source: &'static str,
    bindings: &'static [Binding],
) -> KernelSpec {
    KernelSpec {
        name,
        source,
        entry_point: "main",
        workgroup_size: 64,
        bindings,
        constants: &[],
    }
}

/// The direct forward kernel: params, input, weight, bias, output.
pub const DIRECT: KernelSpec = spec(
    "conv2d_direct",
    conv_kernel!("conv2d_direct.wgsl"),
    FORWARD_BINDINGS,
);

/// The bindings of every forward kernel: params, input, weight, bias, output.
const FORWARD_BINDINGS: &[Binding] = &[Uniform, ReadOnly, ReadOnly, ReadOnly, ReadWrite];

/// Tiled implicit GEMM (64 × 64 outputs per workgroup of 256): params, input, weight, bias, output.
pub const IMPLICIT_GEMM: KernelSpec = KernelSpec {
    workgroup_size: 256,
    ..spec(
        "conv2d_implicit_gemm",
        conv_kernel!("conv2d_implicit_gemm.wgsl"),
        FORWARD_BINDINGS,
    )
};

/// The tiled GEMM specialised for 1×1, stride-1, unpadded convolutions.
pub const GEMM_1X1: KernelSpec = KernelSpec {
    name: "conv2d_gemm_1x1",
    constants: &[("POINTWISE", 1.0)],
    ..IMPLICIT_GEMM
};

/// The blocked kernel's padded input copy: params, input, padded, input (as vec4s).
pub const PAD_INPUT: KernelSpec = spec(
    "pad_input",
    conv_kernel!("pad_input.wgsl"),
    &[Uniform, ReadOnly, ReadWrite, ReadOnly],
);

/// The blocked kernel's packed weight: params, weight, packed.
pub const PACK_WEIGHT: KernelSpec = KernelSpec {
    constants: &[("BLOCK", super::blocked::BLOCK as f64)],
    ..spec(
        "pack_weight",
        conv_kernel!("pack_weight.wgsl"),
        &[Uniform, ReadOnly, ReadWrite],
    )
};

/// Gradient of the padded input: params, grad_output, weight, grad_padded.
pub const GRAD_PADDED: KernelSpec = spec(
    "conv2d_grad_padded",
    conv_kernel!("conv2d_grad_padded.wgsl"),
    &[Uniform, ReadOnly, ReadOnly, ReadWrite],
);

/// The padding's backward along the width: params, grad_padded, folded columns.
pub const FOLD_COLUMNS: KernelSpec = KernelSpec {
    entry_point: "fold_columns",
    ..spec(
        "pad_backward_fold_columns",
        conv_kernel!("pad_backward.wgsl"),
        &[Uniform, ReadOnly, ReadWrite],
    )
};

/// The padding's backward along the height: params, folded columns, grad_input.
pub const FOLD_ROWS: KernelSpec = KernelSpec {
    name: "pad_backward_fold_rows",
    entry_point: "fold_rows",
    ..FOLD_COLUMNS
};

/// Weight-gradient partial sums: params, input, grad_output, partials.
pub const GRAD_WEIGHT: KernelSpec = spec(
    "conv2d_grad_weight",
    conv_kernel!("conv2d_grad_weight.wgsl"),
    &[Uniform, ReadOnly, ReadOnly, ReadWrite],
);

/// Sum of the partial blocks: params, partials, result.
pub const REDUCE_SPLITS: KernelSpec = spec(
    "reduce_splits",
    conv_kernel!("reduce_splits.wgsl"),
    &[Uniform, ReadOnly, ReadWrite],
);

/// Bias-gradient partial sums: params, grad_output, partials.
pub const GRAD_BIAS: KernelSpec = spec(
    "conv2d_grad_bias",
    conv_kernel!("conv2d_grad_bias.wgsl"),
    &[Uniform, ReadOnly, ReadWrite],
);

/// SGD update: sgd params, grad, value.
pub const SGD: KernelSpec = spec(
    "sgd",
    include_str!("../../shaders/sgd.wgsl"),
    &[Uniform, ReadOnly, ReadWrite],
);

/// Every kernel the crate ships, for validation tests.
#[cfg(test)]
pub const ALL: &[KernelSpec] = &[
    DIRECT,
    IMPLICIT_GEMM,
    GEMM_1X1,
    PAD_INPUT,
    PACK_WEIGHT,
    GRAD_PADDED,
    FOLD_COLUMNS,
    FOLD_ROWS,
    GRAD_WEIGHT,
    REDUCE_SPLITS,
    GRAD_BIAS,
    SGD,
];

/// Records one launch of `spec` over `invocations` threads into its own compute
/// pass, binding `buffers` in order (the uniform block first), with the pass's
/// start and end written to `timestamps` when given.
pub(crate) fn dispatch(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    spec: KernelSpec,
    buffers: &[&wgpu::Buffer],
    invocations: u64,
    timestamps: Option<wgpu::ComputePassTimestampWrites<'_>>,
) -> Result<()> {
    let kernel = ctx.kernel(spec);
    let (x, y) = grid(ctx, invocations, spec.workgroup_size)?;
    let entries: Vec<wgpu::BindGroupEntry> = buffers
        .iter()
        .enumerate()
        .map(|(i, buffer)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: buffer.as_entire_binding(),
        })
        .collect();
    let bind_group = ctx.device().create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(spec.name),
        layout: &kernel.layout,
        entries: &entries,
    });
    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some(spec.name),
        timestamp_writes: timestamps,
    });
    pass.set_pipeline(&kernel.pipeline);
    pass.set_bind_group(0, &bind_group, &[]);
    pass.dispatch_workgroups(x, y, 1);
    Ok(())
}

/// A compiled kernel.
#[derive(Debug)]
pub struct Kernel {
    /// The compute pipeline.
    pub pipeline: wgpu::ComputePipeline,
    /// Layout of bind group 0.
    pub layout: wgpu::BindGroupLayout,
}

impl Kernel {
    fn build(device: &wgpu::Device, spec: KernelSpec) -> Self {
        let entries: Vec<wgpu::BindGroupLayoutEntry> = spec
            .bindings
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: match b {
                        Binding::Uniform => wgpu::BufferBindingType::Uniform,
                        Binding::ReadOnly => wgpu::BufferBindingType::Storage { read_only: true },
                        Binding::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(spec.name),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(spec.name),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(spec.name),
            source: wgpu::ShaderSource::Wgsl(spec.source.into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(spec.name),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(spec.entry_point),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: spec.constants,
                ..Default::default()
            },
            cache: None,
        });
        Self { pipeline, layout }
    }
}

/// Pipelines built so far on one device, keyed by kernel name.
#[derive(Debug, Default)]
pub struct PipelineCache {
    kernels: Mutex<HashMap<&'static str, Arc<Kernel>>>,
}

impl PipelineCache {
    /// The compiled `spec`, built on first use.
    pub fn get(&self, device: &wgpu::Device, spec: KernelSpec) -> Arc<Kernel> {
        let mut kernels = self.kernels.lock().unwrap_or_else(|e| e.into_inner());
        kernels
            .entry(spec.name)
            .or_insert_with(|| Arc::new(Kernel::build(device, spec)))
            .clone()
    }

    /// Number of pipelines built.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.kernels.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shader_validates_with_naga() {
        for spec in ALL {
            let module = naga::front::wgsl::parse_str(spec.source)
                .unwrap_or_else(|e| panic!("{}: {}", spec.name, e.emit_to_string(spec.source)));
            let mut validator = naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::default(),
            );
            validator
                .validate(&module)
                .unwrap_or_else(|e| panic!("{}: {}", spec.name, e.emit_to_string(spec.source)));
            let entry = module
                .entry_points
                .iter()
                .find(|e| e.name == spec.entry_point)
                .unwrap_or_else(|| panic!("{}: no entry point {}", spec.name, spec.entry_point));
            assert_eq!(
                entry.workgroup_size,
                [spec.workgroup_size, 1, 1],
                "{}: workgroup size",
                spec.name
            );
            let bound = module
                .global_variables
                .iter()
                .filter(|(_, v)| v.binding.is_some())
                .count();
            assert_eq!(bound, spec.bindings.len(), "{}: binding count", spec.name);
        }
    }
}
