use std::time::Instant;
use wgpu_conv2d::*;
fn main() {
    let ctx = GpuContext::new().unwrap();
    for (shape, k, out) in [
        ([8usize, 64, 56, 56], 3usize, 64usize),
        ([1, 64, 56, 56], 3, 64),
    ] {
        let layer = Conv2d::new(Conv2dConfig::new(shape[1], out, k).with_padding(1), 1).unwrap();
        let x = Tensor::new(shape, vec![0.5; shape.iter().product()]).unwrap();
        let gpu = GpuConv2d::new(&ctx, &layer).unwrap();
        let y = gpu.forward(&x).unwrap();
        let gy = Tensor::new(y.shape(), vec![1.0; y.numel()]).unwrap();
        gpu.backward(&x, &gy).unwrap();
        let t = Instant::now();
        gpu.forward(&x).unwrap();
        let f = t.elapsed();
        let t = Instant::now();
        gpu.backward(&x, &gy).unwrap();
        let b = t.elapsed();
        println!(
            "{shape:?}: forward {:.3}s backward {:.3}s",
            f.as_secs_f64(),
            b.as_secs_f64()
        );
    }
}
