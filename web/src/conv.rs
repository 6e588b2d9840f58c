//! `Conv2d`: PyTorch's `nn.Conv2d` with its weight and bias on the GPU.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Float32Array, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use wgpu_conv2d::{Conv2d as Layer, GpuConv2d, GpuGrads, GradMask, Tensor as HostTensor};

use crate::context::context;
use crate::convert::{describe, error, host_tensor, set, tensor_object};
use crate::options::Options;
use crate::tensor::{Tensor, Which};

const BUSY: &str =
    "this Conv2d is being updated by an optimiser step that has not finished: await it first";

/// A Conv2d layer on the GPU: `await Conv2d.create(options, weight, bias)`.
#[wasm_bindgen]
pub struct Conv2d {
    gpu: Rc<RefCell<GpuConv2d>>,
    /// The layer as created, for the CPU reference (`forwardCpu`).
    layer: Rc<Layer>,
}

impl Conv2d {
    /// The operator, for an optimiser step.
    pub(crate) fn operator(&self) -> Rc<RefCell<GpuConv2d>> {
        self.gpu.clone()
    }
}

/// Reads `value` as the optional `Float32Array` named `what`.
fn optional_array(value: &JsValue, what: &str) -> Result<Option<Float32Array>, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    value
        .dyn_ref::<Float32Array>()
        .cloned()
        .map(Some)
        .ok_or_else(|| {
            error(format!(
                "{what} must be a Float32Array, got {}",
                describe(value)
            ))
        })
}

#[wasm_bindgen]
impl Conv2d {
    /// A layer from `options` (`{ inChannels, outChannels, kernelSize,
    /// stride, padding, dilation, groups, paddingMode, bias, algorithm,
    /// backwardAlgorithm, precision, dtype, seed }`; PyTorch's defaults for
    /// what is left out; `precision` is `"highest"`, `"high"` or `"medium"`, see the
    /// crate's `Precision`; `dtype` is `"float32"`, `"float16"` or
    /// `"bfloat16"`: the layer's, to which the weight, bias and every input
    /// given as a `Float32Array` are converted, and in which results come),
    /// with `weight` (a `Float32Array` of `[outChannels, inChannels / groups,
    /// kH, kW]`) and `bias` (`[outChannels]`), or PyTorch's default random
    /// init where `weight` is undefined (seeded by `seed`, else by the
    /// browser's crypto).
    pub fn create(options: JsValue, weight: JsValue, bias: JsValue) -> Promise {
        future_to_promise(async move {
            let options = Options::read(&options)?;
            let config = options.config;
            let weight = optional_array(&weight, "weight")?;
            let bias = optional_array(&bias, "bias")?;
            let layer = match weight {
                Some(weight) => {
                    let weight = HostTensor::new(config.weight_shape(), weight.to_vec());
                    let bias = bias
                        .map(|b| HostTensor::new([b.length() as usize], b.to_vec()))
                        .transpose();
                    Layer::from_weights(config, weight.map_err(error)?, bias.map_err(error)?)
                }
                None if bias.is_some() => {
                    return Err(error("a bias was given without a weight"));
                }
                None => match options.seed {
                    Some(seed) => Layer::new(config, seed),
                    None => Layer::new_random(config),
                },
            }
            .map_err(error)?
            .to_dtype(options.dtype);
            let ctx = context().await?;
            let gpu = GpuConv2d::new_async(&ctx, &layer)
                .await
                .map_err(error)?
                .with_algorithm(options.algorithm)
                .with_backward_algorithm(options.backward_algorithm)
                .with_precision(options.precision);
            Ok(Conv2d {
                gpu: Rc::new(RefCell::new(gpu)),
                layer: Rc::new(layer),
            }
            .into())
        })
    }

    /// `layer(x)`: uploads `x` (a `Float32Array` of `shape`, `(N, C, H, W)`
    /// or `(C, H, W)`), computes and reads back: `{ data, shape }`.
    pub fn forward(&self, x: Float32Array, shape: JsValue) -> Promise {
        let gpu = self.gpu.clone();
        future_to_promise(async move {
            let gpu = gpu.try_borrow().map_err(|_| error(BUSY))?;
            let input = host_tensor(&x, &shape, "the input")?.to_dtype(gpu.dtype());
            let output = gpu.forward_async(&input).await.map_err(error)?;
            Ok(tensor_object(&output))
        })
    }

    /// `layer(x)` with `x` and the result on the GPU: a `Tensor`.
    #[wasm_bindgen(js_name = forwardGpu)]
    pub fn forward_gpu(&self, x: &Tensor) -> Promise {
        let (gpu, x) = (self.gpu.clone(), x.clone());
        future_to_promise(async move {
            let gpu = gpu.try_borrow().map_err(|_| error(BUSY))?;
            let output = gpu.forward_gpu_async(x.gpu()).await.map_err(error)?;
            Ok(Tensor::own(output).into())
        })
    }

    /// [`forwardGpu`], waiting for the GPU: `{ output: Tensor, kernelMs }`,
    /// the kernel time from timestamp queries (`null` where the adapter has
    /// none).
    #[wasm_bindgen(js_name = forwardGpuTimed)]
    pub fn forward_gpu_timed(&self, x: &Tensor) -> Promise {
        let (gpu, x) = (self.gpu.clone(), x.clone());
        future_to_promise(async move {
            let gpu = gpu.try_borrow().map_err(|_| error(BUSY))?;
            let (output, ms) = gpu.forward_gpu_timed_async(x.gpu()).await.map_err(error)?;
            let object = Object::new();
            set(&object, "output", &Tensor::own(output).into());
            set(
                &object,
                "kernelMs",
                &ms.map_or(JsValue::NULL, JsValue::from),
            );
            Ok(object.into())
        })
    }

    /// The gradients of `Σ gradY · layer(x)`: `{ gradInput, gradWeight,
    /// gradBias }`, each `{ data, shape }` (`gradBias` null without a bias).
    pub fn backward(&self, x: Float32Array, x_shape: JsValue, grad_y: Float32Array) -> Promise {
        let gpu = self.gpu.clone();
        future_to_promise(async move {
            let gpu = gpu.try_borrow().map_err(|_| error(BUSY))?;
            let input = host_tensor(&x, &x_shape, "the input")?.to_dtype(gpu.dtype());
            let shape = wgpu_conv2d::Conv2dGeometry::new(gpu.config(), input.shape())
                .map_err(error)?
                .output_shape();
            let grad_output = HostTensor::new(shape, grad_y.to_vec())
                .map_err(error)?
                .to_dtype(gpu.dtype());
            let grads = gpu
                .backward_async(&input, &grad_output)
                .await
                .map_err(error)?;
            Ok(grads_object(&grads))
        })
    }

    /// The gradients `mask` asks for (`{ input, weight, bias }`, each
    /// true by default) with `x`, `gradY` and the results on the GPU.
    #[wasm_bindgen(js_name = backwardGpu)]
    pub fn backward_gpu(&self, x: &Tensor, grad_y: &Tensor, mask: JsValue) -> Promise {
        let (gpu, x, grad_y) = (self.gpu.clone(), x.clone(), grad_y.clone());
        future_to_promise(async move {
            let mask = grad_mask(&mask)?;
            let gpu = gpu.try_borrow().map_err(|_| error(BUSY))?;
            let grads = gpu
                .backward_gpu_async(x.gpu(), grad_y.gpu(), mask)
                .await
                .map_err(error)?;
            Ok(Gradients {
                grads: Rc::new(grads),
            }
            .into())
        })
    }

    /// The current weight and bias (changed by optimiser steps):
    /// `{ weight: { data, shape }, bias: { data, shape } | null }`.
    pub fn weights(&self) -> Promise {
        let gpu = self.gpu.clone();
        future_to_promise(async move {
            let gpu = gpu.try_borrow().map_err(|_| error(BUSY))?;
            let layer = gpu.to_layer_async().await.map_err(error)?;
            let object = Object::new();
            set(&object, "weight", &tensor_object(layer.weight()));
            set(
                &object,
                "bias",
                &layer.bias().map_or(JsValue::NULL, tensor_object),
            );
            Ok(object.into())
        })
    }

    /// The kernel a forward over an input of `shape` runs (what `auto`
    /// picks), or why the forced algorithm cannot run it.
    #[wasm_bindgen(js_name = resolvedAlgorithm)]
    pub fn resolved_algorithm(&self, shape: JsValue) -> Promise {
        let gpu = self.gpu.clone();
        future_to_promise(async move {
            let shape = crate::convert::shape(&shape, "the input's shape")?;
            let gpu = gpu.try_borrow().map_err(|_| error(BUSY))?;
            let algorithm = gpu.resolved_algorithm_async(&shape).await.map_err(error)?;
            Ok(algorithm.name().into())
        })
    }

    /// `layer(x)` on the CPU reference (f64 sums, padding made explicitly),
    /// with the weight and bias the layer was created with.
    #[wasm_bindgen(js_name = forwardCpu)]
    pub fn forward_cpu(&self, x: Float32Array, shape: JsValue) -> Result<JsValue, JsValue> {
        let input = host_tensor(&x, &shape, "the input")?.to_dtype(self.layer.dtype());
        let output = self.layer.forward_cpu(&input).map_err(error)?;
        Ok(tensor_object(&output))
    }

    /// The gradients on the CPU reference, as [`backward`] gives them.
    #[wasm_bindgen(js_name = backwardCpu)]
    pub fn backward_cpu(
        &self,
        x: Float32Array,
        x_shape: JsValue,
        grad_y: Float32Array,
    ) -> Result<JsValue, JsValue> {
        let input = host_tensor(&x, &x_shape, "the input")?.to_dtype(self.layer.dtype());
        let shape = wgpu_conv2d::Conv2dGeometry::new(self.layer.config(), input.shape())
            .map_err(error)?
            .output_shape();
        let grad_output = HostTensor::new(shape, grad_y.to_vec())
            .map_err(error)?
            .to_dtype(self.layer.dtype());
        let grads = self
            .layer
            .backward_cpu(&input, &grad_output)
            .map_err(error)?;
        Ok(grads_object(&grads))
    }

    /// The forward algorithm asked for (`auto`, `direct`, ...).
    #[wasm_bindgen(getter)]
    pub fn algorithm(&self) -> String {
        self.gpu
            .try_borrow()
            .map(|gpu| gpu.algorithm().name().to_string())
            .unwrap_or_default()
    }

    /// The layer's dtype: `float32`, `float16` or `bfloat16`.
    #[wasm_bindgen(getter)]
    pub fn dtype(&self) -> String {
        self.layer.dtype().name().to_string()
    }

    /// The precision `auto` keeps (`highest`, `high` or `medium`).
    #[wasm_bindgen(getter)]
    pub fn precision(&self) -> String {
        self.gpu
            .try_borrow()
            .map(|gpu| gpu.precision().name().to_string())
            .unwrap_or_default()
    }
}

/// `{ gradInput, gradWeight, gradBias }` of host gradients.
fn grads_object(grads: &wgpu_conv2d::Conv2dGrads) -> JsValue {
    let object = Object::new();
    set(&object, "gradInput", &tensor_object(&grads.grad_input));
    set(&object, "gradWeight", &tensor_object(&grads.grad_weight));
    set(
        &object,
        "gradBias",
        &grads
            .grad_bias
            .as_ref()
            .map_or(JsValue::NULL, tensor_object),
    );
    object.into()
}

/// `{ input, weight, bias }` (each true when left out) as a [`GradMask`].
fn grad_mask(value: &JsValue) -> Result<GradMask, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(GradMask::ALL);
    }
    let flag = |key: &str| -> Result<bool, JsValue> {
        let v = Reflect::get(value, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED);
        if v.is_undefined() {
            return Ok(true);
        }
        v.as_bool().ok_or_else(|| {
            error(format!(
                "the gradient mask's '{key}' must be true or false, got {}",
                describe(&v)
            ))
        })
    };
    Ok(GradMask {
        input: flag("input")?,
        weight: flag("weight")?,
        bias: flag("bias")?,
    })
}

/// Gradients on the GPU (from `Conv2d.backwardGpu`): `gradInput`,
/// `gradWeight`, `gradBias`, each a `Tensor` or undefined where the mask
/// left it out; give the whole to an optimiser's `step`.
#[wasm_bindgen]
pub struct Gradients {
    grads: Rc<GpuGrads>,
}

impl Gradients {
    pub(crate) fn inner(&self) -> Rc<GpuGrads> {
        self.grads.clone()
    }
}

#[wasm_bindgen]
impl Gradients {
    /// The input gradient.
    #[wasm_bindgen(getter, js_name = gradInput)]
    pub fn grad_input(&self) -> Option<Tensor> {
        Tensor::gradient(&self.grads, Which::Input)
    }

    /// The weight gradient.
    #[wasm_bindgen(getter, js_name = gradWeight)]
    pub fn grad_weight(&self) -> Option<Tensor> {
        Tensor::gradient(&self.grads, Which::Weight)
    }

    /// The bias gradient.
    #[wasm_bindgen(getter, js_name = gradBias)]
    pub fn grad_bias(&self) -> Option<Tensor> {
        Tensor::gradient(&self.grads, Which::Bias)
    }
}
