//! Edge detection, as in the d2l image-convolution chapter, then Sobel edges of a picture.
//!
//!     cargo run --release --features image --example edge_detection [INPUT.png] [OUTPUT.png]
//!
//! Without arguments it reads the picture shipped in examples/data and writes edges.png.

use std::process::ExitCode;

use image::buffer::ConvertBuffer;
use image::{ImageBuffer, Luma};

use wgpu_conv2d::{Conv2d, Conv2dConfig, GpuContext, GpuConv2d, PaddingMode, Tensor};

const DEFAULT_INPUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/shapes.png");

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("edge_detection: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let input_path = args.first().map_or(DEFAULT_INPUT, String::as_str);
    let output_path = args.get(1).map_or("edges.png", String::as_str);

    let ctx = GpuContext::new()?;
    println!("GPU adapter: {}\n", ctx.describe());
    let mut all_match = true;

    // d2l: a 6x8 image, white with a black band in columns 2..6.
    let x: Vec<f32> = (0..6 * 8)
        .map(|i| if (2..6).contains(&(i % 8)) { 0.0 } else { 1.0 })
        .collect();
    let x = Tensor::new([1, 1, 6, 8], x)?;
    let k = Tensor::new([1, 1, 1, 2], vec![1.0, -1.0])?;
    let detector = Conv2d::from_weights(Conv2dConfig::new(1, 1, (1, 2)).with_bias(false), k, None)?;
    let gpu = GpuConv2d::new(&ctx, &detector)?;
    print_plane("X", &x);
    let y = gpu.forward(&x)?;
    print_plane(
        "Y = X ⋆ [1, -1]  (1: white to black, -1: black to white)",
        &y,
    );
    all_match &= report(&detector, &x, &y)?;

    let xt = transpose(&x)?;
    let yt = gpu.forward(&xt)?;
    print_plane(
        "X transposed ⋆ [1, -1]  (the kernel only sees vertical edges)",
        &yt,
    );
    all_match &= report(&detector, &xt, &yt)?;

    // Sobel edges of a picture: two output channels (d/dx, d/dy), replicate padding
    // so the border of the picture does not look like an edge.
    let picture = image::open(input_path)?.to_luma32f();
    let (w, h) = picture.dimensions();
    let input = Tensor::from_image(&picture); // (1, H, W), values in [0, 1]
    #[rustfmt::skip]
    let sobel = vec![
        -1.0, 0.0, 1.0,  -2.0, 0.0, 2.0,  -1.0, 0.0, 1.0,
        -1.0, -2.0, -1.0,  0.0, 0.0, 0.0,  1.0, 2.0, 1.0,
    ];
    let config = Conv2dConfig::new(1, 2, 3)
        .with_padding(1)
        .with_padding_mode(PaddingMode::Replicate)
        .with_bias(false);
    let layer = Conv2d::from_weights(config, Tensor::new([2, 1, 3, 3], sobel)?, None)?;
    let gradients = GpuConv2d::new(&ctx, &layer)?.forward(&input)?;
    println!("\nSobel on {input_path} ({w}x{h}):");
    all_match &= report(&layer, &input, &gradients)?;

    let plane = (w * h) as usize;
    let (gx, gy) = gradients.data().split_at(plane);
    let magnitude: Vec<f32> = gx.iter().zip(gy).map(|(a, b)| a.hypot(*b)).collect();
    let peak = magnitude.iter().cloned().fold(f32::MIN_POSITIVE, f32::max);
    let edges = Tensor::new(
        [1, h as usize, w as usize],
        magnitude.iter().map(|m| m / peak).collect(),
    )?;
    let edges: ImageBuffer<Luma<f32>, Vec<f32>> = edges.to_image()?;
    let edges: image::GrayImage = edges.convert();
    edges.save(output_path)?;
    println!("edge map written to {output_path}");
    Ok(all_match)
}

fn transpose(t: &Tensor) -> Result<Tensor, wgpu_conv2d::Conv2dError> {
    let (h, w) = (t.shape()[2], t.shape()[3]);
    let data = (0..w * h).map(|i| t.data()[(i % h) * w + i / h]).collect();
    Tensor::new([1, 1, w, h], data)
}

fn print_plane(title: &str, t: &Tensor) {
    println!("{title}:");
    let w = t.shape()[3];
    for row in t.data().chunks(w) {
        let cells: Vec<String> = row.iter().map(|v| format!("{v:4.0}")).collect();
        println!("  {}", cells.join(""));
    }
}

/// Prints whether the GPU result equals the CPU reference within the fp32
/// bound `(K + 2)·2⁻²³·Σ|w·x|` of each output's `K` products (`Σ|w·x|` from
/// the reference on absolute values); a NaN the reference lacks is a mismatch.
fn report(layer: &Conv2d, input: &Tensor, gpu: &Tensor) -> Result<bool, wgpu_conv2d::Conv2dError> {
    let cpu = layer.forward_cpu(input)?;
    let abs = |t: &Tensor| Tensor::new(t.shape(), t.data().iter().map(|v| v.abs()).collect());
    let magnitude = Conv2d::from_weights(*layer.config(), abs(layer.weight())?, None)?
        .forward_cpu(&abs(input)?)?;
    let terms = layer.config().fan_in() as f32;
    let mut ok = gpu.shape() == cpu.shape();
    let mut diff = 0.0f32;
    for ((&g, &c), &m) in gpu.data().iter().zip(cpu.data()).zip(magnitude.data()) {
        if g.is_nan() || c.is_nan() {
            ok &= g.is_nan() && c.is_nan();
            continue;
        }
        diff = diff.max((g - c).abs());
        ok &= (g - c).abs() <= (terms + 2.0) * f32::EPSILON * m;
    }
    println!(
        "{} GPU matches the CPU reference (max |diff| {diff:.2e}, within the fp32 bound)",
        if ok { "✓" } else { "✗" }
    );
    Ok(ok)
}
