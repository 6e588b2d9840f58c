//! The WGSL of one blocked weight-gradient variant:
//! `shaders/conv2d_grad_weight_blocked.wgsl` with its marked lines (`//{...}`)
//! replaced by code unrolled for the variant, each generated block framed by
//! `// generated: NAME` and `// end generated: NAME` comments.

use std::fmt::Write;

use super::WeightVariant;
use crate::gpu::conv::sharing::{sharing_parts, with_subgroup_check};
use crate::gpu::conv::unrolled::four_inputs;

/// The template: the shared prelude, then the kernel with its markers.
const TEMPLATE: &str =
    crate::gpu::conv::conv_source!("conv2d_grad_weight_blocked.wgsl", "subgroup_sound.wgsl");

/// The source of the variant whose key values are `values`.
pub(crate) fn generate(values: &[u32]) -> String {
    source(WeightVariant::from_key(values))
}

/// The template with its marked lines generated for `variant`.
pub(crate) fn source(v: WeightVariant) -> String {
    let (ob, cb, rb, kw, quads) = (v.ob, v.cb, v.rb, v.kernel_w, v.quads);
    let (shared, lanes) = (v.lanes > 0, v.lanes);
    // grad_output vec4s per step, unit k · QUADS + u for channel k, quad u.
    let units = ob * quads;
    let mut constants = String::new();
    let _ = writeln!(constants, "const OB: u32 = {ob}u;");
    let _ = writeln!(constants, "const CB: u32 = {cb}u;");
    let _ = writeln!(constants, "const RB: u32 = {rb}u;");
    let _ = writeln!(constants, "const KERNEL_W: u32 = {kw}u;");
    let _ = writeln!(constants, "const STRIDE_W: u32 = {}u;", v.stride_w);
    let _ = writeln!(constants, "const QUADS: u32 = {quads}u;");
    let _ = writeln!(constants, "const LANES: u32 = {lanes}u;");
    let _ = writeln!(
        constants,
        "const ACCUMULATORS_PADDED: u32 = {}u;",
        v.accumulators_padded()
    );

    let mut declare = String::new();
    let offset =
        |k: &str| format!("(min(max(o0 + {k}, o_lo), o_hi - 1u) - d.out_c_begin) * plane_quads");
    if shared {
        // Lane l loads the units l, l + LANES, … (the last one past the end).
        for t in 0..units.div_ceil(lanes) {
            let _ = writeln!(
                declare,
                "    let unit{t} = min({}u + lane, {}u);
    let off{t} = {} + unit{t} % QUADS;",
                t * lanes,
                units - 1,
                offset(&format!("unit{t} / QUADS"))
            );
        }
    } else {
        for k in 0..ob {
            let _ = writeln!(declare, "    let off{k} = {};", offset(&format!("{k}u")));
        }
    }
    // Input channel j of the block: where its planes start in this chunk's
    // copy (a channel not held reads the nearest held one) and whether its
    // sums are kept.
    for j in 0..cb {
        let _ = writeln!(
            declare,
            "    let ch{j} = c_group + c0 + {j}u;\n    let held{j} = ch{j} >= ch_lo && ch{j} < ch_hi;\n    let plane{j} = (select(d.in_c_begin, clamp(ch{j}, ch_lo, ch_hi - 1u), held) - d.in_c_begin) * in_plane;"
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
    if shared {
        for t in 0..units.div_ceil(lanes) {
            let _ = writeln!(
                accumulate,
                "{pad}let loaded{t} = grad_output[go_at + off{t}];"
            );
        }
    }
    for u in 0..quads {
        let _ = writeln!(
            accumulate,
            "{pad}let in_row{u} = columns + vec4<u32>({}u) < vec4<u32>(p.out_w);",
            4 * u
        );
        for k in 0..ob {
            let value = if shared {
                let unit = k * quads + u;
                format!(
                    "subgroupBroadcast(loaded{}, {}u)",
                    unit / lanes,
                    unit % lanes
                )
            } else {
                format!("grad_output[go_at + off{k} + {u}u]")
            };
            let _ = writeln!(accumulate, "{pad}let g{k}_{u} = {value};");
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
        let value = format!("vec4<f32>({})", four.join(", "));
        let value = if shared {
            format!("select(vec4<f32>(poison()), {value}, sound)")
        } else {
            value
        };
        let _ = writeln!(store, "        partials[at + {t}u] = {value};");
    }
    // Where lanes share loads: the lane parameter, and the check that the
    // subgroup is one block's (of output channels and positions), every lane
    // there.
    let every_lane = format!("{:#x}u", u32::MAX >> (32 - lanes.clamp(1, 32)));
    let (lane, check) = sharing_parts(shared, "index / padded_block", &every_lane);
    let running = if shared {
        format!("{check}    let running = subgroupAny(held);\n")
    } else {
        "    let running = held;\n".to_string()
    };

    let about = format!(
        "{ob} output channels x {cb} input channels x {rb} kernel rows, {quads} quads, kernel width {kw}, stride {}, dilation {}, grad_output shared across {lanes} lanes",
        v.stride_w, v.dilation_w
    );
    let framed = |name: &str, indent: &str, text: &str| {
        format!("{indent}// generated: {name} ({about})\n{text}{indent}// end generated: {name}\n")
    };
    let source = TEMPLATE
        .replace("//{constants}\n", &framed("constants", "", &constants))
        .replace("//{lane}\n", &lane)
        .replace("//{running}\n", &framed("running", "    ", &running))
        .replace("//{declare}\n", &framed("declare", "    ", &declare))
        .replace("//{accumulate}\n", &framed("accumulate", pad, &accumulate))
        .replace("//{store}\n", &framed("store", pad, &store));
    with_subgroup_check(source, shared)
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
    let _ = writeln!(constants, "const LANES: u32 = {}u;", v.lanes);
    let _ = writeln!(constants, "const PER: u32 = {}u;", v.reduce_quads());
    REDUCE_TEMPLATE.replace("//{constants}\n", &constants)
}
