//! The operator on top: [`GpuConv2d`], a Conv2d layer whose weight and bias
//! live on the GPU. Construction and the layer's parameters here; its forward
//! pass in [`forward`](mod@forward) (its first calls while the fast kernel
//! builds in [`build_ahead`](mod@build_ahead)), its gradients and update in
//! [`backward`](mod@backward).

mod backward;
#[cfg(not(target_arch = "wasm32"))]
mod build_ahead;
mod forward;
mod optimise;

pub use backward::{GpuGrads, GradMask};

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::Conv2dConfig;
use crate::dtype::DType;
use crate::error::Result;
use crate::geometry::Conv2dGeometry;
use crate::gpu::conv::forward::WeightLayout;
use crate::gpu::conv::params::ConvParams;
use crate::gpu::conv::select::{Algorithm, BackwardAlgorithm};
use crate::gpu::convert::{Conversion, encode};
use crate::gpu::runtime::buffers::{
    Scopes, check_fits, output, read_mapped, staging, upload, wait_idle,
};
use crate::gpu::runtime::{GpuContext, PendingTime, PooledBuffer, Recorder};
use crate::layer::Conv2d;
use crate::precision::Precision;
use crate::tensor::Tensor;

/// A [`Conv2d`] layer on the GPU. Weight and bias are uploaded once, at
/// construction, and stay on the GPU (training updates them there, see
/// [`sgd_step`](Self::sgd_step)); each forward uploads the input, runs the
/// kernel its [`Algorithm`] picks and reads the result back, or keeps input
/// and output on the GPU ([`forward_gpu`](Self::forward_gpu)).
///
/// A layer of a half dtype ([`Conv2d::to_dtype`]) takes inputs of that
/// dtype and gives outputs and gradients in it: the kernels read the
/// half tensors widened to `f32`, accumulate in `f32` and round each result
/// once. Its weight and bias are kept in `f32` on the GPU (the master copy
/// that optimisers update, as mixed-precision training keeps it), and every
/// pass uses them rounded to the dtype (the half copy).
///
/// `Send + Sync`: one operator may serve many threads.
#[derive(Debug)]
pub struct GpuConv2d {
    /// Identifies the layer's parameters to optimisers that keep state for them.
    id: u64,
    ctx: GpuContext,
    config: Conv2dConfig,
    weight: PooledBuffer,
    bias: PooledBuffer,
    algorithm: Algorithm,
    backward_algorithm: BackwardAlgorithm,
    /// The layer's own precision; `None`: the context's.
    precision: Option<Precision>,
    /// The dtype of the layer's inputs, outputs and gradients.
    dtype: DType,
    /// For a half dtype: the weight and bias rounded to it (the half copy of
    /// the `f32` master), made on first use and dropped when training
    /// changes the master.
    rounded: Mutex<Option<[PooledBuffer; 2]>>,
    /// Whether every weight is finite: known from the host at construction,
    /// `None` once training changed the weight (read back when asked).
    weight_finite: Mutex<Option<bool>>,
    /// The weight as the blocked and Winograd kernels read it (packed,
    /// transformed), per layout: made on first use and dropped when training
    /// changes the weight.
    packed_weight: Mutex<Vec<(WeightLayout, PooledBuffer)>>,
}

impl GpuConv2d {
    /// Uploads `layer`'s weight and bias to the context's device (blocking;
    /// native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(ctx: &GpuContext, layer: &Conv2d) -> Result<Self> {
        pollster::block_on(Self::new_async(ctx, layer))
    }

    /// Uploads `layer`'s weight and bias to the context's device.
    pub async fn new_async(ctx: &GpuContext, layer: &Conv2d) -> Result<Self> {
        ctx.check_alive()?;
        let bias_len = layer.bias().map_or(0, Tensor::numel);
        check_fits(
            ctx,
            &[("weight", layer.weight().numel()), ("bias", bias_len)],
        )?;
        let scopes = Scopes::push(ctx);
        let weight = upload(ctx, "weight", layer.weight().data());
        let bias = upload(ctx, "bias", layer.bias().map_or(&[][..], Tensor::data));
        scopes.pop().await?;
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Ok(Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            ctx: ctx.clone(),
            config: *layer.config(),
            weight,
            bias,
            algorithm: Algorithm::Auto,
            backward_algorithm: BackwardAlgorithm::Auto,
            precision: None,
            dtype: layer.dtype(),
            rounded: Mutex::new(None),
            weight_finite: Mutex::new(Some(layer.weight().data().iter().all(|v| v.is_finite()))),
            packed_weight: Mutex::new(Vec::new()),
        })
    }

    /// The layer's configuration.
    pub fn config(&self) -> &Conv2dConfig {
        &self.config
    }

    /// The dtype of its parameters, inputs, outputs and gradients.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The context it runs on.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// Downloads the current weight and bias (changed by training) as a
    /// [`Conv2d`] of the layer's dtype (for a half dtype, the master rounded
    /// to it; blocking; native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn to_layer(&self) -> Result<Conv2d> {
        pollster::block_on(self.to_layer_async())
    }

    /// Downloads the current weight and bias (changed by training) as a
    /// [`Conv2d`] of the layer's dtype.
    pub async fn to_layer_async(&self) -> Result<Conv2d> {
        self.ctx.check_alive()?;
        let weight_len = self.config.weight_shape().iter().product::<usize>();
        let bias_len = if self.config.bias {
            self.config.out_channels
        } else {
            0
        };
        let scopes = Scopes::push(&self.ctx);
        let readback = staging(&self.ctx, weight_len + bias_len);
        let mut encoder = self
            .ctx
            .device()
            .create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(&self.weight, 0, &readback, 0, weight_len as u64 * 4);
        encoder.copy_buffer_to_buffer(
            &self.bias,
            0,
            &readback,
            weight_len as u64 * 4,
            bias_len as u64 * 4,
        );
        self.ctx.queue().submit([encoder.finish()]);
        scopes.pop().await?;
        let mut data = read_mapped(&self.ctx, &readback, weight_len + bias_len).await?;
        let bias = data.split_off(weight_len);
        let bias = self
            .config
            .bias
            .then(|| Tensor::new([bias_len], bias))
            .transpose()?;
        Ok(Conv2d::from_weights(
            self.config,
            Tensor::new(self.config.weight_shape(), data)?,
            bias,
        )?
        .to_dtype(self.dtype))
    }

    /// The same layer with `algorithm` choosing the forward kernel
    /// ([`Algorithm::Auto`] by default).
    pub fn with_algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// The algorithm asked for.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The same layer with `algorithm` choosing the gradient kernels
    /// ([`BackwardAlgorithm::Auto`] by default).
    pub fn with_backward_algorithm(mut self, algorithm: BackwardAlgorithm) -> Self {
        self.backward_algorithm = algorithm;
        self
    }

    /// The backward algorithm asked for.
    pub fn backward_algorithm(&self) -> BackwardAlgorithm {
        self.backward_algorithm
    }

    /// The same layer with `Auto` keeping `precision` in its forward and its
    /// input gradient, whatever the context's
    /// ([`GpuContext::with_precision`]). See [`Precision`] for each level's
    /// algorithms and bound.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = Some(precision);
        self
    }

    /// The precision `Auto` keeps for this layer: its own, else its context's.
    pub fn precision(&self) -> Precision {
        self.precision.unwrap_or(self.ctx.precision())
    }

    /// The kernel a forward pass over an input of `input_shape` runs (what
    /// `Auto` picks under the layer's [`precision`](Self::precision): on a
    /// context that autotunes, the measured choice, made now when the shape
    /// class has none yet), or why the forced algorithm cannot run it. The
    /// bound its result meets is that of
    /// [`Algorithm::precision`] of what it returns.
    /// Blocking; native only.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn resolved_algorithm(&self, input_shape: &[usize]) -> Result<Algorithm> {
        pollster::block_on(self.resolved_algorithm_async(input_shape))
    }

    /// [`resolved_algorithm`](Self::resolved_algorithm), measuring (where it
    /// does) without blocking.
    pub async fn resolved_algorithm_async(&self, input_shape: &[usize]) -> Result<Algorithm> {
        let geometry = Conv2dGeometry::new(&self.config, input_shape)?;
        self.algorithm
            .kernel_on(&self.ctx, &geometry, self.config.bias, self.precision())
            .await
            .map(Algorithm::of)
    }

    /// The layer's identity and its weight and bias buffers with their
    /// lengths (the bias 0 long for a layer without one), for optimisers.
    pub(crate) fn parameter_buffers(&self) -> (u64, [(&wgpu::Buffer, usize); 2]) {
        let weight_len = self.config.weight_shape().iter().product();
        let bias_len = usize::from(self.config.bias) * self.config.out_channels;
        (
            self.id,
            [(&self.weight, weight_len), (&self.bias, bias_len)],
        )
    }

    /// Forgets what was derived from the weight (the blocked kernel's packed
    /// copy, the half copy): an optimiser changed it.
    pub(crate) fn parameters_changed(&mut self) {
        self.packed_weight
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        *self.rounded.get_mut().unwrap_or_else(|e| e.into_inner()) = None;
        *self
            .weight_finite
            .get_mut()
            .unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Whether every weight is finite: known from the host until training
    /// changes the weight, then read back once per change.
    pub(crate) async fn weight_is_finite(&self) -> Result<bool> {
        let known = *self.weight_finite.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(finite) = known {
            return Ok(finite);
        }
        let layer = self.to_layer_async().await?;
        let finite = layer.weight().data().iter().all(|v| v.is_finite());
        *self.weight_finite.lock().unwrap_or_else(|e| e.into_inner()) = Some(finite);
        Ok(finite)
    }

    /// The weight and bias every pass uses: the `f32` buffers themselves, or
    /// for a half dtype their copies rounded to it (made, in a submission of
    /// their own, when the weight is new or changed).
    fn parameters(&self) -> Result<[wgpu::Buffer; 2]> {
        if !self.dtype.is_half() {
            return Ok([
                wgpu::Buffer::clone(&self.weight),
                wgpu::Buffer::clone(&self.bias),
            ]);
        }
        let mut cached = self.rounded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some([weight, bias]) = &*cached {
            return Ok([wgpu::Buffer::clone(weight), wgpu::Buffer::clone(bias)]);
        }
        let (_, [(weight, weight_len), (bias, bias_len)]) = self.parameter_buffers();
        let rounded = [
            output(&self.ctx, "weight (rounded)", weight_len),
            output(&self.ctx, "bias (rounded)", bias_len),
        ];
        let mut rec = Recorder::new(&self.ctx);
        encode(
            &mut rec,
            self.dtype,
            Conversion::Round,
            [weight, &rounded[0]],
            weight_len,
        )?;
        encode(
            &mut rec,
            self.dtype,
            Conversion::Round,
            [bias, &rounded[1]],
            bias_len,
        )?;
        rec.submit();
        let handles = [
            wgpu::Buffer::clone(&rounded[0]),
            wgpu::Buffer::clone(&rounded[1]),
        ];
        *cached = Some(rounded);
        Ok(handles)
    }

    /// `len` values of the layer's dtype packed in `buffer`, as `f32`: the
    /// buffer itself for `float32`, else widened into a scratch buffer.
    fn widened(
        &self,
        rec: &mut Recorder,
        buffer: &wgpu::Buffer,
        len: usize,
    ) -> Result<wgpu::Buffer> {
        if !self.dtype.is_half() {
            return Ok(wgpu::Buffer::clone(buffer));
        }
        let wide = rec.scratch("widened", len);
        encode(rec, self.dtype, Conversion::Widen, [buffer, &wide], len)?;
        Ok(wide)
    }

    /// Where a pass writes `len` `f32` results bound for `destination` (in
    /// the layer's dtype): the destination itself for `float32`, else a
    /// scratch buffer that [`finish_narrow`](Self::finish_narrow) packs.
    fn wide_destination(
        &self,
        rec: &mut Recorder,
        destination: &wgpu::Buffer,
        len: usize,
    ) -> wgpu::Buffer {
        if self.dtype.is_half() {
            rec.scratch("unrounded", len)
        } else {
            wgpu::Buffer::clone(destination)
        }
    }

    /// Rounds the `len` results in `wide` into `destination` for a half
    /// dtype (once: each result is rounded here only).
    fn finish_narrow(
        &self,
        rec: &mut Recorder,
        wide: &wgpu::Buffer,
        destination: &wgpu::Buffer,
        len: usize,
    ) -> Result<()> {
        if self.dtype.is_half() {
            encode(
                rec,
                self.dtype,
                Conversion::Narrow,
                [wide, destination],
                len,
            )?;
        }
        Ok(())
    }

    /// The input's dtype must be the layer's, as PyTorch requires (and, as
    /// PyTorch, a layer with a bias names the bias).
    fn check_dtype(&self, input: DType, grad_output: Option<DType>) -> Result<()> {
        if input != self.dtype {
            let what = if self.config.bias { "bias" } else { "weight" };
            return Err(crate::dtype::mismatch(input, what, self.dtype));
        }
        match grad_output {
            Some(g) if g != input => Err(crate::dtype::mismatch(input, "grad_output", g)),
            _ => Ok(()),
        }
    }

    /// Waits for the submitted work: its kernel time in milliseconds when it
    /// was timed with timestamp queries, else `None`.
    async fn wait_timed(&self, pending: Option<PendingTime>) -> Result<Option<f64>> {
        match pending {
            Some(pending) => Ok(Some(pending.millis(&self.ctx).await?)),
            None => {
                wait_idle(&self.ctx).await?;
                Ok(None)
            }
        }
    }

    /// The call's uniform block, for `geometry`.
    fn call_params(&self, rec: &mut Recorder, geometry: &Conv2dGeometry) -> Result<wgpu::Buffer> {
        let params = ConvParams::new(geometry, self.config.bias)?;
        Ok(rec.uniform("call", &params))
    }
}
