//! The WGSL of one blocked weight-gradient variant:
//! `shaders/conv2d_grad_weight_blocked.wgsl` with its marked lines (`//{...}`)
//! replaced by code unrolled for the variant, each generated block framed by
//! `// generated: NAME` and `// end generated: NAME` comments.

use std::fmt::Write;

use super::WeightVariant;
use crate::gpu::conv::unrolled::four_inputs;

/// The template: the shared prelude, then the kernel with its markers.
const TEMPLATE: &str = crate::gpu::conv::conv_source!("conv2d_grad_weight_blocked.wgsl");

/// The source of the variant whose key values are `values`.
pub(crate) fn generate(values: &[u32]) -> String {
    source(WeightVariant::from_key(values))
}

/// The template with its marked lines generated for `variant`.
pub(crate) fn source(v: WeightVariant) -> String {
    let (ob, cb, rb, kw, quads) = (v.ob, v.cb, v.rb, v.kernel_w, v.quads);
    let mut constants = String::new();
    let _ = writeln!(constants, "const OB: u32 = {ob}u;");
    let _ = writeln!(constants, "const CB: u32 = {cb}u;");
    let _ = writeln!(constants, "const RB: u32 = {rb}u;");
    let _ = writeln!(constants, "const KERNEL_W: u32 = {kw}u;");
    let _ = writeln!(constants, "const STRIDE_W: u32 = {}u;", v.stride_w);
    let _ = writeln!(constants, "const QUADS: u32 = {quads}u;");
    let _ = writeln!(
        constants,
        "const ACCUMULATORS_PADDED: u32 = {}u;",
        v.accumulators_padded()
    );

    let mut declare = String::new();
    for k in 0..ob {
        let _ = writeln!(
            declare,
            "    let off{k} = (min(max(o0 + {k}u, o_lo), o_hi - 1u) - d.out_c_begin) * plane_quads;"
        );
    }
    // Input channel j of the block: where its planes start in this chunk's
    // copy (a channel not held reads the nearest held one) and whether its
    // sums are kept.
    for j in 0..cb {
        let _ = writeln!(
            declare,
            "    let ch{j} = c_group + c0 + {j}u;\n    let held{j} = ch{j} >= ch_lo && ch{j} < ch_hi;\n    let plane{j} = (clamp(ch{j}, ch_lo, ch_hi - 1u) - d.in_c_begin) * in_plane;"
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
        for j in 0..cb {
            for r in 0..rb {
                for e in 0..kw {
                    let _ = writeln!(declare, "    var acc{k}_{j}_{r}_{e} = 0.0;");
                }
            }
        }
    }

    // Per step: each output channel's QUADS vec4s of grad_output; per input
    // channel and kernel row the run's span, each tap's quads of inputs picked
    // from it, then every weight's multiply-adds over the run's positions.
    let pad = "        ";
    let mut accumulate = String::new();
    for u in 0..quads {
        let _ = writeln!(
            accumulate,
            "{pad}let in_row{u} = columns + vec4<u32>({}u) < vec4<u32>(p.out_w);",
            4 * u
        );
        for k in 0..ob {
            let _ = writeln!(
                accumulate,
                "{pad}let g{k}_{u} = grad_output[go_at + off{k} + {u}u];"
            );
        }
    }
    for j in 0..cb {
        for r in 0..rb {
            for s in 0..v.span_vecs() {
                let _ = writeln!(
                    accumulate,
                    "{pad}let s{j}_{r}_{s} = input[x_at + plane{j} + row{r} + {s}u];"
                );
            }
            for u in 0..quads {
                for e in 0..kw {
                    let inputs =
                        four_inputs(&format!("s{j}_{r}_"), 4 * u, e, v.stride_w, v.dilation_w);
                    let _ = writeln!(
                        accumulate,
                        "{pad}let x{j}_{r}_{e}_{u} = select(vec4<f32>(0.0), {inputs}, in_row{u});"
                    );
                }
            }
            for k in 0..ob {
                for e in 0..kw {
                    let mut sum = format!("acc{k}_{j}_{r}_{e}");
                    for u in 0..quads {
                        for lane in ["x", "y", "z", "w"] {
                            sum = format!("fma(g{k}_{u}.{lane}, x{j}_{r}_{e}_{u}.{lane}, {sum})");
                        }
                    }
                    let _ = writeln!(accumulate, "{pad}acc{k}_{j}_{r}_{e} = {sum};");
                }
            }
        }
    }

    // In the order reduce_weight_blocked.wgsl reads them: (k, j, r, e).
    let mut values = Vec::new();
    for k in 0..ob {
        for j in 0..cb {
            for r in 0..rb {
                for e in 0..kw {
                    values.push(format!("select(0.0, acc{k}_{j}_{r}_{e}, held{j})"));
                }
            }
        }
    }
    values.resize(v.accumulators_padded(), "0.0".to_string());
    let mut store = String::new();
    for (t, four) in values.chunks(4).enumerate() {
        let _ = writeln!(
            store,
            "    partials[at + {t}u] = vec4<f32>({});",
            four.join(", ")
        );
    }

    let about = format!(
        "{ob} output channels x {cb} input channels x {rb} kernel rows, {quads} quads, kernel width {kw}, stride {}, dilation {}",
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

/// The template of the pass that adds the variant's partial sums.
const REDUCE_TEMPLATE: &str = crate::gpu::conv::conv_source!("reduce_weight_blocked.wgsl");

/// The source of the reduction for the variant whose key values are `values`.
pub(crate) fn generate_reduce(values: &[u32]) -> String {
    let v = WeightVariant::from_key(values);
    let mut constants = String::new();
    let _ = writeln!(constants, "const OB: u32 = {}u;", v.ob);
    let _ = writeln!(constants, "const CB: u32 = {}u;", v.cb);
    let _ = writeln!(constants, "const RB: u32 = {}u;", v.rb);
    let _ = writeln!(
        constants,
        "const ACCUMULATORS_PADDED: u32 = {}u;",
        v.accumulators_padded()
    );
    let _ = writeln!(constants, "const KERNEL_W: u32 = {}u;", v.kernel_w);
    let mut sum = String::new();
    for e in 0..v.kernel_w {
        let _ = writeln!(sum, "    var acc{e} = 0.0;");
        let _ = writeln!(
            sum,
            "    if (d.accumulate != 0u) {{ acc{e} = result[at + {e}u]; }}"
        );
    }
    let _ = writeln!(sum, "    for (var s = 0u; s < d.splits; s++) {{");
    let _ = writeln!(
        sum,
        "        let first = (s * per_split + invocation) * ACCUMULATORS_PADDED + place;"
    );
    for e in 0..v.kernel_w {
        let _ = writeln!(sum, "        acc{e} = acc{e} + partials[first + {e}u];");
    }
    let _ = writeln!(sum, "    }}");
    for e in 0..v.kernel_w {
        let _ = writeln!(sum, "    result[at + {e}u] = acc{e};");
    }
    REDUCE_TEMPLATE
        .replace("//{constants}\n", &constants)
        .replace("//{sum}\n", &sum)
}
