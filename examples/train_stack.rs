//! Training a stack of two convolution layers end to end on the GPU: they
//! learn to reproduce a fixed pipeline, a 3×3 blur followed by Sobel edges
//! (two output channels, d/dx and d/dy), from random images.
//!
//!     cargo run --release --example train_stack [-- --steps N]
//!
//! The model is Conv2d(1, 8, 3, padding 1) then Conv2d(8, 2, 3, padding 1),
//! from PyTorch's default init. Each step draws a batch of random 32×32 images,
//! runs both layers on the GPU (the hidden activations never leave it),
//! computes the mean squared error against the pipeline's output on the host
//! (one read-back of the output, one upload of its gradient), backpropagates
//! through both layers on the GPU (the second layer's input gradient feeds the
//! first; the first needs none of its own) and updates all weights with Adam
//! on the GPU. It prints the loss as it falls and the time per step.

use std::time::Instant;

use rand::{RngExt, SeedableRng, rngs::StdRng};
use wgpu_conv2d::{
    Adam, AdamConfig, Conv2d, Conv2dConfig, Conv2dError, GpuContext, GpuConv2d, GpuGrads,
    GpuTensor, GradMask, Tensor,
};

/// Images per step and their side.
const BATCH: usize = 8;
const SIDE: usize = 32;

/// What a training run did.
pub struct Trace {
    /// The loss of each step, before its update.
    pub losses: Vec<f32>,
    /// Milliseconds per step (median).
    pub step_ms: f64,
}

/// The fixed pipeline the stack learns: blur, then Sobel d/dx and d/dy.
fn target_pipeline() -> Result<(Conv2d, Conv2d), Conv2dError> {
    let blur = Conv2d::from_weights(
        Conv2dConfig::new(1, 1, 3).with_padding(1).with_bias(false),
        Tensor::new([1, 1, 3, 3], vec![1.0 / 9.0; 9])?,
        None,
    )?;
    #[rustfmt::skip]
    let sobel = vec![
        -1.0, 0.0, 1.0,  -2.0, 0.0, 2.0,  -1.0, 0.0, 1.0,
        -1.0, -2.0, -1.0,  0.0, 0.0, 0.0,  1.0, 2.0, 1.0,
    ];
    let sobel = Conv2d::from_weights(
        Conv2dConfig::new(1, 2, 3).with_padding(1).with_bias(false),
        Tensor::new([2, 1, 3, 3], sobel)?,
        None,
    )?;
    Ok((blur, sobel))
}

/// Trains the stack for `steps` steps from the default init drawn with `seed`.
pub fn train(ctx: &GpuContext, steps: usize, seed: u64) -> Result<Trace, Conv2dError> {
    let (blur, sobel) = target_pipeline()?;
    let mut first = GpuConv2d::new(
        ctx,
        &Conv2d::new(Conv2dConfig::new(1, 8, 3).with_padding(1), seed)?,
    )?;
    let mut second = GpuConv2d::new(
        ctx,
        &Conv2d::new(Conv2dConfig::new(8, 2, 3).with_padding(1), seed + 1)?,
    )?;
    let mut adam = Adam::new(AdamConfig {
        lr: 1e-2,
        ..AdamConfig::default()
    })?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut losses = Vec::with_capacity(steps);
    let mut times = Vec::with_capacity(steps);
    for _ in 0..steps {
        let start = Instant::now();
        let x: Vec<f32> = (0..BATCH * SIDE * SIDE)
            .map(|_| rng.random_range(0.0..1.0))
            .collect();
        let x = Tensor::new([BATCH, 1, SIDE, SIDE], x)?;
        let target = sobel.forward_cpu(&blur.forward_cpu(&x)?)?;

        let x_gpu = GpuTensor::upload(ctx, &x)?;
        let hidden = first.forward_gpu(&x_gpu)?;
        let y = second.forward_gpu(&hidden)?.download()?;

        // Mean squared error and its gradient, on the host.
        let n = y.numel() as f32;
        let diff: Vec<f32> = y
            .data()
            .iter()
            .zip(target.data())
            .map(|(a, b)| a - b)
            .collect();
        losses.push(diff.iter().map(|d| d * d).sum::<f32>() / n);
        let grad_y = Tensor::new(y.shape(), diff.iter().map(|d| 2.0 * d / n).collect())?;
        let grad_y = GpuTensor::upload(ctx, &grad_y)?;

        let grads2: GpuGrads = second.backward_gpu(&hidden, &grad_y, GradMask::ALL)?;
        let grad_hidden = grads2.grad_input.as_ref().expect("asked for");
        let grads1 = first.backward_gpu(&x_gpu, grad_hidden, GradMask::PARAMETERS)?;
        adam.step(&mut second, &grads2)?;
        adam.step(&mut first, &grads1)?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(Trace {
        losses,
        step_ms: times.get(times.len() / 2).copied().unwrap_or(0.0),
    })
}

#[allow(dead_code)]
fn main() -> Result<(), Conv2dError> {
    let args: Vec<String> = std::env::args().collect();
    let steps = args
        .iter()
        .position(|a| a == "--steps")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let ctx = GpuContext::new()?;
    println!("GPU adapter: {}", ctx.describe());
    println!(
        "learning blur-then-Sobel with Conv2d(1, 8, 3) -> Conv2d(8, 2, 3), Adam lr 1e-2, batch {BATCH} of {SIDE}x{SIDE}"
    );
    let trace = train(&ctx, steps, 0)?;
    for (step, loss) in trace.losses.iter().enumerate() {
        if step % 25 == 0 || step + 1 == trace.losses.len() {
            println!("step {step:4}: loss {loss:.6}");
        }
    }
    let (first, last) = (trace.losses[0], trace.losses[trace.losses.len() - 1]);
    println!(
        "loss {first:.4} -> {last:.6} ({:.0}x lower), {:.1} ms per step (median)",
        first / last,
        trace.step_ms
    );
    Ok(())
}
