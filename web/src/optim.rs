//! The optimisers, `Sgd` and `Adam`, with PyTorch's update rules and their
//! state on the GPU.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use wgpu_conv2d::{AdamConfig, GpuConv2d, GpuGrads, SgdConfig};

use crate::conv::{Conv2d, Gradients};
use crate::convert::{describe, error};

const BUSY: &str = "this optimiser or layer is in a step that has not finished: await it first";

/// What both optimisers do in a step, for [`step`].
trait Update {
    fn update<'a>(
        &'a mut self,
        layer: &'a mut GpuConv2d,
        grads: &'a GpuGrads,
    ) -> impl Future<Output = wgpu_conv2d::Result<()>> + 'a;
}

impl Update for wgpu_conv2d::Sgd {
    fn update<'a>(
        &'a mut self,
        layer: &'a mut GpuConv2d,
        grads: &'a GpuGrads,
    ) -> impl Future<Output = wgpu_conv2d::Result<()>> + 'a {
        self.step_async(layer, grads)
    }
}

impl Update for wgpu_conv2d::Adam {
    fn update<'a>(
        &'a mut self,
        layer: &'a mut GpuConv2d,
        grads: &'a GpuGrads,
    ) -> impl Future<Output = wgpu_conv2d::Result<()>> + 'a {
        self.step_async(layer, grads)
    }
}

/// One step of `optimiser` on `conv` with `grads`, as a promise; a layer or
/// optimiser already in a step rejects it.
fn step<O: Update + 'static>(
    optimiser: Rc<RefCell<O>>,
    conv: &Conv2d,
    grads: &Gradients,
) -> Promise {
    let (layer, grads) = (conv.operator(), grads.inner());
    future_to_promise(async move {
        let mut optimiser = optimiser.try_borrow_mut().map_err(|_| error(BUSY))?;
        let mut layer = layer.try_borrow_mut().map_err(|_| error(BUSY))?;
        optimiser.update(&mut layer, &grads).await.map_err(error)?;
        Ok(JsValue::UNDEFINED)
    })
}

/// Reads optional numbers and flags of an options object.
struct Reader<'a> {
    value: &'a JsValue,
    what: &'static str,
    known: &'static [&'static str],
}

impl Reader<'_> {
    fn check(&self) -> Result<(), JsValue> {
        if self.value.is_undefined() || self.value.is_null() {
            return Ok(());
        }
        let object = self.value.dyn_ref::<Object>().ok_or_else(|| {
            error(format!(
                "{} options must be an object, got {}",
                self.what,
                describe(self.value)
            ))
        })?;
        for key in Object::keys(object).iter() {
            let key = key.as_string().unwrap_or_default();
            if !self.known.contains(&key.as_str()) {
                return Err(error(format!(
                    "unknown {} option '{key}' (expected one of {})",
                    self.what,
                    self.known.join(", ")
                )));
            }
        }
        Ok(())
    }

    fn get(&self, key: &str) -> Option<JsValue> {
        if self.value.is_undefined() || self.value.is_null() {
            return None;
        }
        Reflect::get(self.value, &JsValue::from_str(key))
            .ok()
            .filter(|v| !v.is_undefined())
    }

    fn number(&self, key: &str, default: f32) -> Result<f32, JsValue> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_f64().map(|n| n as f32).ok_or_else(|| {
                error(format!(
                    "{} option '{key}' must be a number, got {}",
                    self.what,
                    describe(&v)
                ))
            }),
        }
    }

    fn flag(&self, key: &str, default: bool) -> Result<bool, JsValue> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| {
                error(format!(
                    "{} option '{key}' must be true or false, got {}",
                    self.what,
                    describe(&v)
                ))
            }),
        }
    }
}

/// `torch.optim.SGD`: `new Sgd({ lr, momentum, dampening, weightDecay,
/// nesterov, maximize })`, PyTorch's defaults for what is left out.
#[wasm_bindgen]
pub struct Sgd {
    inner: Rc<RefCell<wgpu_conv2d::Sgd>>,
}

#[wasm_bindgen]
impl Sgd {
    /// An optimiser with these hyper-parameters, checked with PyTorch's messages.
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue) -> Result<Sgd, JsValue> {
        let r = Reader {
            value: &options,
            what: "Sgd",
            known: &[
                "lr",
                "momentum",
                "dampening",
                "weightDecay",
                "nesterov",
                "maximize",
            ],
        };
        r.check()?;
        let d = SgdConfig::default();
        let config = SgdConfig {
            lr: r.number("lr", d.lr)?,
            momentum: r.number("momentum", d.momentum)?,
            dampening: r.number("dampening", d.dampening)?,
            weight_decay: r.number("weightDecay", d.weight_decay)?,
            nesterov: r.flag("nesterov", d.nesterov)?,
            maximize: r.flag("maximize", d.maximize)?,
        };
        let sgd = wgpu_conv2d::Sgd::new(config).map_err(error)?;
        Ok(Self {
            inner: Rc::new(RefCell::new(sgd)),
        })
    }

    /// One step on `conv`'s weight and bias with `grads` (from
    /// `conv.backwardGpu`; a gradient left out leaves its parameter alone).
    pub fn step(&self, conv: &Conv2d, grads: &Gradients) -> Promise {
        step(self.inner.clone(), conv, grads)
    }
}

/// `torch.optim.Adam` (and `AdamW` with `decoupledWeightDecay: true`):
/// `new Adam({ lr, betas: [b1, b2], eps, weightDecay, decoupledWeightDecay,
/// maximize })`, PyTorch's defaults for what is left out.
#[wasm_bindgen]
pub struct Adam {
    inner: Rc<RefCell<wgpu_conv2d::Adam>>,
}

#[wasm_bindgen]
impl Adam {
    /// An optimiser with these hyper-parameters, checked with PyTorch's messages.
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue) -> Result<Adam, JsValue> {
        let r = Reader {
            value: &options,
            what: "Adam",
            known: &[
                "lr",
                "betas",
                "eps",
                "weightDecay",
                "decoupledWeightDecay",
                "maximize",
            ],
        };
        r.check()?;
        let d = AdamConfig::default();
        let betas = match r.get("betas") {
            None => d.betas,
            Some(v) => {
                let array = v.dyn_ref::<js_sys::Array>().filter(|a| a.length() == 2);
                let pair = array.and_then(|a| Some((a.get(0).as_f64()?, a.get(1).as_f64()?)));
                let (b1, b2) = pair.ok_or_else(|| {
                    error(format!(
                        "Adam option 'betas' must be an array of two numbers, got {}",
                        describe(&v)
                    ))
                })?;
                (b1 as f32, b2 as f32)
            }
        };
        let config = AdamConfig {
            lr: r.number("lr", d.lr)?,
            betas,
            eps: r.number("eps", d.eps)?,
            weight_decay: r.number("weightDecay", d.weight_decay)?,
            decoupled_weight_decay: r.flag("decoupledWeightDecay", d.decoupled_weight_decay)?,
            maximize: r.flag("maximize", d.maximize)?,
        };
        let adam = wgpu_conv2d::Adam::new(config).map_err(error)?;
        Ok(Self {
            inner: Rc::new(RefCell::new(adam)),
        })
    }

    /// One step on `conv`'s weight and bias with `grads` (from
    /// `conv.backwardGpu`; a gradient left out leaves its parameter alone).
    pub fn step(&self, conv: &Conv2d, grads: &Gradients) -> Promise {
        step(self.inner.clone(), conv, grads)
    }
}
