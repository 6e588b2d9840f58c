//! The WGSL of one blocked variant: `shaders/conv2d_blocked.wgsl` with its
//! four marked lines (`//{constants}`, `//{declare}`, `//{accumulate}`,
//! `//{store}`) replaced by code unrolled for the variant, since neither naga
//! nor llvmpipe unrolls loops that index registers. Each generated block is
//! framed by `// generated: NAME` and `// end generated: NAME` comments, so a
//! maintainer reading a variant (the tests write some to
//! `target/generated-wgsl/`) sees at once what was filled in.

use std::fmt::Write;

use super::Variant;

/// The template: the shared prelude, then the kernel with its markers.
const TEMPLATE: &str = crate::gpu::conv::conv_source!("conv2d_blocked.wgsl");

/// The source of the variant whose key values are `values` (see [`Variant::key`]),
/// then 1 for the kernel that accumulates.
pub(crate) fn generate(values: &[u32]) -> String {
    source(Variant::from_key(values), values.get(6) == Some(&1))
}

/// The template with its marked lines generated for `variant`, storing onto
/// the bias or (`accumulate`) adding onto the stored output.
pub(crate) fn source(variant: Variant, accumulate: bool) -> String {
    let (block, vecs) = (variant.block, variant.vecs);
    // Weight units per tap: vec4s of four output channels, or one float.
    let (units, unit_type, lanes) = if block == 1 {
        (1, "f32", 1)
    } else {
        (block / 4, "vec4<f32>", 4)
    };
    let mut constants = String::new();
    let _ = writeln!(constants, "alias WeightUnit = {unit_type};");
    let _ = writeln!(constants, "const WEIGHT_UNITS: u32 = {units}u;");
    let _ = writeln!(constants, "const BLOCK: u32 = {block}u;");
    let _ = writeln!(constants, "const ACCUMULATE: bool = {accumulate};");
    let _ = writeln!(constants, "const OUTS: u32 = {}u;", variant.outs());
    let _ = writeln!(constants, "const KERNEL_W: u32 = {}u;", variant.kernel_w);
    let _ = writeln!(constants, "const STRIDE_W: u32 = {}u;", variant.stride_w);

    let mut declare = String::new();
    for k in 0..block {
        for v in 0..vecs {
            let _ = writeln!(declare, "    var a{k}_{v} = vec4<f32>(0.0);");
        }
    }

    // Per kernel row: the span as vec4s, each kernel column's inputs picked
    // from it, then per four output channels one vec4 of weights per column.
    let pad = "        ";
    let mut accumulate = String::new();
    for s in 0..variant.span_vecs() {
        let _ = writeln!(accumulate, "{pad}let s{s} = input[at + {s}u];");
    }
    for kx in 0..variant.kernel_w {
        for v in 0..vecs {
            let lanes: Vec<String> = (0..4)
                .map(|j| {
                    let x = (4 * v + j) * variant.stride_w + kx * variant.dilation_w;
                    format!("s{}[{}]", x / 4, x % 4)
                })
                .collect();
            let _ = writeln!(
                accumulate,
                "{pad}let x{kx}_{v} = vec4<f32>({});",
                lanes.join(", ")
            );
        }
    }
    for q in 0..units {
        for kx in 0..variant.kernel_w {
            let _ = writeln!(
                accumulate,
                "{pad}let w{kx}_{q} = weight[wt + {}u];",
                kx * units + q
            );
        }
        for j in 0..lanes {
            let k = lanes * q + j;
            let pick = if lanes == 1 {
                String::new()
            } else {
                format!("[{j}]")
            };
            for v in 0..vecs {
                let mut sum = format!("a{k}_{v}");
                for kx in 0..variant.kernel_w {
                    sum = format!("fma(vec4<f32>(w{kx}_{q}{pick}), x{kx}_{v}, {sum})");
                }
                let _ = writeln!(accumulate, "{pad}a{k}_{v} = {sum};");
            }
        }
    }

    let mut store = String::new();
    for k in 0..block {
        let _ = writeln!(store, "    if (o0 + {k}u >= o_lo && o0 + {k}u < o_hi) {{");
        for v in 0..vecs {
            for j in 0..4 {
                let q = 4 * v + j;
                let _ = writeln!(
                    store,
                    "        if ({q}u < count) {{ store_output(n, o0 + {k}u, i, j0 + {q}u, a{k}_{v}[{j}]); }}"
                );
            }
        }
        let _ = writeln!(store, "    }}");
    }

    let about = format!(
        "{block} output channels x {} outputs, kernel width {}, stride {}, dilation {}",
        variant.outs(),
        variant.kernel_w,
        variant.stride_w,
        variant.dilation_w
    );
    let framed = |name: &str, indent: &str, text: &str| {
        format!("{indent}// generated: {name} ({about})\n{text}{indent}// end generated: {name}\n")
    };
    TEMPLATE
        .replace("//{constants}\n", &framed("constants", "", &constants))
        .replace("//{declare}\n", &framed("declare", "    ", &declare))
        .replace("//{accumulate}\n", &framed("accumulate", pad, &accumulate))
        .replace("//{store}\n", &framed("store", "    ", &store))
}
