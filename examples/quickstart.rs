//! The main job: every worked example of the seed documents on the GPU, printed
//! as the seeds show them, each checked against PyTorch's output and the CPU
//! reference.
//!
//!     cargo run --release --example quickstart

use std::process::ExitCode;

use serde_json::Value;
use wgpu_conv2d::{
    Conv2d, Conv2dConfig, GpuContext, GpuConv2d, Padding, PaddingMode, Size2, Tensor,
};

const SEEDS: &str = include_str!("../tests/data/seed_examples.json");

#[allow(dead_code)] // The tests include this file for `compare` alone.
fn main() -> ExitCode {
    let ctx = match GpuContext::new() {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("quickstart: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("GPU adapter: {}\n", ctx.describe());

    let seeds: Value = serde_json::from_str(SEEDS).expect("embedded seed file is valid JSON");
    let cases = seeds["cases"].as_array().expect("cases");
    let mut matched = 0;
    for (i, case) in cases.iter().enumerate() {
        match run_case(&ctx, case) {
            Ok(true) => matched += 1,
            Ok(false) => {}
            Err(e) => println!("  ✗ error: {e}"),
        }
        if i + 1 < cases.len() {
            println!();
        }
    }
    println!(
        "\n{matched}/{} seed examples match PyTorch on the GPU and the CPU reference.",
        cases.len()
    );
    if matched == cases.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs one seed example; `Ok(true)` when GPU, CPU and PyTorch agree.
fn run_case(ctx: &GpuContext, case: &Value) -> Result<bool, wgpu_conv2d::Conv2dError> {
    let name = case["name"].as_str().unwrap_or("?");
    let source = case["source"].as_str().unwrap_or("?");
    let config = config(&case["params"]);
    let weight = Tensor::new(shape(&case["weight_shape"]), floats(&case["weight"]))?;
    let bias = (!case["bias"].is_null())
        .then(|| Tensor::new([config.out_channels], floats(&case["bias"])))
        .transpose()?;
    let layer = Conv2d::from_weights(config, weight, bias)?;
    let input = Tensor::new(shape(&case["input_shape"]), floats(&case["input"]))?;
    let expected = Tensor::new(shape(&case["output_shape"]), floats(&case["output"]))?;

    println!("== {name}  ({source})");
    println!("{}", describe(&config));
    println!("input {:?}:\n{}", input.shape(), format_tensor(&input));
    println!(
        "weight {:?}:\n{}",
        layer.weight().shape(),
        format_tensor(layer.weight())
    );
    if let Some(b) = layer.bias() {
        println!("bias: {:?}", b.data());
    }

    let gpu = GpuConv2d::new(ctx, &layer)?.forward(&input)?;
    let cpu = layer.forward_cpu(&input)?;
    println!("output {:?} (GPU):\n{}", gpu.shape(), format_tensor(&gpu));

    // Σ|w·x| + |b| per output: the same layer on absolute values.
    let abs = |t: &Tensor| Tensor::new(t.shape(), t.data().iter().map(|v| v.abs()).collect());
    let magnitude = Conv2d::from_weights(
        config,
        abs(layer.weight())?,
        layer.bias().map(abs).transpose()?,
    )?
    .forward_cpu(&abs(&input)?)?;
    let terms = config.fan_in() + usize::from(config.bias);
    let vs_torch = compare(&gpu, &expected, &magnitude, terms);
    let vs_cpu = compare(&gpu, &cpu, &magnitude, terms);
    let ok = vs_torch.agrees && vs_cpu.agrees;
    let mark = if ok { "✓" } else { "✗" };
    println!(
        "{mark} GPU {} PyTorch ({vs_torch}) and {} the CPU reference ({vs_cpu})",
        if vs_torch.agrees {
            "matches"
        } else {
            "differs from"
        },
        if vs_cpu.agrees {
            "matches"
        } else {
            "differs from"
        },
    );
    Ok(ok)
}

/// How a result compares with the truth.
pub struct Comparison {
    /// Every element within the fp32 bound, NaN only where the truth has NaN.
    pub agrees: bool,
    /// The largest `|got − want|` over finite pairs.
    pub max_diff: f32,
    /// Elements that are NaN where the truth is not (or the reverse).
    pub nan_mismatches: usize,
}

impl std::fmt::Display for Comparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "max |diff| {:.2e}", self.max_diff)?;
        if self.nan_mismatches > 0 {
            write!(f, ", {} NaN where the truth has none", self.nan_mismatches)?;
        }
        Ok(())
    }
}

/// `got` against `want` element by element under the fp32 dot-product bound
/// `(terms + 2)·2⁻²³·Σ|w·x|`. A NaN anywhere is a mismatch unless `want` has
/// NaN at the same place; infinities must match exactly; a shape mismatch
/// never agrees.
pub fn compare(got: &Tensor, want: &Tensor, magnitude: &Tensor, terms: usize) -> Comparison {
    let mut result = Comparison {
        agrees: got.shape() == want.shape(),
        max_diff: 0.0,
        nan_mismatches: 0,
    };
    if !result.agrees {
        result.max_diff = f32::INFINITY;
        return result;
    }
    for ((&g, &w), &m) in got.data().iter().zip(want.data()).zip(magnitude.data()) {
        if g.is_nan() || w.is_nan() {
            if g.is_nan() != w.is_nan() {
                result.nan_mismatches += 1;
                result.agrees = false;
            }
            continue;
        }
        if !w.is_finite() || !g.is_finite() {
            result.agrees &= g == w;
            continue;
        }
        let diff = (g - w).abs();
        result.max_diff = result.max_diff.max(diff);
        let bound = (terms as f32 + 2.0) * f32::EPSILON * m;
        result.agrees &= diff <= bound;
    }
    result
}

/// `nn.Conv2d(...)` as PyTorch prints it.
fn describe(c: &Conv2dConfig) -> String {
    let pair = |s: Size2| format!("({}, {})", s.h, s.w);
    let mut text = format!(
        "nn.Conv2d({}, {}, kernel_size={}, stride={}",
        c.in_channels,
        c.out_channels,
        pair(c.kernel_size),
        pair(c.stride)
    );
    match c.padding {
        Padding::Valid => text.push_str(", padding='valid'"),
        Padding::Same => text.push_str(", padding='same'"),
        Padding::Explicit { h, w } => text.push_str(&format!(", padding=({h}, {w})")),
    }
    if c.dilation != Size2::square(1) {
        text.push_str(&format!(", dilation={}", pair(c.dilation)));
    }
    if c.groups != 1 {
        text.push_str(&format!(", groups={}", c.groups));
    }
    if !c.bias {
        text.push_str(", bias=False");
    }
    if c.padding_mode != PaddingMode::Zeros {
        text.push_str(&format!(", padding_mode='{}'", c.padding_mode));
    }
    text + ")"
}

/// Each (n, c) plane as rows of numbers, labelled when there are several.
fn format_tensor(t: &Tensor) -> String {
    let shape = t.shape();
    let (h, w) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    let planes = t.numel() / (h * w).max(1);
    let lead = &shape[..shape.len() - 2];
    let mut out = String::new();
    for (p, plane) in t
        .data()
        .chunks(w.max(1) * h.max(1))
        .enumerate()
        .take(planes)
    {
        if planes > 1 {
            let mut idx = Vec::new();
            let mut rest = p;
            for &d in lead.iter().rev() {
                idx.push(rest % d);
                rest /= d;
            }
            idx.reverse();
            out.push_str(&format!(
                "  [{}]\n",
                idx.iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for row in plane.chunks(w.max(1)) {
            let cells: Vec<String> = row.iter().map(|v| format!("{v:8.3}")).collect();
            out.push_str(&format!("    {}\n", cells.join(" ")));
        }
    }
    out.trim_end().to_string()
}

fn size2(v: &Value) -> Size2 {
    match v {
        Value::Array(a) => Size2::new(
            a[0].as_u64().unwrap_or(1) as usize,
            a[1].as_u64().unwrap_or(1) as usize,
        ),
        n => Size2::square(n.as_u64().unwrap_or(1) as usize),
    }
}

fn config(p: &Value) -> Conv2dConfig {
    let padding = match &p["padding"] {
        Value::String(s) => s.parse().unwrap_or_default(),
        Value::Array(a) => Padding::from((a[0].as_i64().unwrap_or(0), a[1].as_i64().unwrap_or(0))),
        n => Padding::uniform(n.as_i64().unwrap_or(0)),
    };
    Conv2dConfig::new(
        p["in_channels"].as_u64().unwrap_or(0) as usize,
        p["out_channels"].as_u64().unwrap_or(0) as usize,
        size2(&p["kernel_size"]),
    )
    .with_stride(size2(&p["stride"]))
    .with_padding(padding)
    .with_dilation(size2(&p["dilation"]))
    .with_groups(p["groups"].as_u64().unwrap_or(1) as usize)
    .with_bias(p["bias"].as_bool().unwrap_or(false))
    .with_padding_mode(
        p["padding_mode"]
            .as_str()
            .unwrap_or("zeros")
            .parse()
            .unwrap_or_default(),
    )
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_f64)
                .map(|x| x as f32)
                .collect()
        })
        .unwrap_or_default()
}

fn shape(v: &Value) -> Vec<usize> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_u64)
                .map(|x| x as usize)
                .collect()
        })
        .unwrap_or_default()
}
