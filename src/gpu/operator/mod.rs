//! The operator on top: [`GpuConv2d`], a Conv2d layer whose weight and bias
//! live on the GPU. Construction and the layer's parameters here; its forward
//! pass in [`forward`](mod@forward), its gradients and update in
//! [`backward`](mod@backward).

mod backward;
mod forward;
mod optimise;

pub use backward::{GpuGrads, GradMask};

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::Conv2dConfig;
use crate::error::Result;
use crate::geometry::Conv2dGeometry;
use crate::gpu::conv::forward::WeightLayout;
use crate::gpu::conv::params::ConvParams;
use crate::gpu::conv::select::{Algorithm, BackwardAlgorithm};
use crate::gpu::runtime::buffers::{Scopes, check_fits, read_mapped, staging, upload, wait_idle};
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
            packed_weight: Mutex::new(Vec::new()),
        })
    }

    /// The layer's configuration.
    pub fn config(&self) -> &Conv2dConfig {
        &self.config
    }

    /// The context it runs on.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// Downloads the current weight and bias (changed by training) as a
    /// [`Conv2d`] (blocking; native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn to_layer(&self) -> Result<Conv2d> {
        pollster::block_on(self.to_layer_async())
    }

    /// Downloads the current weight and bias (changed by training) as a [`Conv2d`].
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
        Conv2d::from_weights(
            self.config,
            Tensor::new(self.config.weight_shape(), data)?,
            bias,
        )
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

    fn device_type(&self) -> wgpu::DeviceType {
        self.ctx.adapter_info().device_type
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
    /// copy): an optimiser changed it.
    pub(crate) fn parameters_changed(&mut self) {
        self.packed_weight
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
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
