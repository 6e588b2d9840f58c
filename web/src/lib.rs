//! **wgpu-conv2d for JavaScript**: PyTorch's `nn.Conv2d`, forward and
//! backward, with SGD and Adam, on WebGPU, in the browser and in Deno.
//!
//! Built into an ES-module package by `tools/web.sh build OUTDIR`:
//!
//! ```js
//! import init, { Conv2d } from "./OUTDIR/wgpu_conv2d.js";
//! await init();
//! const conv = await Conv2d.create(
//!   { inChannels: 4, outChannels: 8, kernelSize: [3, 3], padding: "same" },
//!   weight /* Float32Array, or undefined for PyTorch's random init */,
//!   bias /* Float32Array or undefined */);
//! const y = await conv.forward(x, [1, 4, 16, 16]);   // { data: Float32Array, shape: [1, 8, 16, 16] }
//! const g = await conv.backward(x, [1, 4, 16, 16], gradY); // { gradInput, gradWeight, gradBias }
//! ```
//!
//! Every call returns a promise and never blocks; invalid arguments reject
//! it with an `Error` whose message is PyTorch's. All classes share one GPU
//! device, opened on first use.

#![cfg(target_arch = "wasm32")]
#![warn(missing_docs)]
// A layer's operator and an optimiser live in `RefCell`s borrowed across
// awaits on purpose: every borrow is `try_borrow`/`try_borrow_mut`, so a call
// that overlaps a pending optimiser step on the same layer is rejected with
// a message, never a panic, and the GPU work of one call is never torn.
#![allow(clippy::await_holding_refcell_ref)]

mod context;
mod conv;
mod convert;
mod optim;
mod options;
mod tensor;

pub use context::adapter_info;
pub use conv::{Conv2d, Gradients};
pub use optim::{Adam, Sgd};
pub use tensor::Tensor;
