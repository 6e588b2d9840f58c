//! `cargo bench`: the standard layers (ResNet 3×3 and 1×1, the 7×7 stem,
//! MobileNetV2 depthwise, a seed-sized conv) through every forward algorithm
//! that can run them, and their backward (input, weight and bias gradients)
//! on the blocked gradient kernels (the direct ones take seconds per call on
//! the large layers: `wgpu-conv2d bench --pass backward` times them),
//! GPU-resident (kernel) and end to end, and one training step (forward,
//! backward and an SGD update with momentum, `Auto`, GPU-resident).
//! Throughput is in elements of FLOPs, so criterion prints FLOP/s.
//! `WGPU_CONV2D_BENCH_BATCH` sets N (default 1).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wgpu_conv2d::{
    Algorithm, BackwardAlgorithm, Conv2d, Conv2dConfig, Conv2dGeometry, GpuContext, GpuConv2d,
    GpuTensor, GradMask, Sgd, SgdConfig, Tensor,
};

fn layers(batch: usize) -> Vec<(&'static str, Conv2dConfig, Vec<usize>)> {
    let conv3 = |c| Conv2dConfig::new(c, c, 3).with_padding(1);
    vec![
        ("resnet_64x56x56_3x3", conv3(64), vec![batch, 64, 56, 56]),
        ("resnet_128x28x28_3x3", conv3(128), vec![batch, 128, 28, 28]),
        ("resnet_256x14x14_3x3", conv3(256), vec![batch, 256, 14, 14]),
        ("resnet_512x7x7_3x3", conv3(512), vec![batch, 512, 7, 7]),
        (
            "resnet_stem_3x224x224_7x7_s2",
            Conv2dConfig::new(3, 64, 7).with_stride(2).with_padding(3),
            vec![batch, 3, 224, 224],
        ),
        (
            "resnet_64x56x56_1x1",
            Conv2dConfig::new(64, 256, 1),
            vec![batch, 64, 56, 56],
        ),
        (
            "mobilenet_dw_32x112x112",
            Conv2dConfig::new(32, 32, 3).with_padding(1).with_groups(32),
            vec![batch, 32, 112, 112],
        ),
        (
            "seed_1x1x6x8_2x2",
            Conv2dConfig::new(1, 1, 2),
            vec![1, 1, 6, 8],
        ),
    ]
}

fn bench(c: &mut Criterion) {
    let ctx = GpuContext::new().expect("the benchmarks need a GPU adapter");
    eprintln!("adapter: {}", ctx.describe());
    let batch = std::env::var("WGPU_CONV2D_BENCH_BATCH")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(1);
    for (name, config, shape) in layers(batch) {
        let geometry = Conv2dGeometry::new(&config, &shape).unwrap();
        let layer = Conv2d::new(config, 1).unwrap();
        let input = Tensor::new(&shape[..], vec![0.5; shape.iter().product()]).unwrap();
        let resident = GpuTensor::upload(&ctx, &input).unwrap();
        let mut group = c.benchmark_group(name);
        group.sample_size(10);
        group.throughput(Throughput::Elements(geometry.flops()));
        for algorithm in Algorithm::KERNELS {
            if algorithm.check(&geometry).is_err() {
                continue;
            }
            let gpu = GpuConv2d::new(&ctx, &layer)
                .unwrap()
                .with_algorithm(algorithm);
            group.bench_function(BenchmarkId::new("kernel", algorithm), |b| {
                b.iter(|| gpu.forward_gpu_timed(&resident).unwrap())
            });
            group.bench_function(BenchmarkId::new("end_to_end", algorithm), |b| {
                b.iter(|| gpu.forward(&input).unwrap())
            });
        }
        group.finish();

        // The backward: twice the forward's FLOPs plus the bias gradient's adds.
        let output = Tensor::new(
            geometry.output_shape(),
            vec![0.25; geometry.output_shape().iter().product()],
        )
        .unwrap();
        let resident_output = GpuTensor::upload(&ctx, &output).unwrap();
        let [n, k, oh, ow] = geometry.output_shape_4d();
        let mut group = c.benchmark_group(format!("{name}_backward"));
        group.sample_size(10);
        group.throughput(Throughput::Elements(
            2 * geometry.flops() + (n * k * oh * ow) as u64,
        ));
        let gpu = GpuConv2d::new(&ctx, &layer)
            .unwrap()
            .with_backward_algorithm(BackwardAlgorithm::Blocked);
        group.bench_function(BenchmarkId::new("kernel", "blocked"), |b| {
            b.iter(|| {
                gpu.backward_gpu_timed(&resident, &resident_output, GradMask::ALL)
                    .unwrap()
            })
        });
        group.bench_function(BenchmarkId::new("end_to_end", "blocked"), |b| {
            b.iter(|| gpu.backward(&input, &output).unwrap())
        });
        group.finish();

        // The step: the forward's FLOPs and the backward's.
        let mut group = c.benchmark_group(format!("{name}_step"));
        group.sample_size(10);
        group.throughput(Throughput::Elements(
            3 * geometry.flops() + (n * k * oh * ow) as u64,
        ));
        let mut gpu = GpuConv2d::new(&ctx, &layer).unwrap();
        let mut sgd = Sgd::new(SgdConfig {
            lr: 0.01,
            momentum: 0.9,
            ..SgdConfig::default()
        })
        .unwrap();
        group.bench_function(BenchmarkId::new("kernel", "auto"), |b| {
            b.iter(|| {
                gpu.forward_gpu(&resident).unwrap();
                let grads = gpu
                    .backward_gpu(&resident, &resident_output, GradMask::ALL)
                    .unwrap();
                sgd.step(&mut gpu, &grads).unwrap();
                ctx.device()
                    .poll(wgpu_conv2d::wgpu::PollType::wait_indefinitely())
                    .unwrap();
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
