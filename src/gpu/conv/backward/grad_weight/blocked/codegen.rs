//! The WGSL of one blocked weight-gradient variant:
//! `shaders/conv2d_grad_weight_blocked.wgsl` with its marked lines (`//{...}`)
//! replaced by code unrolled for the variant, each generated block framed by
//! `// generated: NAME` and `// end generated: NAME` comments.

use std::fmt::Write;

use super::WeightVariant;

/// The template: the shared prelude, then the kernel with its markers.
const TEMPLATE: &str = crate::gpu::conv::conv_source!("conv2d_grad_weight_blocked.wgsl");

/// The source of the variant whose key values are `values`.
pub(crate) fn generate(values: &[u32]) -> String {
    source(WeightVariant::from_key(values))
}

/// The template with its marked lines generated for `variant`.
pub(crate) fn source(v: WeightVariant) -> String {
    let (ob, rb, kw) = (v.ob, v.rb, v.kernel_w);
    let mut constants = String::new();
    let _ = writeln!(constants, "const OB: u32 = {ob}u;");
    let _ = writeln!(constants, "const RB: u32 = {rb}u;");
    let _ = writeln!(constants, "const KERNEL_W: u32 = {kw}u;");
    let _ = writeln!(constants, "const STRIDE_W: u32 = {}u;", v.stride_w);

    let mut declare = String::new();
    for k in 0..ob {
        let _ = writeln!(
            declare,
            "    let off{k} = (min(max(o0 + {k}u, o_lo), o_hi - 1u) - d.out_c_begin) * plane_quads;"
        );
    }
    // Kernel row r of the block reads input row a0 + r (the kernel's last
    // row past its end: those sums are never stored).
    for r in 0..rb {
        let _ = writeln!(
            declare,
            "    let row{r} = (min(a0 + {r}u, p.kernel_h - 1u) * p.dilation_h * d.row_len) / 4u;"
        );
    }
    for k in 0..ob {
        for r in 0..rb {
            for e in 0..kw {
                let _ = writeln!(declare, "    var acc{k}_{r}_{e} = vec4<f32>(0.0);");
            }
        }
    }

    // Per quad and kernel row: the input row's span as vec4s and each tap's
    // four columns picked from it; per output channel one vec4 of grad_output.
    let pad = "        ";
    let mut accumulate = String::new();
    for k in 0..ob {
        let _ = writeln!(accumulate, "{pad}let g{k} = grad_output[go_at + off{k}];");
    }
    for r in 0..rb {
        for s in 0..v.span_vecs() {
            let _ = writeln!(
                accumulate,
                "{pad}let s{r}_{s} = input[x_at + row{r} + {s}u];"
            );
        }
        for e in 0..kw {
            let lanes: Vec<String> = (0..4)
                .map(|q| {
                    let x = q * v.stride_w + e * v.dilation_w;
                    format!("s{r}_{}[{}]", x / 4, x % 4)
                })
                .collect();
            let _ = writeln!(
                accumulate,
                "{pad}let x{r}_{e} = select(vec4<f32>(0.0), vec4<f32>({}), in_row);",
                lanes.join(", ")
            );
        }
        for k in 0..ob {
            for e in 0..kw {
                let _ = writeln!(
                    accumulate,
                    "{pad}acc{k}_{r}_{e} = fma(g{k}, x{r}_{e}, acc{k}_{r}_{e});"
                );
            }
        }
    }

    let mut store = String::new();
    for k in 0..ob {
        let _ = writeln!(store, "    if (o0 + {k}u >= o_lo && o0 + {k}u < o_hi) {{");
        let _ = writeln!(
            store,
            "        let at{k} = base + (o0 + {k}u - d.out_c_begin) * row;"
        );
        for r in 0..rb {
            let _ = writeln!(store, "        if (a0 + {r}u < p.kernel_h) {{");
            for e in 0..kw {
                let _ = writeln!(
                    store,
                    "            partials[at{k} + {}u] = (acc{k}_{r}_{e}.x + acc{k}_{r}_{e}.y) + (acc{k}_{r}_{e}.z + acc{k}_{r}_{e}.w);",
                    r * kw + e
                );
            }
            let _ = writeln!(store, "        }}");
        }
        let _ = writeln!(store, "    }}");
    }

    let about = format!(
        "{ob} output channels x {rb} kernel rows, kernel width {kw}, stride {}, dilation {}",
        v.stride_w, v.dilation_w
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
