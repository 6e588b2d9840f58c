//! The `wgpu-conv2d` binary: values on both backends, and on every error a
//! non-zero exit, one line on stderr, no output file created and no file of
//! the user's changed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{assert_within_bound, config, floats, load, magnitude, shape, terms};
use wgpu_conv2d::npy::{read_npy, write_npy};
use wgpu_conv2d::{Conv2d, Conv2dConfig, Conv2dGrads, Tensor};

fn workdir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cli")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgpu-conv2d"))
        .args(args)
        .output()
        .unwrap()
}

/// `cli` with `base` and then `extra` as arguments.
fn cli_with(base: &[&str], extra: &[&str]) -> Output {
    cli(&[base, extra].concat())
}

/// Whether the adapter the CLI picks (wgpu's default) is a CPU one, such as
/// lavapipe, where `Auto`'s rules differ.
fn cpu_adapter() -> bool {
    wgpu_conv2d::GpuContext::new()
        .is_ok_and(|ctx| ctx.adapter_info().device_type == wgpu_conv2d::wgpu::DeviceType::Cpu)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts a failed run: non-zero exit, exactly one stderr line containing `needle`.
fn assert_error(out: &Output, needle: &str) {
    let err = stderr(out);
    assert!(!out.status.success(), "expected failure, stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one stderr line, got: {err:?}");
    assert!(err.contains(needle), "stderr {err:?} lacks {needle:?}");
}

/// [`assert_error`], and no file at `output`.
fn assert_failed(out: &Output, needle: &str, output: &Path) {
    assert_error(out, needle);
    assert!(!output.exists(), "no output file after an error");
}

#[test]
fn forward_matches_pytorch_on_both_backends() {
    let dir = workdir("forward");
    let seeds = load("seed_examples.json");
    for case in seeds["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let p = &case["params"];
        let input = dir.join(format!("{name}_x.npy"));
        let weight = dir.join(format!("{name}_w.npy"));
        let bias = dir.join(format!("{name}_b.npy"));
        write_npy(
            &input,
            &Tensor::new(shape(&case["input_shape"]), floats(&case["input"])).unwrap(),
        )
        .unwrap();
        write_npy(
            &weight,
            &Tensor::new(shape(&case["weight_shape"]), floats(&case["weight"])).unwrap(),
        )
        .unwrap();
        let cfg = config(p);
        let arg = |v: &serde_json::Value| match v {
            serde_json::Value::Array(a) => format!("{},{}", a[0], a[1]),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let (stride, padding, dilation) =
            (arg(&p["stride"]), arg(&p["padding"]), arg(&p["dilation"]));
        let groups = cfg.groups.to_string();
        let mut args = vec![
            "forward",
            "--input",
            input.to_str().unwrap(),
            "--weight",
            weight.to_str().unwrap(),
            "--stride",
            &stride,
            "--padding",
            &padding,
            "--dilation",
            &dilation,
            "--groups",
            &groups,
            "--padding-mode",
            p["padding_mode"].as_str().unwrap(),
        ];
        if cfg.bias {
            write_npy(
                &bias,
                &Tensor::new([cfg.out_channels], floats(&case["bias"])).unwrap(),
            )
            .unwrap();
            args.extend(["--bias", bias.to_str().unwrap()]);
        }
        let layer = common::layer_from_case(case).unwrap();
        let x = read_npy(&input).unwrap();
        let expected = Tensor::new(shape(&case["output_shape"]), floats(&case["output"])).unwrap();
        let runs = [
            ("gpu", "auto"),
            ("cpu", "auto"),
            ("auto", "auto"),
            ("gpu", "direct"),
            ("gpu", "implicit-gemm"),
            ("gpu", "gemm-1x1"),
            ("gpu", "depthwise"),
            ("gpu", "blocked"),
        ];
        for (backend, algorithm) in runs {
            let output = dir.join(format!("{name}_{backend}_{algorithm}_y.npy"));
            let mut run = args.clone();
            run.extend(["--backend", backend, "--output", output.to_str().unwrap()]);
            run.extend(["--algorithm", algorithm]);
            let out = cli(&run);
            if ["gemm-1x1", "depthwise", "blocked"].contains(&algorithm) && !out.status.success() {
                // These run only their kind of convolution, and say so.
                assert_failed(&out, "cannot run this convolution: it needs", &output);
                continue;
            }
            assert!(
                out.status.success(),
                "{name} {backend} {algorithm}: {}",
                stderr(&out)
            );
            let y = read_npy(&output).unwrap();
            assert_within_bound(
                &format!("{name} {backend} {algorithm}"),
                &y,
                &expected,
                &magnitude(&layer, &x),
                terms(&layer),
            );
        }
    }
}

#[test]
fn errors_leave_no_output_and_one_line() {
    let dir = workdir("errors");
    let x = dir.join("x.npy");
    let w = dir.join("w.npy");
    let y = dir.join("y.npy");
    write_npy(&x, &Tensor::zeros([1, 4, 5, 5]).unwrap()).unwrap();
    write_npy(&w, &Tensor::zeros([6, 3, 3, 3]).unwrap()).unwrap();
    let (xs, ws, ys) = (
        x.to_str().unwrap(),
        w.to_str().unwrap(),
        y.to_str().unwrap(),
    );
    for backend in ["gpu", "cpu"] {
        // A file from an earlier run is the user's: a failed run leaves it as it was.
        std::fs::write(&y, b"earlier").unwrap();
        let out = cli(&[
            "forward",
            "--input",
            xs,
            "--weight",
            ws,
            "--backend",
            backend,
            "--output",
            ys,
        ]);
        assert_error(
            &out,
            "expected input[1, 4, 5, 5] to have 3 channels, but got 4 channels instead",
        );
        assert_eq!(std::fs::read(&y).unwrap(), b"earlier");
    }
    std::fs::remove_file(&y).unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--padding", "foo"], "Invalid padding string 'foo'"),
        (&["--padding-mode", "mirror"], "padding_mode='mirror'"),
        (&["--groups", "0"], "groups must be a positive integer"),
        (&["--stride", "0"], "non-positive stride"),
        (
            &["--padding", "same", "--stride", "2"],
            "padding='same' is not supported for strided convolutions",
        ),
        (&["--padding", "-1"], "negative padding is not supported"),
    ];
    write_npy(&x, &Tensor::zeros([1, 3, 5, 5]).unwrap()).unwrap();
    for (extra, needle) in cases {
        let mut args = vec!["forward", "--input", xs, "--weight", ws, "--output", ys];
        args.extend_from_slice(extra);
        assert_failed(&cli(&args), needle, &y);
    }
    // Usage errors from the argument parser are one line too.
    assert_failed(
        &cli(&[
            "forward", "--input", xs, "--weight", ws, "--stride", "x", "--output", ys,
        ]),
        "--stride",
        &y,
    );
    assert_failed(
        &cli(&["forward", "--input", xs, "--output", ys]),
        "--weight",
        &y,
    );
    // Missing and malformed files.
    let missing = dir.join("missing.npy");
    assert_failed(
        &cli(&[
            "forward",
            "--input",
            missing.to_str().unwrap(),
            "--weight",
            ws,
            "--output",
            ys,
        ]),
        "missing.npy",
        &y,
    );
    let f64_file = dir.join("f64.npy");
    npyz::to_file_1d(&f64_file, vec![1.0f64; 4]).unwrap();
    assert_failed(
        &cli(&[
            "forward",
            "--input",
            xs,
            "--weight",
            f64_file.to_str().unwrap(),
            "--output",
            ys,
        ]),
        "expected float32",
        &y,
    );
    assert_failed(
        &cli(&[
            "forward",
            "--input",
            xs,
            "--weight",
            x.to_str().unwrap(),
            "--bias",
            f64_file.to_str().unwrap(),
            "--output",
            ys,
        ]),
        "f64.npy",
        &y,
    );
}

#[test]
fn padding_forms_and_unbatched_input() {
    let dir = workdir("forms");
    let layer = Conv2d::new(Conv2dConfig::new(2, 3, (2, 3)).with_bias(false), 5).unwrap();
    let input = Tensor::new([2, 6, 7], (0..84).map(|v| (v % 11) as f32 - 5.0).collect()).unwrap();
    let (x, w, y) = (dir.join("x.npy"), dir.join("w.npy"), dir.join("y.npy"));
    write_npy(&x, &input).unwrap();
    write_npy(&w, layer.weight()).unwrap();
    for (padding, mode) in [
        ("1,2", "reflect"),
        ("same", "circular"),
        ("valid", "zeros"),
        ("-1", "replicate"),
    ] {
        let out = cli(&[
            "forward",
            "--input",
            x.to_str().unwrap(),
            "--weight",
            w.to_str().unwrap(),
            "--padding",
            padding,
            "--padding-mode",
            mode,
            "--stride",
            "1",
            "--dilation",
            "1,1",
            "--backend",
            "gpu",
            "--output",
            y.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{padding} {mode}: {}", stderr(&out));
        let cfg = Conv2dConfig {
            padding: padding.parse().unwrap(),
            padding_mode: mode.parse().unwrap(),
            ..*layer.config()
        };
        let want = Conv2d::from_weights(cfg, layer.weight().clone(), None)
            .unwrap()
            .forward_cpu(&input)
            .unwrap();
        let got = read_npy(&y).unwrap();
        assert_eq!(got.shape().len(), 3, "unbatched stays unbatched");
        let layer = Conv2d::from_weights(cfg, layer.weight().clone(), None).unwrap();
        assert_within_bound(
            &format!("{padding} {mode}"),
            &got,
            &want,
            &magnitude(&layer, &input),
            terms(&layer),
        );
    }
}

#[test]
fn bench_prints_one_json_object_per_algorithm() {
    let base = [
        "bench",
        "--input-shape",
        "2,4,16,16",
        "--out-channels",
        "8",
        "--kernel-size",
        "3",
        "--padding",
        "1",
        "--min-time-ms",
        "1",
    ];
    let out = cli_with(&base, &["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Not depthwise and not 1x1, 3x3 with stride 1: auto, direct, implicit-gemm,
    // blocked, winograd and blocked-bf16 can run it.
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l["requested"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "auto",
            "direct",
            "implicit-gemm",
            "blocked",
            "winograd",
            "blocked-bf16"
        ]
    );
    for line in &lines {
        assert_eq!(line["precision"], "highest", "{line}");
        let flops = 2.0 * 2.0 * 8.0 * 16.0 * 16.0 * 4.0 * 9.0;
        let kernel_ms = line["kernel_ms"].as_f64().unwrap();
        let gflops = line["gflops"].as_f64().unwrap();
        assert!(kernel_ms > 0.0 && line["end_to_end_ms"].as_f64().unwrap() > 0.0);
        assert!((gflops - flops / (kernel_ms * 1e-3) / 1e9).abs() <= 1e-6 * gflops);
        assert!(!line["adapter"].as_str().unwrap().is_empty());
        assert!(line["algorithm"].is_string());
    }
    // At precision high, Auto may run Winograd: it does where a group has 64
    // or more input and output channels.
    let wide = [
        "bench",
        "--input-shape",
        "1,64,24,24",
        "--out-channels",
        "64",
        "--kernel-size",
        "3",
        "--padding",
        "1",
        "--min-time-ms",
        "1",
        "--algorithm",
        "auto",
        "--json",
    ];
    let out = cli_with(&wide, &["--precision", "high"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    assert_eq!(line["precision"], "high");
    if cpu_adapter() {
        assert_eq!(line["algorithm"], "winograd", "{line}");
    }
    let out = cli(&wide);
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    assert_ne!(line["algorithm"], "winograd", "{line}");
    let out = cli_with(&wide, &["--precision", "low"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown precision 'low' (expected highest, high or medium)"),
        "{}",
        stderr(&out)
    );
    // The table names the adapter; a forced algorithm that cannot run it is an error.
    let out = cli(&base);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("adapter: "));
    let out = cli_with(&base, &["--algorithm", "depthwise"]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out).trim(),
        "wgpu-conv2d: error: algorithm 'depthwise' cannot run this convolution: it needs groups == in_channels, got in_channels=4, groups=1"
    );
    let out = cli_with(&base, &["--algorithm", "fft"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown algorithm 'fft'"),
        "{}",
        stderr(&out)
    );
    // The backward pass: its own algorithms, and twice the forward's FLOPs
    // plus the bias gradient's adds.
    let out = cli_with(&base, &["--pass", "backward", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l["requested"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["auto", "direct", "blocked", "implicit-gemm"]);
    for line in &lines {
        assert_eq!(line["pass"], "backward");
        let flops = 2.0 * 2.0 * 2.0 * 8.0 * 16.0 * 16.0 * 4.0 * 9.0 + 2.0 * 8.0 * 16.0 * 16.0;
        assert_eq!(line["flops"].as_f64().unwrap(), flops);
    }
    let out = cli_with(&base, &["--pass", "backward", "--algorithm", "winograd"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "unknown backward algorithm 'winograd' (expected auto, direct, blocked or implicit-gemm)"
        ),
        "{}",
        stderr(&out)
    );
    // The step: forward + backward (+ the update), both kernels named.
    let out = cli_with(&base, &["--pass", "step", "--json", "--algorithm", "auto"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    assert_eq!(line["pass"], "step");
    assert_eq!(line["requested"], "auto");
    assert!(
        line["algorithm"].as_str().unwrap().contains(" + "),
        "{line}"
    );
    let flops = 3.0 * 2.0 * 2.0 * 8.0 * 16.0 * 16.0 * 4.0 * 9.0 + 2.0 * 8.0 * 16.0 * 16.0;
    assert_eq!(line["flops"].as_f64().unwrap(), flops);
    assert!(line["kernel_ms"].as_f64().unwrap() > 0.0);
    assert!(line["end_to_end_ms"].as_f64().unwrap() > 0.0);
    let out = cli_with(&base, &["--pass", "epoch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("expected forward, backward or step"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn info_names_the_adapter() {
    let out = cli(&["info"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("adapter:") && text.contains("max_storage_buffer_binding_size"),
        "{text}"
    );
    assert_eq!(stderr(&out), "", "info writes nothing on stderr");
}

#[test]
fn without_an_adapter_the_error_says_how_to_get_one() {
    let dir = workdir("no_adapter");
    let (x, w, y) = (dir.join("x.npy"), dir.join("w.npy"), dir.join("y.npy"));
    write_npy(
        &x,
        &Tensor::new([1, 1, 3, 3], (0..9).map(|v| v as f32).collect()).unwrap(),
    )
    .unwrap();
    write_npy(&w, &Tensor::new([1, 1, 2, 2], vec![1.0; 4]).unwrap()).unwrap();
    // Hide every Vulkan driver from the loader: no adapter at all.
    let no_gpu = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_wgpu-conv2d"))
            .args(args)
            .env("VK_ICD_FILENAMES", "/nonexistent.json")
            .env("VK_DRIVER_FILES", "/nonexistent.json")
            .env("WGPU_BACKEND", "vulkan")
            .output()
            .unwrap()
    };
    let forward = [
        "forward",
        "--input",
        x.to_str().unwrap(),
        "--weight",
        w.to_str().unwrap(),
    ];
    let mut args = forward.to_vec();
    args.extend(["--output", y.to_str().unwrap()]);
    assert_failed(&no_gpu(&args), "apt-get install -y mesa-vulkan-drivers", &y);
    assert_failed(&no_gpu(&["info"]), "No GPU adapter was found", &y);
    // auto falls back to the CPU reference and says so.
    args.extend(["--backend", "auto"]);
    let out = no_gpu(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("running on the CPU reference"),
        "{}",
        stderr(&out)
    );
    assert_eq!(read_npy(&y).unwrap().data(), &[8.0, 12.0, 20.0, 24.0]);
    // A named adapter that does not exist is an error, not a silent fallback.
    let out = Command::new(env!("CARGO_BIN_EXE_wgpu-conv2d"))
        .arg("info")
        .env("WGPU_ADAPTER_NAME", "no-such-adapter")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("matches none of the adapters found"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn backward_matches_pytorch_autograd_on_both_backends() {
    let dir = workdir("backward");
    let golden = load("golden_backward.json");
    // Every fourth case: all padding modes and the edge cases are among them.
    for case in golden["cases"].as_array().unwrap().iter().step_by(4) {
        let name = case["name"].as_str().unwrap();
        let p = &case["params"];
        let path = |what: &str| dir.join(format!("{name}_{what}.npy"));
        let save = |what: &str, shape_key: &str, data_key: &str| {
            write_npy(
                path(what),
                &Tensor::new(shape(&case[shape_key]), floats(&case[data_key])).unwrap(),
            )
            .unwrap();
        };
        save("x", "input_shape", "input");
        save("w", "weight_shape", "weight");
        save("gy", "grad_output_shape", "grad_output");
        let arg = |v: &serde_json::Value| match v {
            serde_json::Value::Array(a) => format!("{},{}", a[0], a[1]),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let has_bias = p["bias"].as_bool().unwrap();
        for (backend, algorithm) in [
            ("gpu", "auto"),
            ("cpu", "auto"),
            ("gpu", "direct"),
            ("gpu", "blocked"),
        ] {
            let mut args: Vec<String> = vec![
                "backward".into(),
                "--input".into(),
                path("x").display().to_string(),
                "--weight".into(),
                path("w").display().to_string(),
                "--grad-output".into(),
                path("gy").display().to_string(),
                "--stride".into(),
                arg(&p["stride"]),
                "--padding".into(),
                arg(&p["padding"]),
                "--dilation".into(),
                arg(&p["dilation"]),
                "--groups".into(),
                arg(&p["groups"]),
                "--padding-mode".into(),
                p["padding_mode"].as_str().unwrap().into(),
                "--backend".into(),
                backend.into(),
                "--algorithm".into(),
                algorithm.into(),
                "--grad-input".into(),
                path("gx").display().to_string(),
                "--grad-weight".into(),
                path("gw").display().to_string(),
            ];
            if has_bias {
                write_npy(
                    path("b"),
                    &Tensor::new(
                        [p["out_channels"].as_u64().unwrap() as usize],
                        floats(&case["bias"]),
                    )
                    .unwrap(),
                )
                .unwrap();
                args.extend([
                    "--bias".into(),
                    path("b").display().to_string(),
                    "--grad-bias".into(),
                    path("gb").display().to_string(),
                ]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = cli(&args);
            if algorithm == "blocked" && !out.status.success() {
                // It runs only the convolutions it can, and says so.
                assert_error(&out, "cannot run this convolution: its");
                continue;
            }
            assert!(out.status.success(), "{name} {backend}: {}", stderr(&out));
            let layer = common::layer_from_case(case).unwrap();
            let input = read_npy(path("x")).unwrap();
            let grad_output = read_npy(path("gy")).unwrap();
            let tensor =
                |key: &str, like: &Tensor| Tensor::new(like.shape(), floats(&case[key])).unwrap();
            let expected = Conv2dGrads {
                grad_input: tensor("grad_input", &input),
                grad_weight: tensor("grad_weight", layer.weight()),
                grad_bias: layer.bias().map(|b| tensor("grad_bias", b)),
            };
            let got = Conv2dGrads {
                grad_input: read_npy(path("gx")).unwrap(),
                grad_weight: read_npy(path("gw")).unwrap(),
                grad_bias: has_bias.then(|| read_npy(path("gb")).unwrap()),
            };
            common::assert_grads_within_bound(
                &format!("{name} {backend} {algorithm}"),
                &got,
                &expected,
                &layer,
                &input,
                &grad_output,
            );
        }
    }
}

#[test]
fn backward_errors_leave_no_files() {
    let dir = workdir("backward_errors");
    let (x, w, b, gy) = (
        dir.join("x.npy"),
        dir.join("w.npy"),
        dir.join("b.npy"),
        dir.join("gy.npy"),
    );
    let (gx, gw, gb) = (dir.join("gx.npy"), dir.join("gw.npy"), dir.join("gb.npy"));
    write_npy(&x, &Tensor::zeros([1, 3, 5, 5]).unwrap()).unwrap();
    write_npy(&w, &Tensor::zeros([6, 3, 3, 3]).unwrap()).unwrap();
    write_npy(&b, &Tensor::zeros([6]).unwrap()).unwrap();
    write_npy(&gy, &Tensor::zeros([1, 6, 4, 4]).unwrap()).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let base = vec![
        "backward".to_string(),
        "--input".into(),
        s(&x),
        "--weight".into(),
        s(&w),
        "--grad-output".into(),
        s(&gy),
        "--grad-input".into(),
        s(&gx),
        "--grad-weight".into(),
        s(&gw),
    ];
    let run = |extra: &[&str]| {
        for earlier in [&gx, &gw, &gb] {
            std::fs::write(earlier, b"earlier").unwrap();
        }
        let mut args: Vec<&str> = base.iter().map(String::as_str).collect();
        args.extend_from_slice(extra);
        cli(&args)
    };
    let gb_s = s(&gb);
    let b_s = s(&b);
    // grad_output of the wrong shape (the output is 1x6x3x3).
    for backend in ["gpu", "cpu"] {
        let out = run(&["--bias", &b_s, "--grad-bias", &gb_s, "--backend", backend]);
        assert_failed_keeping(
            &out,
            "expected grad_output of size [1, 6, 3, 3]",
            &[&gx, &gw, &gb],
        );
    }
    let out = run(&["--grad-bias", &gb_s]);
    assert_failed_keeping(
        &out,
        "--grad-bias needs a layer with a bias",
        &[&gx, &gw, &gb],
    );
    // The backward's --algorithm is honoured: blocked cannot run a kernel 17
    // wide, and says so (the default falls back to the direct kernels).
    let (x17, w17, gy17) = (
        dir.join("x17.npy"),
        dir.join("w17.npy"),
        dir.join("gy17.npy"),
    );
    write_npy(&x17, &Tensor::zeros([1, 3, 5, 20]).unwrap()).unwrap();
    write_npy(&w17, &Tensor::zeros([6, 3, 1, 17]).unwrap()).unwrap();
    write_npy(&gy17, &Tensor::zeros([1, 6, 5, 4]).unwrap()).unwrap();
    let wide = |extra: &[&str]| {
        for earlier in [&gx, &gw] {
            std::fs::write(earlier, b"earlier").unwrap();
        }
        let mut args = vec![
            "backward",
            "--input",
            x17.to_str().unwrap(),
            "--weight",
            w17.to_str().unwrap(),
            "--grad-output",
            gy17.to_str().unwrap(),
            "--grad-input",
            gx.to_str().unwrap(),
            "--grad-weight",
            gw.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        cli(&args)
    };
    let out = wide(&["--algorithm", "blocked"]);
    assert_failed_keeping(
        &out,
        "algorithm 'blocked (backward)' cannot run this convolution",
        &[&gx, &gw],
    );
    let out = wide(&["--algorithm", "auto", "--precision", "high"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Without --bias, a --grad-bias naming the weight file leaves it alone too.
    let before = std::fs::read(&w).unwrap();
    let out = run(&["--grad-bias", &s(&w)]);
    assert!(!out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&w).unwrap(), before);
}

/// Asserts a failed run whose output paths held files beforehand (`earlier`):
/// one stderr line with `needle`, and every file exactly as it was.
fn assert_failed_keeping(out: &Output, needle: &str, files: &[&Path]) {
    assert_error(out, needle);
    for file in files {
        assert_eq!(
            std::fs::read(file).unwrap(),
            b"earlier",
            "{} changed by a failed run",
            file.display()
        );
    }
}

/// A small valid layer and input on disk: x (1x3x5x5), w (2x3x3x3), b (2), gy (1x2x3x3).
fn layer_files(dir: &Path) -> [PathBuf; 4] {
    let files = ["x.npy", "w.npy", "b.npy", "gy.npy"].map(|f| dir.join(f));
    let tensors = [
        common::random_tensor(&[1, 3, 5, 5], 1),
        common::random_tensor(&[2, 3, 3, 3], 2),
        common::random_tensor(&[2], 3),
        common::random_tensor(&[1, 2, 3, 3], 4),
    ];
    for (file, tensor) in files.iter().zip(&tensors) {
        write_npy(file, tensor).unwrap();
    }
    files
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn an_output_that_is_an_input_is_refused_and_the_input_kept() {
    let dir = workdir("output_is_input");
    let [x, w, b, gy] = layer_files(&dir);
    let inputs: Vec<Vec<u8>> = [&x, &w, &b, &gy]
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    let unchanged = || {
        for (f, before) in [&x, &w, &b, &gy].iter().zip(&inputs) {
            assert_eq!(
                &std::fs::read(f).unwrap(),
                before,
                "{} changed",
                f.display()
            );
        }
    };
    // The same path, another spelling of it, a symlink to it and a hard link to it.
    let dotted = dir.join(".").join("w.npy");
    let link = dir.join("link.npy");
    std::os::unix::fs::symlink(&x, &link).unwrap();
    let hard = dir.join("hard.npy");
    std::fs::hard_link(&b, &hard).unwrap();
    for (output, flag) in [
        (&x, "--input"),
        (&dotted, "--weight"),
        (&link, "--input"),
        (&hard, "--bias"),
    ] {
        let out = cli(&[
            "forward",
            "--input",
            s(&x),
            "--weight",
            s(&w),
            "--bias",
            s(&b),
            "--output",
            s(output),
        ]);
        assert_error(&out, &format!("is the same file as {flag}"));
        unchanged();
    }
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // A failing run (channel mismatch) with the input as output: the case that
    // used to delete the input.
    let x4 = dir.join("x4.npy");
    write_npy(&x4, &Tensor::zeros([1, 4, 5, 5]).unwrap()).unwrap();
    let out = cli(&[
        "forward",
        "--input",
        s(&x4),
        "--weight",
        s(&w),
        "--output",
        s(&x4),
    ]);
    assert!(!out.status.success());
    assert_eq!(read_npy(&x4).unwrap().shape(), &[1, 4, 5, 5]);
    // backward: gradients onto the grad_output or the bias, or two gradients onto one file.
    let gx = dir.join("gx.npy");
    let gw = dir.join("gw.npy");
    let backward = |extra: &[&str]| {
        let mut args = vec![
            "backward",
            "--input",
            s(&x),
            "--weight",
            s(&w),
            "--bias",
            s(&b),
            "--grad-output",
            s(&gy),
        ];
        args.extend_from_slice(extra);
        cli(&args)
    };
    for (extra, needle) in [
        (
            vec!["--grad-input", s(&gy), "--grad-weight", s(&gw)],
            "is the same file as --grad-output",
        ),
        (
            vec![
                "--grad-input",
                s(&gx),
                "--grad-weight",
                s(&gw),
                "--grad-bias",
                s(&b),
            ],
            "is the same file as --bias",
        ),
        (
            vec!["--grad-input", s(&gx), "--grad-weight", s(&gx)],
            "--grad-input",
        ),
    ] {
        assert_error(&backward(&extra), needle);
        unchanged();
        assert!(!gx.exists() && !gw.exists(), "nothing written");
    }
    let out = backward(&["--grad-input", s(&gx), "--grad-weight", s(&gx)]);
    assert_error(&out, "are the same file");
}

#[test]
fn symlinks_fifos_and_devices_are_written_through_not_replaced() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let dir = workdir("special_outputs");
    let [x, w, _, _] = layer_files(&dir);
    let forward = |output: &Path| {
        cli(&[
            "forward",
            "--input",
            s(&x),
            "--weight",
            s(&w),
            "--output",
            s(output),
        ])
    };
    let want = Conv2d::from_weight_shape(Conv2dConfig::new(0, 0, 1), read_npy(&w).unwrap(), None)
        .unwrap()
        .forward_cpu(&read_npy(&x).unwrap())
        .unwrap();

    // A symlink to an existing file and a dangling one: the target is written, the link stays.
    let target = dir.join("target.npy");
    std::fs::write(&target, b"earlier").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
    let dangling_target = dir.join("new.npy");
    for (link, target) in [
        (dir.join("to_target.npy"), &target),
        (dir.join("dangling.npy"), &dangling_target),
    ] {
        std::os::unix::fs::symlink(target, &link).unwrap();
        let out = forward(&link);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(read_npy(target).unwrap().shape(), want.shape());
    }
    // The replaced file keeps its permissions.
    let mode = std::fs::metadata(&target).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640);

    // A FIFO is written in place: the reader gets the .npy bytes, the FIFO stays.
    let fifo = dir.join("out.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let out = forward(&fifo);
    assert!(out.status.success(), "{}", stderr(&out));
    let bytes = reader.join().unwrap();
    let copy = dir.join("from_fifo.npy");
    std::fs::write(&copy, bytes).unwrap();
    assert_eq!(read_npy(&copy).unwrap().shape(), want.shape());
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());

    // A device is written in place (as root, replacing /dev/null would be a disaster).
    let out = forward(Path::new("/dev/null"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );

    // A directory is refused.
    let out = forward(&dir);
    assert!(stderr(&out).contains("is a directory"), "{}", stderr(&out));

    // No temporary file is left behind by any of these runs.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name();
        assert!(
            !name.to_string_lossy().contains(".tmp-"),
            "{name:?} left behind"
        );
    }
}

#[test]
fn backend_auto_prints_one_line_either_way() {
    let dir = workdir("backend_auto");
    let [x, w, _, gy] = layer_files(&dir);
    let y = dir.join("y.npy");
    let out = cli(&[
        "forward",
        "--input",
        s(&x),
        "--weight",
        s(&w),
        "--backend",
        "auto",
        "--output",
        s(&y),
    ]);
    assert!(out.status.success());
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("running on"), "{}", stderr(&out));
    // On an error the error is the one line.
    let out = cli(&[
        "forward",
        "--input",
        s(&gy),
        "--weight",
        s(&w),
        "--backend",
        "auto",
        "--output",
        s(&dir.join("z.npy")),
    ]);
    assert!(!out.status.success());
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}

#[test]
fn absurd_sizes_are_errors_not_aborts() {
    let dir = workdir("absurd");
    let x = dir.join("x.npy");
    let w = dir.join("w.npy");
    write_npy(&x, &Tensor::zeros([1, 3, 8, 8]).unwrap()).unwrap();
    write_npy(&w, &Tensor::zeros([2, 3, 1, 1]).unwrap()).unwrap();
    let y = dir.join("y.npy");
    // The CPU reference would need ~1 TB for the padded copy and output.
    for padding in ["100000", "1000000"] {
        let out = cli(&[
            "forward",
            "--input",
            s(&x),
            "--weight",
            s(&w),
            "--padding",
            padding,
            "--backend",
            "cpu",
            "--output",
            s(&y),
        ]);
        assert_failed(&out, "bytes", &y);
        assert_eq!(out.status.code(), Some(1));
    }
    for (shape, out_channels, needle) in [
        ("1,1,100000,100000", "1", "input needs 40000000000 bytes"),
        ("4294967296,1,1,1", "1", "input needs 17179869184 bytes"),
        ("1,3,8,8", "18446744073709551615", "too large"),
        ("1,3,8,8", "4611686018427387904", "too large"),
        ("1,3,8,8", "100000000", "weight needs 1200000000 bytes"),
    ] {
        let out = cli(&[
            "bench",
            "--input-shape",
            shape,
            "--out-channels",
            out_channels,
            "--kernel-size",
            "1",
            "--min-time-ms",
            "1",
        ]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{shape} {out_channels}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(out.stdout.is_empty(), "no table header before the error");
        assert!(err.contains(needle), "{shape} {out_channels}: {err}");
    }
}

#[test]
fn autotuning_from_the_environment_saves_its_table() {
    let dir = workdir("autotune");
    let table = dir.join("tuning.tsv");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_wgpu-conv2d"))
            .args([
                "bench",
                "--input-shape",
                "1,8,20,20",
                "--out-channels",
                "8",
                "--kernel-size",
                "3",
                "--padding",
                "1",
                "--algorithm",
                "auto",
                "--json",
                "--min-time-ms",
                "1",
            ])
            .env("WGPU_CONV2D_AUTOTUNE", "1")
            .env("WGPU_CONV2D_TUNING_FILE", &table)
            .output()
            .unwrap()
    };
    let out = run();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&table).unwrap();
    let entries: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(entries.len(), 1, "{text}");
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    assert!(
        entries[0].ends_with(&format!("\t{}", line["algorithm"].as_str().unwrap())),
        "the table holds what ran: {text}"
    );
    // The second run reads it and measures nothing new.
    let out = run();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&table).unwrap(), text);
}

/// Half precision through the CLI: float16 files run in float16 and give a
/// float16 ('<f2') output, as PyTorch on those tensors; `--dtype` converts
/// float32 files (bf16 written as '<f4' holding bfloat16 values); files of
/// different dtypes are refused with PyTorch's words and no output; `bench
/// --dtype` names its dtype.
#[test]
fn half_files_and_dtype_conversion() {
    let dir = workdir("half");
    let [x, w, b, gy] = layer_files(&dir);
    let half = |path: &Path, name: &str| {
        let out = dir.join(name);
        write_npy(
            &out,
            &read_npy(path).unwrap().to_dtype(wgpu_conv2d::DType::F16),
        )
        .unwrap();
        out
    };
    let (x16, w16, b16, gy16) = (
        half(&x, "x16.npy"),
        half(&w, "w16.npy"),
        half(&b, "b16.npy"),
        half(&gy, "gy16.npy"),
    );
    let layer = |dtype: wgpu_conv2d::DType| {
        Conv2d::from_weights(
            Conv2dConfig::new(3, 2, 3),
            read_npy(&w).unwrap().to_dtype(dtype),
            Some(read_npy(&b).unwrap().to_dtype(dtype)),
        )
        .unwrap()
    };
    let y = dir.join("y.npy");
    for (files, dtype, extra) in [
        ([&x16, &w16, &b16], wgpu_conv2d::DType::F16, None),
        ([&x, &w, &b], wgpu_conv2d::DType::F16, Some("f16")),
        ([&x, &w, &b], wgpu_conv2d::DType::BF16, Some("bf16")),
    ] {
        for backend in ["gpu", "cpu"] {
            let _ = std::fs::remove_file(&y);
            let mut args = vec![
                "forward",
                "--input",
                s(files[0]),
                "--weight",
                s(files[1]),
                "--bias",
                s(files[2]),
                "--output",
                s(&y),
                "--backend",
                backend,
            ];
            if let Some(d) = extra {
                args.extend(["--dtype", d]);
            }
            let out = cli(&args);
            assert!(out.status.success(), "{dtype} {backend}: {}", stderr(&out));
            let bytes = std::fs::read(&y).unwrap();
            let descr = if dtype == wgpu_conv2d::DType::F16 {
                "'<f2'"
            } else {
                "'<f4'"
            };
            assert!(
                bytes.windows(5).any(|w| w == descr.as_bytes()),
                "{dtype} {backend}: written as {descr}"
            );
            let got = read_npy(&y).unwrap().to_dtype(dtype);
            let l = layer(dtype);
            let input = read_npy(&x).unwrap().to_dtype(dtype);
            let want = l.forward_cpu(&input).unwrap();
            assert_within_bound(
                &format!("{dtype} {backend}"),
                &got,
                &want,
                &magnitude(&l, &input),
                terms(&l),
            );
        }
    }
    // float16 input, float32 weight and bias: PyTorch's refusal, no output.
    let _ = std::fs::remove_file(&y);
    let out = cli(&[
        "forward",
        "--input",
        s(&x16),
        "--weight",
        s(&w),
        "--bias",
        s(&b),
        "--output",
        s(&y),
    ]);
    assert_failed(
        &out,
        "Input type (c10::Half) and bias type (float) should be the same",
        &y,
    );
    // The backward in float16, from float16 files.
    let (gx, gw, gb) = (dir.join("gx.npy"), dir.join("gw.npy"), dir.join("gb.npy"));
    let out = cli(&[
        "backward",
        "--input",
        s(&x16),
        "--weight",
        s(&w16),
        "--bias",
        s(&b16),
        "--grad-output",
        s(&gy16),
        "--grad-input",
        s(&gx),
        "--grad-weight",
        s(&gw),
        "--grad-bias",
        s(&gb),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let l = layer(wgpu_conv2d::DType::F16);
    let want = l
        .backward_cpu(&read_npy(&x16).unwrap(), &read_npy(&gy16).unwrap())
        .unwrap();
    let got = Conv2dGrads {
        grad_input: read_npy(&gx).unwrap(),
        grad_weight: read_npy(&gw).unwrap(),
        grad_bias: Some(read_npy(&gb).unwrap()),
    };
    common::assert_grads_within_bound(
        "float16 backward",
        &got,
        &want,
        &l,
        &read_npy(&x16).unwrap(),
        &read_npy(&gy16).unwrap(),
    );
    let out = cli(&[
        "bench",
        "--input-shape",
        "1,4,12,12",
        "--out-channels",
        "4",
        "--kernel-size",
        "3",
        "--algorithm",
        "direct",
        "--dtype",
        "bf16",
        "--json",
        "--min-time-ms",
        "1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    assert_eq!(line["dtype"], "bf16");
    let flops_bytes = (4 * 144 + 4 * 36 + 4 + 4 * 100) * 2;
    assert_eq!(line["bytes"].as_u64().unwrap(), flops_bytes as u64);
}
