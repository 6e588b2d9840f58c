//! `wgpu-conv2d`: run PyTorch's Conv2d (forward and backward) on `.npy` files, on the GPU or the CPU reference.
//!
//! On any error the process exits non-zero, prints one line on stderr and
//! creates or changes no file: outputs that would overwrite an input or each
//! other are refused before any work, and outputs are written only when
//! everything succeeded (see `outputs.rs`).

mod outputs;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use outputs::check_outputs;
use wgpu_conv2d::bench::{
    BenchOptions, Measurement, Pass, check_sizes, measure, measure_backward, measure_ceilings,
    measure_step,
};
use wgpu_conv2d::npy::{read_npy, write_npy, write_npy_files};
use wgpu_conv2d::{
    Algorithm, BackwardAlgorithm, Conv2d, Conv2dConfig, Conv2dGeometry, DType, GpuContext,
    GpuConv2d, Padding, PaddingMode, PipelineCacheLoad, Precision, Size2, Tensor,
};

#[derive(Parser)]
#[command(
    name = "wgpu-conv2d",
    version,
    about = "PyTorch's Conv2d on any GPU through wgpu, with a CPU reference"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Y = conv2d(X, W, B) with nn.Conv2d's semantics; shapes come from the files.
    Forward(ForwardArgs),
    /// Gradients of sum(GY * conv2d(X, W, B)) with respect to X, W and B.
    Backward(BackwardArgs),
    /// Print the GPU adapter (name, backend, driver) and its relevant limits.
    Info,
    /// Time one convolution per algorithm: kernel, end-to-end and GFLOP/s.
    Bench(BenchArgs),
    /// Measure the adapter's two ceilings: fused multiply-adds in registers
    /// (GFLOP/s) and streaming a tensor through (GB/s read plus written).
    Ceilings(CeilingsArgs),
}

#[derive(clap::Args)]
struct CeilingsArgs {
    /// One JSON object instead of text
    #[arg(long)]
    json: bool,
    /// Keep repeating each measurement for at least this many milliseconds
    #[arg(long, default_value_t = 500)]
    min_time_ms: u64,
}

/// An algorithm of the pass benchmarked (`auto`, a kernel's name), or every
/// one that can run the configuration (`all`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum AlgorithmChoice {
    One(String),
    All,
}

impl std::str::FromStr for AlgorithmChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(if s == "all" {
            Self::All
        } else {
            Self::One(s.to_string())
        })
    }
}

/// One algorithm to time: forward, backward, or a training step's backward
/// (its forward on `Auto`).
#[derive(Clone, Copy, Debug)]
enum Timed {
    Forward(Algorithm),
    Backward(BackwardAlgorithm),
    Step(BackwardAlgorithm),
}

impl Timed {
    /// The algorithm `choice` names for `pass` (`None` for `all`), or why
    /// that is not one of the pass's algorithms.
    fn parse(choice: &AlgorithmChoice, pass: Pass) -> Result<Option<Self>, String> {
        let AlgorithmChoice::One(name) = choice else {
            return Ok(None);
        };
        let error = |e: wgpu_conv2d::Conv2dError| format!("{e} (or all)");
        Ok(Some(match pass {
            Pass::Forward => Timed::Forward(name.parse().map_err(error)?),
            Pass::Backward => Timed::Backward(name.parse().map_err(error)?),
            Pass::Step => Timed::Step(name.parse().map_err(error)?),
        }))
    }

    /// The algorithms `choice` names for `pass`: every one that can run
    /// `geometry` for `all`.
    fn list(
        choice: &AlgorithmChoice,
        pass: Pass,
        geometry: &Conv2dGeometry,
    ) -> Result<Vec<Self>, String> {
        if let Some(one) = Self::parse(choice, pass)? {
            return Ok(vec![one]);
        }
        Ok(match pass {
            Pass::Forward => std::iter::once(Algorithm::Auto)
                .chain(Algorithm::KERNELS)
                .filter(|a| a.check(geometry).is_ok())
                .map(Timed::Forward)
                .collect(),
            Pass::Backward | Pass::Step => BackwardAlgorithm::ALL
                .into_iter()
                .filter(|a| a.check(geometry).is_ok())
                .map(if pass == Pass::Step {
                    Timed::Step
                } else {
                    Timed::Backward
                })
                .collect(),
        })
    }

    fn is_auto(self) -> bool {
        matches!(
            self,
            Timed::Forward(Algorithm::Auto)
                | Timed::Backward(BackwardAlgorithm::Auto)
                | Timed::Step(BackwardAlgorithm::Auto)
        )
    }
}

#[derive(Args)]
struct BenchArgs {
    /// Input shape: `N,C,H,W` (or `C,H,W`).
    #[arg(long, value_delimiter = ',', required = true)]
    input_shape: Vec<usize>,
    /// Output channels.
    #[arg(long)]
    out_channels: usize,
    /// Kernel size: `3` or `3,1` (height, width).
    #[arg(long)]
    kernel_size: Size2,
    #[command(flatten)]
    conv: ConvArgs,
    /// Leave out the bias (nn.Conv2d's bias=False).
    #[arg(long)]
    no_bias: bool,
    /// forward: auto, direct, implicit-gemm, gemm-1x1, depthwise, blocked, winograd
    /// or blocked-bf16;
    /// backward and step: auto, direct, blocked or implicit-gemm (a step's backward; its
    /// forward runs on auto); or all (every one that can run it).
    #[arg(long, default_value = "all")]
    algorithm: AlgorithmChoice,
    /// The pass to time: forward; backward (input, weight and bias
    /// gradients); or step (forward, backward, and an SGD update with
    /// momentum 0.9 of the weight and bias).
    #[arg(long, default_value = "forward")]
    pass: Pass,
    /// The accuracy `auto` keeps: highest (every output within the fp32
    /// bound of a direct sum), high (Winograd allowed where faster, under
    /// its documented bound) or medium (also bfloat16 operands with f32
    /// sums, PyTorch's medium).
    #[arg(long, default_value = "highest")]
    precision: Precision,
    /// The dtype of the layer and its tensors: f32, f16 or bf16.
    #[arg(long, default_value = "f32")]
    dtype: DType,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Keep repeating each measurement for at least this many milliseconds.
    #[arg(long, default_value_t = 500)]
    min_time_ms: u64,
}

/// The layer's hyper-parameters, as nn.Conv2d takes them.
#[derive(Args, Debug, Clone)]
struct ConvArgs {
    /// Stride: `2` or `2,1` (height, width).
    #[arg(long, default_value = "1")]
    stride: Size2,
    /// Padding: `1`, `1,2` (height, width), `same` or `valid`.
    #[arg(long, default_value = "0", allow_hyphen_values = true)]
    padding: String,
    /// Dilation: `2` or `2,1` (height, width).
    #[arg(long, default_value = "1")]
    dilation: Size2,
    /// Channel groups.
    #[arg(long, default_value_t = 1)]
    groups: usize,
    /// zeros, reflect, replicate or circular.
    #[arg(long, default_value = "zeros")]
    padding_mode: String,
}

impl ConvArgs {
    /// The configuration without the sizes that come from the weight file.
    fn params(&self) -> Result<Conv2dConfig, String> {
        let padding: Padding = self.padding.parse().map_err(|e| format!("{e}"))?;
        let mode: PaddingMode = self.padding_mode.parse().map_err(|e| format!("{e}"))?;
        Ok(Conv2dConfig::new(0, 0, 1)
            .with_stride(self.stride)
            .with_padding(padding)
            .with_dilation(self.dilation)
            .with_groups(self.groups)
            .with_padding_mode(mode))
    }
}

/// The layer and its input: files, hyper-parameters and where to run.
#[derive(Args)]
struct LayerArgs {
    /// Input, float32 .npy of shape (N, C, H, W) or (C, H, W).
    #[arg(long)]
    input: PathBuf,
    /// Weight, float32 .npy of shape (C_out, C_in / groups, kH, kW).
    #[arg(long)]
    weight: PathBuf,
    /// Optional bias, float32 .npy of shape (C_out,).
    #[arg(long)]
    bias: Option<PathBuf>,
    #[command(flatten)]
    conv: ConvArgs,
    /// Where to run.
    #[arg(long, value_enum, default_value_t = Backend::Gpu)]
    backend: Backend,
    /// Run in this dtype (f32, f16 or bf16): every tensor read is converted
    /// to it, as PyTorch's `.to(dtype)`. Without it, the files' own dtypes
    /// (float32 '<f4' or float16 '<f2'), which must agree.
    #[arg(long)]
    dtype: Option<DType>,
}

#[derive(Args)]
struct ForwardArgs {
    #[command(flatten)]
    layer: LayerArgs,
    /// Output .npy file.
    #[arg(long)]
    output: PathBuf,
    /// GPU kernel: auto, direct, implicit-gemm, gemm-1x1, depthwise, blocked, winograd
    /// or blocked-bf16.
    #[arg(long, default_value = "auto")]
    algorithm: Algorithm,
    /// The accuracy `auto` keeps: highest (every output within the fp32
    /// bound of a direct sum), high (Winograd allowed where faster, under
    /// its documented bound) or medium (also bfloat16 operands with f32
    /// sums, PyTorch's medium).
    #[arg(long, default_value = "highest")]
    precision: Precision,
}

#[derive(Args)]
struct BackwardArgs {
    #[command(flatten)]
    layer: LayerArgs,
    /// Gradient of the output, float32 .npy of the output's shape.
    #[arg(long)]
    grad_output: PathBuf,
    /// Where to write the input gradient.
    #[arg(long)]
    grad_input: PathBuf,
    /// Where to write the weight gradient.
    #[arg(long)]
    grad_weight: PathBuf,
    /// Where to write the bias gradient (needs --bias).
    #[arg(long)]
    grad_bias: Option<PathBuf>,
    /// GPU gradient kernels: auto, direct, blocked or implicit-gemm.
    #[arg(long, default_value = "auto")]
    algorithm: BackwardAlgorithm,
    /// The accuracy `auto` keeps for the input gradient's convolutions:
    /// highest, or high (Winograd allowed where faster); medium keeps high's
    /// rules there.
    #[arg(long, default_value = "highest")]
    precision: Precision,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// The GPU (an error if there is no adapter).
    Gpu,
    /// The CPU reference.
    Cpu,
    /// The GPU when there is an adapter, else the CPU reference (says which on stderr).
    Auto,
}

fn main() -> ExitCode {
    quiet_headless_vulkan();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // Clap's message runs until the blank line before the usage text.
            let rendered = e.to_string();
            let message: Vec<&str> = rendered
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .collect();
            let message = one_line(&message.join(" "));
            eprintln!(
                "wgpu-conv2d: {} (see --help)",
                message.trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    // The bench's algorithm names depend on its pass: checked here, so that a
    // wrong one is a usage error like any other.
    if let Command::Bench(args) = &cli.command
        && let Err(message) = Timed::parse(&args.algorithm, args.pass)
    {
        eprintln!(
            "wgpu-conv2d: invalid value for '--algorithm <ALGORITHM>': {} (see --help)",
            one_line(&message)
        );
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Forward(args) => forward(&args),
        Command::Backward(args) => backward(&args),
        Command::Info => info(),
        Command::Bench(args) => bench(&args),
        Command::Ceilings(args) => ceilings(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("wgpu-conv2d: error: {}", one_line(&message));
            ExitCode::FAILURE
        }
    }
}

/// On a headless machine (no `XDG_RUNTIME_DIR`) Mesa's device-select Vulkan
/// layer prints a Wayland error on stderr at every start, which would break the
/// promise of one stderr line per error. wgpu chooses the adapter itself, so the
/// layer is not needed; a value the user set is left alone.
fn quiet_headless_vulkan() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none()
        && std::env::var_os("NODEVICE_SELECT").is_none()
    {
        // SAFETY: called first thing in main, before any other thread exists.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A tensor of `path`, converted to `dtype` when one is given.
fn read_as(path: &Path, dtype: Option<DType>) -> Result<Tensor, String> {
    let tensor = read_npy(path).map_err(|e| e.to_string())?;
    Ok(match dtype {
        Some(d) => tensor.to_dtype(d),
        None => tensor,
    })
}

/// The layer (configured from the weight's shape) and the input.
fn load(args: &LayerArgs) -> Result<(Conv2d, Tensor), String> {
    let params = args.conv.params()?;
    let input = read_as(&args.input, args.dtype)?;
    let weight = read_as(&args.weight, args.dtype)?;
    let bias = args
        .bias
        .as_ref()
        .map(|b| read_as(b, args.dtype))
        .transpose()?;
    let layer = Conv2d::from_weight_shape(params, weight, bias).map_err(|e| e.to_string())?;
    Ok((layer, input))
}

/// The inputs a layer reads, with their flags.
fn layer_inputs(args: &LayerArgs) -> Vec<(&'static str, &Path)> {
    let mut inputs = vec![
        ("--input", args.input.as_path()),
        ("--weight", args.weight.as_path()),
    ];
    if let Some(bias) = &args.bias {
        inputs.push(("--bias", bias.as_path()));
    }
    inputs
}

/// Where a layer runs: the GPU for `gpu`, none (the CPU reference) for `cpu`;
/// `auto` takes the GPU when there is one.
struct Placement {
    ctx: Option<GpuContext>,
    /// For `auto`: which it chose, said on stderr once the run succeeded (an
    /// error is the one line a failing run prints).
    note: Option<String>,
}

fn placement(backend: Backend) -> Result<Placement, String> {
    Ok(match backend {
        Backend::Cpu => Placement {
            ctx: None,
            note: None,
        },
        Backend::Gpu => Placement {
            ctx: Some(one_call_gpu().map_err(|e| e.to_string())?),
            note: None,
        },
        Backend::Auto => match one_call_gpu() {
            Ok(ctx) => Placement {
                note: Some(format!("running on the GPU: {}", ctx.describe())),
                ctx: Some(ctx),
            },
            Err(e) => Placement {
                ctx: None,
                note: Some(format!(
                    "no GPU ({}); running on the CPU reference",
                    one_line(&e.to_string())
                )),
            },
        },
    })
}

impl Placement {
    /// Saves the tuning table (when asked for) and says which backend ran.
    fn done(&self) -> Result<(), String> {
        if let Some(ctx) = &self.ctx {
            finish_gpu(ctx)?;
        }
        if let Some(note) = &self.note {
            eprintln!("wgpu-conv2d: {note}");
        }
        Ok(())
    }
}

/// Turns on `Auto`'s autotuning (`GpuContext::with_autotune`) when set to
/// anything but `0`.
const AUTOTUNE_VAR: &str = "WGPU_CONV2D_AUTOTUNE";

/// Keeps kernels from sharing loads across subgroups
/// (`GpuContext::with_subgroups(false)`) when set to `0`.
const SUBGROUPS_VAR: &str = "WGPU_CONV2D_SUBGROUPS";

/// A tuning table to load at start and save after a successful run; the
/// pipeline cache is kept beside it (the same path with `.pipelines` added).
const TUNING_FILE_VAR: &str = "WGPU_CONV2D_TUNING_FILE";

/// The pipeline cache's file beside the tuning table at `table`.
fn pipelines_path(table: &std::ffi::OsStr) -> PathBuf {
    let mut path = table.to_os_string();
    path.push(".pipelines");
    PathBuf::from(path)
}

/// The GPU context, with autotuning, its table and the pipeline cache as the
/// environment asks.
fn open_gpu() -> wgpu_conv2d::Result<GpuContext> {
    let ctx = GpuContext::new()?;
    let autotune = std::env::var(AUTOTUNE_VAR).is_ok_and(|v| !v.is_empty() && v != "0");
    if let Some(path) = std::env::var_os(TUNING_FILE_VAR) {
        ctx.load_tuning(&path)?;
        let pipelines = pipelines_path(&path);
        // Checked (digest, adapter, driver, wgpu release) before wgpu sees it;
        // refused data only costs the compile it would have saved.
        if let PipelineCacheLoad::Refused(reason) = ctx.load_pipeline_cache(&pipelines)? {
            eprintln!(
                "wgpu-conv2d: not using the pipeline cache {}: {}",
                pipelines.display(),
                one_line(&reason)
            );
        }
    }
    let subgroups = std::env::var(SUBGROUPS_VAR).map_or(true, |v| v != "0");
    Ok(ctx.with_autotune(autotune).with_subgroups(subgroups))
}

/// [`open_gpu`] for a command that makes one call: without kernels built
/// ahead, as the quicker kernel of a first call would run once and the
/// process then wait for the build on exit; the fast kernel running in this
/// process fills the driver's cache for the next one instead.
fn one_call_gpu() -> wgpu_conv2d::Result<GpuContext> {
    Ok(open_gpu()?.with_builds_ahead(false))
}

/// Reports the candidates autotuning discarded this run (on stderr), and
/// saves the tuning table and the pipeline cache where the environment
/// names them.
fn finish_gpu(ctx: &GpuContext) -> Result<(), String> {
    if ctx.autotunes() {
        for record in ctx.tuning_records() {
            for (name, measured) in &record.candidates {
                if let Err(reason) = measured {
                    eprintln!(
                        "wgpu-conv2d: autotune discarded {name} for {}: {}",
                        record.key,
                        one_line(reason)
                    );
                }
            }
        }
    }
    let Some(path) = std::env::var_os(TUNING_FILE_VAR) else {
        return Ok(());
    };
    if ctx.autotunes() {
        ctx.save_tuning(&path).map_err(|e| e.to_string())?;
    }
    ctx.save_pipeline_cache(pipelines_path(&path))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn forward(args: &ForwardArgs) -> Result<(), String> {
    check_outputs(&[("--output", &args.output)], &layer_inputs(&args.layer))?;
    let (layer, input) = load(&args.layer)?;
    let placement = placement(args.layer.backend)?;
    let output = match &placement.ctx {
        Some(ctx) => GpuConv2d::new(ctx, &layer).and_then(|gpu| {
            gpu.with_algorithm(args.algorithm)
                .with_precision(args.precision)
                .forward(&input)
        }),
        None => layer.forward_cpu(&input),
    }
    .map_err(|e| e.to_string())?;
    write_npy(&args.output, &output).map_err(|e| e.to_string())?;
    placement.done()
}

fn backward(args: &BackwardArgs) -> Result<(), String> {
    if args.grad_bias.is_some() && args.layer.bias.is_none() {
        return Err("--grad-bias needs a layer with a bias: pass --bias".into());
    }
    let mut outputs = vec![
        ("--grad-input", args.grad_input.as_path()),
        ("--grad-weight", args.grad_weight.as_path()),
    ];
    if let Some(path) = &args.grad_bias {
        outputs.push(("--grad-bias", path.as_path()));
    }
    let mut inputs = layer_inputs(&args.layer);
    inputs.push(("--grad-output", args.grad_output.as_path()));
    check_outputs(&outputs, &inputs)?;
    let (layer, input) = load(&args.layer)?;
    let grad_output = read_as(&args.grad_output, args.layer.dtype)?;
    let placement = placement(args.layer.backend)?;
    let grads = match &placement.ctx {
        Some(ctx) => GpuConv2d::new(ctx, &layer).and_then(|gpu| {
            gpu.with_backward_algorithm(args.algorithm)
                .with_precision(args.precision)
                .backward(&input, &grad_output)
        }),
        None => layer.backward_cpu(&input, &grad_output),
    }
    .map_err(|e| e.to_string())?;
    let mut files = vec![
        (args.grad_input.as_path(), &grads.grad_input),
        (args.grad_weight.as_path(), &grads.grad_weight),
    ];
    if let (Some(path), Some(grad)) = (&args.grad_bias, &grads.grad_bias) {
        files.push((path.as_path(), grad));
    }
    write_npy_files(&files).map_err(|e| e.to_string())?;
    placement.done()
}

fn bench(args: &BenchArgs) -> Result<(), String> {
    let shape = &args.input_shape;
    if !(3..=4).contains(&shape.len()) {
        return Err(format!(
            "--input-shape takes N,C,H,W or C,H,W, got {} numbers",
            shape.len()
        ));
    }
    let in_channels = shape[shape.len() - 3];
    let params = args.conv.params()?;
    let config = Conv2dConfig {
        in_channels,
        out_channels: args.out_channels,
        kernel_size: args.kernel_size,
        bias: !args.no_bias,
        ..params
    };
    let geometry = Conv2dGeometry::new(&config, shape).map_err(|e| e.to_string())?;
    let ctx = open_gpu()
        .map_err(|e| e.to_string())?
        .with_precision(args.precision);
    // Refused before the table's header is printed: an error is the only output.
    check_sizes(&ctx, &config, shape).map_err(|e| e.to_string())?;
    let algorithms = Timed::list(&args.algorithm, args.pass, &geometry)?;
    let options = BenchOptions {
        min_time: std::time::Duration::from_millis(args.min_time_ms),
        dtype: args.dtype,
        ..BenchOptions::default()
    };
    if !args.json {
        println!("adapter: {}", ctx.describe());
        println!(
            "conv: input {shape:?}, {config:?}, {:.3} GFLOP per forward; timing the {} pass in {} at precision {}",
            geometry.flops() as f64 / 1e9,
            args.pass.name(),
            args.dtype,
            args.precision
        );
        println!(
            "{:<26} {:>12} {:>16} {:>14} {:>16}",
            "algorithm", "kernel ms", "end-to-end ms", "GFLOP/s", "timing"
        );
    }
    for algorithm in algorithms {
        let m = match algorithm {
            Timed::Forward(a) => measure(&ctx, config, shape, a, &options),
            Timed::Backward(a) => measure_backward(&ctx, config, shape, a, &options),
            Timed::Step(a) => measure_step(&ctx, config, shape, (Algorithm::Auto, a), &options),
        }
        .map_err(|e| e.to_string())?;
        if args.json {
            println!("{}", json_line(&m, &ctx, &config, shape));
        } else {
            let name = if algorithm.is_auto() {
                format!("auto ({})", m.algorithm)
            } else {
                m.algorithm.clone()
            };
            println!(
                "{name:<26} {:>12.3} {:>16.3} {:>14.2} {:>16}",
                m.kernel_ms,
                m.end_to_end_ms,
                m.gflops,
                m.kernel_timing.name()
            );
        }
    }
    finish_gpu(&ctx)
}

fn ceilings(args: &CeilingsArgs) -> Result<(), String> {
    let ctx = open_gpu().map_err(|e| e.to_string())?;
    let options = BenchOptions {
        min_time: std::time::Duration::from_millis(args.min_time_ms),
        ..BenchOptions::default()
    };
    let c = measure_ceilings(&ctx, &options).map_err(|e| e.to_string())?;
    if args.json {
        let line = serde_json::json!({
            "pass": "ceilings",
            "fma_gflops": c.fma_gflops,
            "stream_gbps": c.stream_gbps,
            "adapter": ctx.adapter_info().name,
            "backend": format!("{:?}", ctx.adapter_info().backend),
        });
        println!("{line}");
    } else {
        println!("adapter: {}", ctx.describe());
        println!("FMA in registers: {:.1} GFLOP/s", c.fma_gflops);
        println!(
            "streaming:        {:.2} GB/s (read plus written)",
            c.stream_gbps
        );
    }
    finish_gpu(&ctx)
}

/// One JSON object: the configuration, the adapter and the figures, with
/// keys `algorithm`, `kernel_ms`, `end_to_end_ms` and `gflops` among them.
fn json_line(m: &Measurement, ctx: &GpuContext, config: &Conv2dConfig, shape: &[usize]) -> String {
    serde_json::json!({
        "pass": m.pass.name(),
        "algorithm": m.algorithm,
        "requested": m.requested,
        "precision": m.precision.name(),
        "dtype": m.dtype.short_name(),
        "kernel_ms": m.kernel_ms,
        "end_to_end_ms": m.end_to_end_ms,
        "gflops": m.gflops,
        "kernel_timing": m.kernel_timing.name(),
        "flops": m.flops,
        "bytes": m.bytes,
        "runs": m.runs,
        "first_call_ms": m.first_call_ms,
        "building_call_ms": m.built_ahead.map(|b| b.building_call_ms),
        "built_ahead_ms": m.built_ahead.map(|b| b.built_ms),
        "takeover_call_ms": m.built_ahead.map(|b| b.takeover_call_ms),
        "adapter": ctx.adapter_info().name,
        "backend": format!("{:?}", ctx.adapter_info().backend),
        "subgroup_width": ctx.subgroup_width(),
        "input_shape": shape,
        "out_channels": config.out_channels,
        "kernel_size": [config.kernel_size.h, config.kernel_size.w],
        "stride": [config.stride.h, config.stride.w],
        "padding": config.padding.to_string(),
        "dilation": [config.dilation.h, config.dilation.w],
        "groups": config.groups,
        "padding_mode": config.padding_mode.to_string(),
    })
    .to_string()
}

fn info() -> Result<(), String> {
    let ctx = GpuContext::new().map_err(|e| e.to_string())?;
    let i = ctx.adapter_info();
    let l = ctx.limits();
    println!("adapter:     {}", i.name);
    println!("backend:     {:?}", i.backend);
    println!("device type: {:?}", i.device_type);
    println!("driver:      {} {}", i.driver, i.driver_info);
    println!("vendor/device id: {:#06x}/{:#06x}", i.vendor, i.device);
    println!("limits:");
    println!(
        "  max_buffer_size:                      {}",
        l.max_buffer_size
    );
    println!(
        "  max_storage_buffer_binding_size:      {}",
        l.max_storage_buffer_binding_size
    );
    println!(
        "  max_uniform_buffer_binding_size:      {}",
        l.max_uniform_buffer_binding_size
    );
    println!(
        "  max_storage_buffers_per_shader_stage: {}",
        l.max_storage_buffers_per_shader_stage
    );
    println!(
        "  max_compute_workgroups_per_dimension: {}",
        l.max_compute_workgroups_per_dimension
    );
    println!(
        "  max_compute_invocations_per_workgroup: {}",
        l.max_compute_invocations_per_workgroup
    );
    println!(
        "  max_compute_workgroup_size (x, y, z): ({}, {}, {})",
        l.max_compute_workgroup_size_x,
        l.max_compute_workgroup_size_y,
        l.max_compute_workgroup_size_z
    );
    println!(
        "  max_compute_workgroup_storage_size:   {}",
        l.max_compute_workgroup_storage_size
    );
    let timestamps = ctx
        .adapter()
        .features()
        .contains(wgpu::Features::TIMESTAMP_QUERY);
    println!(
        "timestamp queries: {}",
        if timestamps { "yes" } else { "no" }
    );
    match ctx.subgroup_width() {
        Some(width) => println!("subgroups: {width} lanes, consecutive (kernels may share loads)"),
        None => println!("subgroups: not relied on"),
    }
    Ok(())
}
