//! `Tensor`: a tensor kept on the GPU, so that layers chain without reading
//! back.

use std::rc::Rc;

use js_sys::{Float32Array, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use wgpu_conv2d::{GpuGrads, GpuTensor};

use crate::context::context;
use crate::convert::{error, host_tensor, shape_array, tensor_object};

/// Which gradient of a [`GpuGrads`] a tensor is.
#[derive(Clone, Copy)]
pub(crate) enum Which {
    Input,
    Weight,
    Bias,
}

/// What a tensor holds: its own GPU buffer, or one gradient of a set.
pub(crate) enum Held {
    Own(GpuTensor),
    Grad(Rc<GpuGrads>, Which),
}

/// A tensor on the GPU, `(N, C, H, W)` or `(C, H, W)`, of float32, float16
/// or bfloat16: `await Tensor.upload(data, shape, dtype)`,
/// `await tensor.download()`. Made by `Conv2d.forwardGpu` and
/// `Conv2d.backwardGpu` too.
#[wasm_bindgen]
#[derive(Clone)]
pub struct Tensor {
    held: Rc<Held>,
}

impl Tensor {
    pub(crate) fn own(tensor: GpuTensor) -> Self {
        Self {
            held: Rc::new(Held::Own(tensor)),
        }
    }

    /// One gradient of `grads`, if it was computed.
    pub(crate) fn gradient(grads: &Rc<GpuGrads>, which: Which) -> Option<Self> {
        let present = match which {
            Which::Input => grads.grad_input.is_some(),
            Which::Weight => grads.grad_weight.is_some(),
            Which::Bias => grads.grad_bias.is_some(),
        };
        present.then(|| Self {
            held: Rc::new(Held::Grad(grads.clone(), which)),
        })
    }

    /// The GPU tensor.
    pub(crate) fn gpu(&self) -> &GpuTensor {
        match &*self.held {
            Held::Own(tensor) => tensor,
            Held::Grad(grads, which) => match which {
                Which::Input => grads.grad_input.as_ref(),
                Which::Weight => grads.grad_weight.as_ref(),
                Which::Bias => grads.grad_bias.as_ref(),
            }
            .expect("made only for gradients that are present"),
        }
    }
}

#[wasm_bindgen]
impl Tensor {
    /// Copies `data` (a `Float32Array` of `shape`'s size) to the GPU, as
    /// `dtype` (`"float32"` when left out, `"float16"` or `"bfloat16"`: the
    /// values rounded to it, and 2 bytes per element on the GPU).
    pub fn upload(data: Float32Array, shape: JsValue, dtype: JsValue) -> Promise {
        future_to_promise(async move {
            let host =
                host_tensor(&data, &shape, "the tensor")?.to_dtype(crate::convert::dtype(&dtype)?);
            let ctx = context().await?;
            let tensor = GpuTensor::upload_async(&ctx, &host).await.map_err(error)?;
            Ok(Tensor::own(tensor).into())
        })
    }

    /// Copies the tensor back: `{ data: Float32Array, shape: number[] }`.
    pub fn download(&self) -> Promise {
        let this = self.clone();
        future_to_promise(async move {
            let host = this.gpu().download_async().await.map_err(error)?;
            Ok(tensor_object(&host))
        })
    }

    /// The shape.
    #[wasm_bindgen(getter)]
    pub fn shape(&self) -> JsValue {
        shape_array(self.gpu().shape())
    }

    /// The dtype: `float32`, `float16` or `bfloat16`.
    #[wasm_bindgen(getter)]
    pub fn dtype(&self) -> String {
        self.gpu().dtype().name().to_string()
    }
}
