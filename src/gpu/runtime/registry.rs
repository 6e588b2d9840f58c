//! Kernels by identity, and the cache of their compiled pipelines.
//!
//! A [`KernelSpec`] says how to build one compute pipeline; its [`KernelKey`]
//! (the kernel family, the values that select a generated variant, and the
//! override constants) says which pipeline it is. The [`Registry`] compiles
//! each key once per device: outside its lock, so that compiling one kernel
//! stalls no thread that wants another, and once, so that two threads wanting
//! the same kernel share one compilation.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// How a kernel binds one resource (bindings are numbered in order, group 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Binding {
    /// `var<uniform>`.
    Uniform,
    /// `var<storage, read>`.
    ReadOnly,
    /// `var<storage, read_write>`.
    ReadWrite,
}

/// Where a kernel's WGSL comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ShaderSource {
    /// Written out in the repository.
    Static(&'static str),
    /// Generated from the key's variant values, only when the kernel is compiled.
    Generated(fn(&[u32]) -> String),
}

/// The name every kernel gives its workgroup size, an `override` the
/// registry sets from [`KernelSpec::workgroup_size`].
pub(crate) const WORKGROUP_SIZE: &str = "WORKGROUP_SIZE";

/// A WGSL compute kernel: how to build its pipeline.
#[derive(Debug, Clone)]
pub(crate) struct KernelSpec {
    /// The kernel family, also its label.
    pub family: &'static str,
    /// Values that select a generated variant (empty for written kernels).
    pub variant: Vec<u32>,
    /// The source.
    pub source: ShaderSource,
    /// Entry point.
    pub entry_point: &'static str,
    /// Workgroup size in invocations (one-dimensional kernels).
    pub workgroup_size: u32,
    /// Bindings in order.
    pub bindings: &'static [Binding],
    /// Values of the shader's `override` constants besides the workgroup size.
    pub constants: &'static [(&'static str, f64)],
    /// Bytes of `var<workgroup>` memory one workgroup uses (from the same
    /// Rust constants that size the shader's arrays).
    pub workgroup_bytes: u32,
}

/// Which compiled pipeline a spec is: family, variant values and constants.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct KernelKey {
    family: &'static str,
    entry_point: &'static str,
    variant: Vec<u32>,
    /// Constants as `(name, bits)`: f64 is not `Hash`.
    constants: Vec<(&'static str, u64)>,
}

impl KernelSpec {
    /// Its identity.
    pub(crate) fn key(&self) -> KernelKey {
        KernelKey {
            family: self.family,
            entry_point: self.entry_point,
            variant: self.variant.clone(),
            constants: self
                .pipeline_constants()
                .into_iter()
                .map(|(name, value)| (name, value.to_bits()))
                .collect(),
        }
    }

    /// The WGSL text (generated now for a generated variant).
    pub(crate) fn source_text(&self) -> Cow<'static, str> {
        match self.source {
            ShaderSource::Static(text) => Cow::Borrowed(text),
            ShaderSource::Generated(generate) => Cow::Owned(generate(&self.variant)),
        }
    }

    /// Every `override` value: the workgroup size and the spec's constants.
    pub(crate) fn pipeline_constants(&self) -> Vec<(&'static str, f64)> {
        std::iter::once((WORKGROUP_SIZE, f64::from(self.workgroup_size)))
            .chain(self.constants.iter().copied())
            .collect()
    }

    /// A label naming the family and the variant.
    pub(crate) fn label(&self) -> String {
        if self.variant.is_empty() {
            self.family.to_string()
        } else {
            format!("{}{:?}", self.family, self.variant)
        }
    }
}

/// A kernel written out in the repository, as a constant; [`spec`](Self::spec)
/// makes its [`KernelSpec`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct WrittenKernel {
    pub family: &'static str,
    pub source: &'static str,
    pub entry_point: &'static str,
    pub workgroup_size: u32,
    pub bindings: &'static [Binding],
    pub constants: &'static [(&'static str, f64)],
    pub workgroup_bytes: u32,
}

impl WrittenKernel {
    /// A kernel with entry point `main`.
    pub(crate) const fn new(
        family: &'static str,
        source: &'static str,
        workgroup_size: u32,
        bindings: &'static [Binding],
    ) -> Self {
        Self {
            family,
            source,
            entry_point: "main",
            workgroup_size,
            bindings,
            constants: &[],
            workgroup_bytes: 0,
        }
    }

    /// The same kernel, using `bytes` of workgroup memory per workgroup.
    pub(crate) const fn with_workgroup_bytes(self, bytes: u32) -> Self {
        Self {
            workgroup_bytes: bytes,
            ..self
        }
    }

    /// The same kernel with another entry point and family name.
    pub(crate) const fn entry(self, family: &'static str, entry_point: &'static str) -> Self {
        Self {
            family,
            entry_point,
            ..self
        }
    }

    /// The same kernel with `override` constants.
    pub(crate) const fn with_constants(
        self,
        family: &'static str,
        constants: &'static [(&'static str, f64)],
    ) -> Self {
        Self {
            family,
            constants,
            ..self
        }
    }

    /// The spec.
    pub(crate) fn spec(&self) -> KernelSpec {
        KernelSpec {
            family: self.family,
            variant: Vec::new(),
            source: ShaderSource::Static(self.source),
            entry_point: self.entry_point,
            workgroup_size: self.workgroup_size,
            bindings: self.bindings,
            constants: self.constants,
            workgroup_bytes: self.workgroup_bytes,
        }
    }
}

impl KernelSpec {
    /// Why the device with `limits` cannot run this kernel, if it cannot:
    /// the first limit it exceeds, as `(limit name, needed, allowed)`.
    pub(crate) fn exceeds(&self, limits: &wgpu::Limits) -> Option<(&'static str, u64, u64)> {
        let count = |kind: Binding| self.bindings.iter().filter(|b| **b == kind).count() as u64;
        let storage = count(Binding::ReadOnly) + count(Binding::ReadWrite);
        [
            (
                "max_compute_invocations_per_workgroup",
                u64::from(self.workgroup_size),
                u64::from(limits.max_compute_invocations_per_workgroup),
            ),
            (
                "max_compute_workgroup_size_x",
                u64::from(self.workgroup_size),
                u64::from(limits.max_compute_workgroup_size_x),
            ),
            (
                "max_compute_workgroup_storage_size",
                u64::from(self.workgroup_bytes),
                u64::from(limits.max_compute_workgroup_storage_size),
            ),
            (
                "max_storage_buffers_per_shader_stage",
                storage,
                u64::from(limits.max_storage_buffers_per_shader_stage),
            ),
            (
                "max_uniform_buffers_per_shader_stage",
                count(Binding::Uniform),
                u64::from(limits.max_uniform_buffers_per_shader_stage),
            ),
        ]
        .into_iter()
        .find(|&(_, needed, allowed)| needed > allowed)
    }
}

/// A compiled kernel.
#[derive(Debug)]
pub(crate) struct Kernel {
    /// The compute pipeline.
    pub pipeline: wgpu::ComputePipeline,
    /// Layout of bind group 0.
    pub layout: wgpu::BindGroupLayout,
    /// The length of its code without comments and indentation: a stand-in
    /// for how long llvmpipe takes to build it (see
    /// `BackgroundBuilds::alongside`).
    #[cfg(not(target_arch = "wasm32"))]
    pub code_length: usize,
}

impl Kernel {
    fn build(
        device: &wgpu::Device,
        spec: &KernelSpec,
        cache: Option<&wgpu::PipelineCache>,
    ) -> Self {
        let label = spec.label();
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
            label: Some(&label),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(&label),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let source = spec.source_text();
        #[cfg(not(target_arch = "wasm32"))]
        let code_length = code_length(&source);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&label),
            source: wgpu::ShaderSource::Wgsl(source),
        });
        let constants = spec.pipeline_constants();
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&label),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(spec.entry_point),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &constants,
                ..Default::default()
            },
            cache,
        });
        Self {
            pipeline,
            layout,
            #[cfg(not(target_arch = "wasm32"))]
            code_length,
        }
    }
}

/// The length of `wgsl` without comments and indentation.
#[cfg(not(target_arch = "wasm32"))]
fn code_length(wgsl: &str) -> usize {
    wgsl.lines()
        .map(|line| line.split("//").next().unwrap_or_default().trim().len())
        .sum()
}

/// Pipelines of one device, by key, each compiled once on first use, through
/// the device's pipeline cache when it has one.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    kernels: Mutex<HashMap<KernelKey, Arc<OnceLock<Arc<Kernel>>>>>,
    cache: Mutex<Option<wgpu::PipelineCache>>,
}

impl Registry {
    /// The compiled `spec`. The lock is held only to find the kernel's slot;
    /// the compilation runs outside it, and a second thread asking for the
    /// same kernel meanwhile waits for that one compilation.
    pub(crate) fn get(&self, device: &wgpu::Device, spec: &KernelSpec) -> Arc<Kernel> {
        let slot = self
            .kernels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(spec.key())
            .or_default()
            .clone();
        slot.get_or_init(|| {
            let cache = self.pipeline_cache();
            Arc::new(Kernel::build(device, spec, cache.as_ref()))
        })
        .clone()
    }

    /// The pipeline cache later compilations go through.
    pub(crate) fn pipeline_cache(&self) -> Option<wgpu::PipelineCache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Makes `cache` the one later compilations go through.
    pub(crate) fn set_pipeline_cache(&self, cache: wgpu::PipelineCache) {
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = Some(cache);
    }

    /// Number of pipelines compiled.
    pub(crate) fn len(&self) -> usize {
        self.kernels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|slot| slot.get().is_some())
            .count()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytemuck::Pod;

    /// Member names and offsets of struct `name` as naga lays out the WGSL
    /// struct, and its size.
    pub(crate) fn wgsl_layout(source: &str, name: &str) -> (Vec<(String, usize)>, usize) {
        let module = naga::front::wgsl::parse_str(source).expect("shader parses");
        let (_, ty) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some(name))
            .expect("shader declares the struct");
        match &ty.inner {
            naga::TypeInner::Struct { members, span } => (
                members
                    .iter()
                    .map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize))
                    .collect(),
                *span as usize,
            ),
            other => panic!("{name} is not a struct: {other:?}"),
        }
    }

    /// Asserts that a `Pod` struct of `u32`/`f32` fields named `names`, in
    /// order, has naga's layout of the WGSL struct `name` in `source`.
    pub(crate) fn assert_mirrors<T: Pod>(source: &str, name: &str, names: &[&str]) {
        let (members, span) = wgsl_layout(source, name);
        assert_eq!(span, std::mem::size_of::<T>(), "{name}: size");
        let rust: Vec<(String, usize)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), 4 * i))
            .collect();
        assert_eq!(members, rust, "{name}: field names, order and offsets");
        assert_eq!(
            std::mem::size_of::<T>(),
            4 * names.len(),
            "{name}: every field is 4 bytes"
        );
        assert_eq!(span % 16, 0, "{name}: uniform blocks are 16-byte aligned");
    }

    /// Parses and validates `spec`'s source with naga; checks its entry point,
    /// workgroup size, bindings, and that its `override` constants are exactly
    /// the ones the spec gives (so every shared constant comes from Rust).
    pub(crate) fn validate(spec: &KernelSpec) -> naga::Module {
        let label = spec.label();
        // Within WebGPU's default limits, which every WebGPU device grants
        // (256 invocations, 16 KiB of workgroup memory, 8 storage buffers).
        assert_eq!(
            spec.exceeds(&wgpu::Limits::default()),
            None,
            "{label}: beyond WebGPU's default limits"
        );
        let source = spec.source_text();
        let module = naga::front::wgsl::parse_str(&source)
            .unwrap_or_else(|e| panic!("{label}: {}", e.emit_to_string(&source)));
        // Subgroup operations where the kernel uses them (the device then
        // has them: src/gpu/runtime/context.rs).
        let capabilities = if source.contains("@builtin(subgroup_invocation_id)") {
            naga::valid::Capabilities::SUBGROUP
        } else {
            naga::valid::Capabilities::default()
        };
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), capabilities)
            .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
            .subgroup_operations(naga::valid::SubgroupOperationSet::all())
            .validate(&module)
            .unwrap_or_else(|e| panic!("{label}: {}", e.emit_to_string(&source)));
        let entry = module
            .entry_points
            .iter()
            .find(|e| e.name == spec.entry_point)
            .unwrap_or_else(|| panic!("{label}: no entry point {}", spec.entry_point));
        assert_eq!(
            entry.workgroup_size_overrides.as_ref().map(|_| ()),
            Some(()),
            "{label}: the workgroup size is the WORKGROUP_SIZE override"
        );
        let bound = module
            .global_variables
            .iter()
            .filter(|(_, v)| v.binding.is_some())
            .count();
        assert_eq!(bound, spec.bindings.len(), "{label}: binding count");
        let shared = module
            .global_variables
            .iter()
            .any(|(_, v)| v.space == naga::AddressSpace::WorkGroup);
        assert_eq!(
            shared,
            spec.workgroup_bytes > 0,
            "{label}: workgroup memory declared in Rust iff the shader has it"
        );
        let mut declared: Vec<&str> = module
            .overrides
            .iter()
            .filter_map(|(_, o)| o.name.as_deref())
            .collect();
        let mut given: Vec<&str> = spec.pipeline_constants().iter().map(|c| c.0).collect();
        declared.sort_unstable();
        given.sort_unstable();
        assert_eq!(declared, given, "{label}: override constants");
        module
    }

    #[test]
    fn code_length_leaves_out_comments_and_indentation() {
        let wgsl = "// A kernel.\n    let a = 1; // why\n\n  // more\n}\n";
        assert_eq!(code_length(wgsl), "let a = 1;".len() + "}".len());
    }

    #[test]
    fn a_kernel_beyond_the_device_limits_names_the_limit() {
        let kernel = WrittenKernel::new(
            "limits_probe",
            "",
            256,
            &[Binding::Uniform, Binding::ReadOnly, Binding::ReadWrite],
        )
        .with_workgroup_bytes(8192)
        .spec();
        let webgpu = wgpu::Limits::default();
        assert_eq!(kernel.exceeds(&webgpu), None);
        let small = wgpu::Limits {
            max_compute_workgroup_storage_size: 4096,
            ..webgpu.clone()
        };
        assert_eq!(
            kernel.exceeds(&small),
            Some(("max_compute_workgroup_storage_size", 8192, 4096))
        );
        let few = wgpu::Limits {
            max_compute_invocations_per_workgroup: 128,
            max_storage_buffers_per_shader_stage: 1,
            ..webgpu
        };
        // The first limit exceeded is named.
        assert_eq!(
            kernel.exceeds(&few),
            Some(("max_compute_invocations_per_workgroup", 256, 128))
        );
    }

    #[test]
    fn a_kernel_compiles_once_per_key() {
        use crate::gpu::runtime::GpuContext;
        const PROBE: WrittenKernel = WrittenKernel::new(
            "registry_probe",
            "override WORKGROUP_SIZE: u32;
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) id: vec3<u32>) { out[id.x] = 1.0; }",
            64,
            &[Binding::ReadWrite],
        );
        let ctx =
            GpuContext::new().unwrap_or_else(|e| panic!("this test needs a GPU adapter: {e}"));
        let before = ctx.pipelines_built();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let ctx = ctx.clone();
                std::thread::spawn(move || ctx.kernel(&PROBE.spec()))
            })
            .collect();
        let kernels: Vec<Arc<Kernel>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(kernels.windows(2).all(|k| Arc::ptr_eq(&k[0], &k[1])));
        assert_eq!(ctx.pipelines_built(), before + 1);
        // Another entry point or constant is another kernel.
        let other = PROBE.with_constants("registry_probe", &[]).spec();
        assert_eq!(other.key(), PROBE.spec().key());
        let mut wide = PROBE.spec();
        wide.workgroup_size = 128;
        assert_ne!(wide.key(), PROBE.spec().key());
    }
}
