//! Draws the benchmark suite's results as a bar chart (SVG): kernel GFLOP/s of
//! every algorithm on every layer, on a log scale.
//!
//! ```text
//! tools/bench_suite.sh docs/bench/lavapipe.jsonl
//! cargo run --release --example bench_chart -- docs/bench/lavapipe.jsonl docs/benchmarks.svg
//! ```

use plotters::prelude::*;
use serde_json::Value;

/// "8×64×56×56 3×3" (plus stride and groups where they are not 1).
fn layer_label(row: &Value) -> String {
    let dims = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|d| d.to_string())
            .collect()
    };
    let mut label = format!(
        "{} → {} {}",
        dims(&row["input_shape"]).join("×"),
        row["out_channels"],
        dims(&row["kernel_size"]).join("×")
    );
    if row["stride"][0] != 1 {
        label += &format!(" s{}", row["stride"][0]);
    }
    if row["groups"] != 1 {
        label += &format!(" g{}", row["groups"]);
    }
    label
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (input, output) = match &args[..] {
        [_, input, output] => (input, output),
        _ => return Err("usage: bench_chart RESULTS.jsonl CHART.svg".into()),
    };
    let rows: Vec<Value> = std::fs::read_to_string(input)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    // Forced algorithms only: Auto's rows repeat the kernel it picked, and
    // PyTorch's lines (no "requested") are not ours.
    let bars: Vec<(String, &str, f64)> = rows
        .iter()
        .filter(|r| r["requested"].is_string() && r["requested"] != "auto")
        .map(|r| {
            (
                layer_label(r),
                r["algorithm"].as_str().unwrap_or("?"),
                r["gflops"].as_f64().unwrap_or(0.0),
            )
        })
        .collect();
    let adapter = rows
        .first()
        .and_then(|r| r["adapter"].as_str())
        .unwrap_or("unknown adapter");
    let max = bars.iter().map(|b| b.2).fold(1e-3, f64::max) * 2.0;
    let min = bars
        .iter()
        .map(|b| b.2)
        .filter(|&g| g > 0.0)
        .fold(max, f64::min)
        / 2.0;

    let height = 60 + 18 * bars.len() as u32;
    let root = SVGBackend::new(output, (1000, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("wgpu-conv2d kernel GFLOP/s on {adapter}"),
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(330)
        .build_cartesian_2d((min..max).log_scale(), 0f64..bars.len() as f64)?;
    let labels: Vec<String> = bars
        .iter()
        .map(|(layer, algorithm, _)| format!("{layer} · {algorithm}"))
        .collect();
    let label_of = |y: &f64| {
        let i = (bars.len() as f64 - y - 0.5).round();
        if i >= 0.0 && (i as usize) < labels.len() && (y.fract() - 0.5).abs() < 1e-6 {
            labels[i as usize].clone()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(bars.len() * 2 + 1)
        .y_label_formatter(&label_of)
        .x_desc("GFLOP/s (kernel, log scale)")
        .label_style(("sans-serif", 12))
        .draw()?;
    let color = |algorithm: &str| match algorithm {
        "direct" => RGBColor(150, 150, 150),
        "implicit-gemm" => RGBColor(31, 119, 180),
        "gemm-1x1" => RGBColor(44, 160, 44),
        "depthwise" => RGBColor(255, 127, 14),
        "winograd" => RGBColor(148, 103, 189),
        _ => RGBColor(0, 0, 0),
    };
    chart.draw_series(bars.iter().enumerate().map(|(i, (_, algorithm, gflops))| {
        let top = bars.len() as f64 - i as f64;
        Rectangle::new(
            [(min, top - 0.85), (gflops.max(min), top - 0.15)],
            color(algorithm).filled(),
        )
    }))?;
    root.present()?;
    eprintln!("wrote {output} ({} bars)", bars.len());
    Ok(())
}
