//! Learning a kernel, as in the d2l image-convolution chapter, on the GPU.
//!
//!     cargo run --release --example learn_kernel [-- --seed N]
//!
//! X is a 6×8 image of ones with columns 2..6 set to 0 and Y = X ⋆ [1, −1].
//! A Conv2d(1, 1, (1, 2), bias=False) with PyTorch's default init learns the
//! kernel back by 10 steps of SGD (lr 3e-2) on the summed squared error; the
//! weights stay on the GPU throughout and are read back once at the end.

use wgpu_conv2d::{Conv2d, Conv2dConfig, Conv2dError, GpuContext, GpuConv2d, Tensor};

/// What one training run did.
pub struct Trace {
    /// The loss computed in each step, before that step's update.
    pub losses: Vec<f32>,
    /// The learned kernel.
    pub kernel: [f32; 2],
}

/// Trains from PyTorch's default initialisation drawn with `seed`.
pub fn train(ctx: &GpuContext, seed: u64) -> Result<Trace, Conv2dError> {
    let x: Vec<f32> = (0..6 * 8)
        .map(|i| if (2..6).contains(&(i % 8)) { 0.0 } else { 1.0 })
        .collect();
    let x = Tensor::new([1, 1, 6, 8], x)?;
    let config = Conv2dConfig::new(1, 1, (1, 2)).with_bias(false);
    let edge = Conv2d::from_weights(config, Tensor::new([1, 1, 1, 2], vec![1.0, -1.0])?, None)?;
    let y = edge.forward_cpu(&x)?;

    let mut layer = GpuConv2d::new(ctx, &Conv2d::new(config, seed)?)?;
    let mut losses = Vec::new();
    for _ in 0..10 {
        let y_hat = layer.forward(&x)?;
        let diff: Vec<f32> = y_hat
            .data()
            .iter()
            .zip(y.data())
            .map(|(a, b)| a - b)
            .collect();
        losses.push(diff.iter().map(|d| d * d).sum());
        // d/dŶ Σ (Ŷ − Y)² = 2 (Ŷ − Y)
        let grad = Tensor::new(y.shape(), diff.iter().map(|d| 2.0 * d).collect())?;
        layer.sgd_step(&x, &grad, 3e-2)?;
    }
    let learned = layer.to_layer()?;
    let k = learned.weight().data();
    Ok(Trace {
        losses,
        kernel: [k[0], k[1]],
    })
}

#[allow(dead_code)] // The tests include this file for `train` alone.
fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let seed = match args
        .iter()
        .position(|a| a == "--seed")
        .map(|i| args.get(i + 1).map(|s| s.parse::<u64>()))
    {
        None => 0,
        Some(Some(Ok(seed))) => seed,
        _ => {
            eprintln!("usage: learn_kernel [--seed N]");
            return std::process::ExitCode::FAILURE;
        }
    };
    let run = GpuContext::new().and_then(|ctx| {
        println!("GPU adapter: {}", ctx.describe());
        train(&ctx, seed)
    });
    match run {
        Ok(trace) => {
            for (step, loss) in trace.losses.iter().enumerate().skip(1).step_by(2) {
                println!("epoch {}, loss {loss:.3}", step + 1);
            }
            println!(
                "learned kernel: [{:.4}, {:.4}] (target [1, -1])",
                trace.kernel[0], trace.kernel[1]
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("learn_kernel: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
