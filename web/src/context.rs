//! The one GPU device every class of the package shares, opened on first use.

use std::cell::RefCell;

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wgpu_conv2d::GpuContext;

use crate::convert::{error, set};

thread_local! {
    static CONTEXT: RefCell<Option<GpuContext>> = const { RefCell::new(None) };
}

/// The shared context: WebGPU's adapter and device, requested with the
/// limits the adapter grants.
pub(crate) async fn context() -> Result<GpuContext, JsValue> {
    if let Some(ctx) = CONTEXT.with_borrow(Clone::clone) {
        return Ok(ctx);
    }
    let ctx = GpuContext::new_async().await.map_err(error)?;
    // Two first calls may race; the first context stored is the one kept.
    Ok(CONTEXT.with_borrow_mut(|stored| stored.get_or_insert(ctx).clone()))
}

/// What runs the package: `{ name, webgpuVendor, webgpuArchitecture,
/// webgpuDevice, webgpuDescription, vendor, device, deviceType, backend,
/// driver, driverInfo, description, features: [...], timestampQuery,
/// shaderF16, limits: { maxStorageBufferBindingSize, maxBufferSize,
/// maxComputeInvocationsPerWorkgroup, maxComputeWorkgroupStorageSize,
/// maxStorageBuffersPerShaderStage, maxComputeWorkgroupsPerDimension } }`.
#[wasm_bindgen(js_name = adapterInfo)]
pub async fn adapter_info() -> Result<JsValue, JsValue> {
    let ctx = context().await?;
    let info = ctx.adapter_info();
    let object = Object::new();
    // wgpu gives only WebGPU's `description` (often empty); WebGPU's own
    // `GPUAdapterInfo` has the vendor and architecture.
    let web = browser_adapter_info().await;
    let field = |key: &str| {
        web.as_ref()
            .and_then(|w| Reflect::get(w, &JsValue::from_str(key)).ok())
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    };
    let (vendor, architecture) = (field("vendor"), field("architecture"));
    let name = if info.name.is_empty() {
        format!("{vendor} / {architecture}")
    } else {
        info.name.clone()
    };
    set(&object, "name", &name.into());
    set(&object, "webgpuVendor", &vendor.into());
    set(&object, "webgpuArchitecture", &architecture.into());
    set(&object, "webgpuDevice", &field("device").into());
    set(&object, "webgpuDescription", &field("description").into());
    set(&object, "vendor", &info.vendor.into());
    set(&object, "device", &info.device.into());
    set(
        &object,
        "deviceType",
        &format!("{:?}", info.device_type).into(),
    );
    set(&object, "backend", &format!("{:?}", info.backend).into());
    set(&object, "driver", &info.driver.clone().into());
    set(&object, "driverInfo", &info.driver_info.clone().into());
    set(&object, "description", &ctx.describe().into());
    set(
        &object,
        "isFallbackAdapter",
        &(info.device_type == wgpu_conv2d::wgpu::DeviceType::Cpu).into(),
    );
    let features = ctx.device().features();
    let names: Array = features
        .iter_names()
        .map(|(name, _)| JsValue::from_str(name))
        .collect();
    set(&object, "features", &names.into());
    set(&object, "timestampQuery", &ctx.has_timestamps().into());
    set(
        &object,
        "shaderF16",
        &ctx.adapter()
            .features()
            .contains(wgpu_conv2d::wgpu::Features::SHADER_F16)
            .into(),
    );
    let l = ctx.limits();
    let limits = Object::new();
    for (key, value) in [
        (
            "maxStorageBufferBindingSize",
            l.max_storage_buffer_binding_size as f64,
        ),
        ("maxBufferSize", l.max_buffer_size as f64),
        (
            "maxComputeInvocationsPerWorkgroup",
            f64::from(l.max_compute_invocations_per_workgroup),
        ),
        (
            "maxComputeWorkgroupStorageSize",
            f64::from(l.max_compute_workgroup_storage_size),
        ),
        (
            "maxStorageBuffersPerShaderStage",
            f64::from(l.max_storage_buffers_per_shader_stage),
        ),
        (
            "maxComputeWorkgroupsPerDimension",
            f64::from(l.max_compute_workgroups_per_dimension),
        ),
    ] {
        set(&limits, key, &value.into());
    }
    set(&object, "limits", &limits.into());
    Ok(object.into())
}

/// `(await navigator.gpu.requestAdapter()).info`, where there is one.
async fn browser_adapter_info() -> Option<JsValue> {
    let get = |object: &JsValue, key: &str| Reflect::get(object, &JsValue::from_str(key)).ok();
    let gpu = get(&get(&js_sys::global(), "navigator")?, "gpu")?;
    let request = get(&gpu, "requestAdapter")?.dyn_into::<Function>().ok()?;
    let pending = request.call0(&gpu).ok()?.dyn_into::<Promise>().ok()?;
    let adapter = JsFuture::from(pending).await.ok()?;
    get(&adapter, "info").filter(|info| info.is_object())
}
