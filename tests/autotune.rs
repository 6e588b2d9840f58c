//! `Auto` under autotuning: what it picks computes the right result, the
//! choice is measured once per shape class and kept, and a saved table makes
//! a new context start tuned.

mod common;

use wgpu_conv2d::{Algorithm, Conv2d, Conv2dConfig, GpuConv2d, PaddingMode};

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
