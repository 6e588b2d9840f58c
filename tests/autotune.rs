//! `Auto` under autotuning: what it picks computes the right result, the
//! choice is measured once per shape class and kept, and a saved table makes
//! a new context start tuned.

mod common;

use wgpu_conv2d::{Algorithm, BackwardAlgorithm, Conv2d, Conv2dConfig, GpuConv2d, PaddingMode};

#[test]
fn tuned_auto_agrees_with_the_cpu_reference_and_measures_once() {
    let ctx = common::gpu().with_autotune(true);
    assert!(ctx.autotunes() && !common::gpu().autotunes());
    let cases = [
        (
            Conv2dConfig::new(8, 16, 3).with_padding(1),
            vec![2, 8, 20, 20],
        ),
        (
            Conv2dConfig::new(6, 6, 3)
                .with_padding(1)
                .with_groups(6)
                .with_padding_mode(PaddingMode::Reflect),
            vec![1, 6, 33, 17],
        ),
        (Conv2dConfig::new(16, 32, 1), vec![1, 16, 30, 30]),
        (
            Conv2dConfig::new(4, 8, (5, 3))
                .with_stride(2)
                .with_dilation((1, 2)),
            vec![3, 4, 31, 29],
        ),
    ];
    for (k, (config, shape)) in cases.iter().enumerate() {
        let layer = Conv2d::new(*config, k as u64).unwrap();
        let input = common::random_tensor(shape, k as u64);
        let before = ctx.tuning_records().len();
        let gpu = GpuConv2d::new(&ctx, &layer).unwrap();
        let got = gpu.forward(&input).unwrap();
        let want = layer.forward_cpu(&input).unwrap();
        common::assert_within_bound(
            &format!("case {k}"),
            &got,
            &want,
            &common::magnitude(&layer, &input),
            common::terms(&layer),
        );
        let records = ctx.tuning_records();
        assert_eq!(records.len(), before + 1, "case {k}: one measurement");
        let record = records.last().unwrap();
        let picked = gpu.resolved_algorithm(shape).unwrap();
        assert_eq!(record.chosen, picked.name(), "case {k}");
        assert_ne!(picked, Algorithm::Winograd);
        assert!(
            record
                .candidates
                .iter()
                .any(|(name, ms)| *name == record.chosen && ms.is_ok()),
            "{record:?}"
        );
        // The same shape again: no new measurement.
        gpu.forward(&input).unwrap();
        assert_eq!(ctx.tuning_records().len(), before + 1, "case {k}: kept");
    }
}

/// The backward's weight gradient under autotuning: the direct, blocked and
/// tiled GEMM kernels timed once per shape class, the gradients within the
/// fp32 bound of the CPU reference, and a table's choice being what runs.
#[test]
fn tuned_backward_times_the_weight_gradients_once_and_agrees() {
    // A device of its own: clones of one share its table, and the forward
    // test counts the records of the shared one.
    let ctx = wgpu_conv2d::GpuContext::new().unwrap().with_autotune(true);
    let config = Conv2dConfig::new(8, 16, 3).with_padding(1);
    let layer = Conv2d::new(config, 7).unwrap();
    let input = common::random_tensor(&[2, 8, 14, 14], 8);
    let grad_output = common::random_tensor(&[2, 16, 14, 14], 9);
    let gpu = GpuConv2d::new(&ctx, &layer).unwrap();
    let weight_records = |ctx: &wgpu_conv2d::GpuContext| {
        ctx.tuning_records()
            .into_iter()
            .filter(|r| r.key.starts_with("weight-gradient "))
            .collect::<Vec<_>>()
    };
    let got = gpu.backward(&input, &grad_output).unwrap();
    let want = layer.backward_cpu(&input, &grad_output).unwrap();
    common::assert_grads_within_bound("tuned backward", &got, &want, &layer, &input, &grad_output);
    let records = weight_records(&ctx);
    assert_eq!(records.len(), 1, "{records:?}");
    let names: Vec<&str> = records[0]
        .candidates
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(names, ["direct", "blocked", "implicit-gemm"]);
    assert!(
        records[0].candidates.iter().all(|(_, ms)| ms.is_ok()),
        "every weight gradient agrees with the direct one: {records:?}"
    );
    // The same shape again, and a GPU-resident call: no new measurement.
    gpu.backward(&input, &grad_output).unwrap();
    let upload = |t| wgpu_conv2d::GpuTensor::upload(&ctx, t).unwrap();
    gpu.backward_gpu(
        &upload(&input),
        &upload(&grad_output),
        wgpu_conv2d::GradMask::ALL,
    )
    .unwrap();
    assert_eq!(weight_records(&ctx).len(), 1, "kept");
    // A forced algorithm is not tuned.
    let fresh = wgpu_conv2d::GpuContext::new().unwrap().with_autotune(true);
    GpuConv2d::new(&fresh, &layer)
        .unwrap()
        .with_backward_algorithm(BackwardAlgorithm::Direct)
        .backward(&input, &grad_output)
        .unwrap();
    assert!(weight_records(&fresh).is_empty());

    // The table's choice is what runs: name the GEMM for this class in a
    // fresh device's table, and the backward runs it (the benchmark says
    // which kernels ran) without measuring, still agreeing.
    let text = ctx.tuning_text();
    let line = text
        .lines()
        .find(|l| l.contains("\tweight-gradient "))
        .unwrap();
    let (class, choice) = line.rsplit_once('\t').unwrap();
    assert!(
        ["direct", "blocked", "implicit-gemm"].contains(&choice),
        "{line}"
    );
    let other = wgpu_conv2d::GpuContext::new().unwrap().with_autotune(true);
    other
        .load_tuning_text(&format!("{class}\timplicit-gemm\n"))
        .unwrap();
    let options = wgpu_conv2d::bench::BenchOptions {
        min_time: std::time::Duration::ZERO,
        min_runs: 1,
        max_runs: 1,
        ..Default::default()
    };
    let measured = wgpu_conv2d::bench::measure_backward(
        &other,
        config,
        &[2, 8, 14, 14],
        BackwardAlgorithm::Auto,
        &options,
    )
    .unwrap();
    assert_eq!(measured.algorithm, "blocked input, implicit-gemm weight");
    let got = GpuConv2d::new(&other, &layer)
        .unwrap()
        .backward(&input, &grad_output)
        .unwrap();
    common::assert_grads_within_bound("tuned GEMM", &got, &want, &layer, &input, &grad_output);
    assert!(weight_records(&other).is_empty(), "nothing measured");
    // A table naming a forward algorithm for a weight-gradient class is refused.
    let err = other
        .load_tuning_text(&format!("{class}\twinograd\n"))
        .unwrap_err();
    assert!(err.to_string().contains("winograd"), "{err}");
}

#[test]
fn a_saved_table_makes_a_new_context_start_tuned() {
    let dir = std::env::temp_dir().join(format!("wgpu-conv2d-autotune-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tuning.tsv");
    let config = Conv2dConfig::new(8, 8, 3).with_padding(1);
    let layer = Conv2d::new(config, 3).unwrap();
    let shape = [1, 8, 16, 16];

    // A fresh device for the measuring side, so its table starts empty.
    let first = wgpu_conv2d::GpuContext::new().unwrap().with_autotune(true);
    let picked = GpuConv2d::new(&first, &layer)
        .unwrap()
        .resolved_algorithm(&shape)
        .unwrap();
    first.save_tuning(&path).unwrap();

    let second = wgpu_conv2d::GpuContext::new().unwrap().with_autotune(true);
    second.load_tuning(&path).unwrap();
    let again = GpuConv2d::new(&second, &layer)
        .unwrap()
        .resolved_algorithm(&shape)
        .unwrap();
    assert_eq!(again, picked);
    assert!(
        second.tuning_records().is_empty(),
        "the loaded choice was used, nothing measured"
    );
    // A corrupt table is an error naming the file, not a silent empty one.
    std::fs::write(&path, "just one field\n").unwrap();
    let err = second.load_tuning(&path).unwrap_err().to_string();
    assert!(
        err.contains("tuning.tsv") && err.contains("line 1"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
