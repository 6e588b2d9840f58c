//! The WGSL kernels of the crate and the cache of their compiled pipelines.
//!
//! Each kernel is described once ([`KernelSpec`]); its pipeline and bind group
//! layout are created the first time a context needs them and then reused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

/// The direct forward kernel: params, input, weight, bias, output.
pub const DIRECT: KernelSpec = KernelSpec {
    name: "conv2d_direct",
    source: include_str!("../../shaders/conv2d_direct.wgsl"),
    entry_point: "main",
    workgroup_size: 64,
    bindings: &[
        Binding::Uniform,
        Binding::ReadOnly,
        Binding::ReadOnly,
        Binding::ReadOnly,
        Binding::ReadWrite,
    ],
};

/// Every kernel the crate ships, for validation tests.
#[cfg(test)]
pub const ALL: &[KernelSpec] = &[DIRECT];

/// A compiled kernel.
#[derive(Debug)]
pub struct Kernel {
    /// What it was built from.
    pub spec: KernelSpec,
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
            compilation_options: Default::default(),
            cache: None,
        });
        Self {
            spec,
            pipeline,
            layout,
        }
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
