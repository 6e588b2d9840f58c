//! The WGSL of one blocked variant: `shaders/conv2d_blocked.wgsl` with its
//! marked lines (`//{constants}`, `//{lane}`, `//{declare}`, `//{check}`,
//! `//{accumulate}`, `//{remainder}`, `//{store}`) replaced by code unrolled for the variant, since neither naga
//! nor llvmpipe unrolls loops that index registers. Each generated block is
//! framed by `// generated: NAME` and `// end generated: NAME` comments, so a
//! maintainer reading a variant (the tests write some to
//! `target/generated-wgsl/`) sees at once what was filled in.

use std::fmt::Write;

use super::{Operands, Variant};
use crate::gpu::conv::sharing::{sharing_parts, with_subgroup_check};
use crate::gpu::conv::unrolled::four_inputs;

/// The template: the shared prelude, then the kernel with its markers.
const TEMPLATE: &str = crate::gpu::conv::conv_source!("conv2d_blocked.wgsl", "subgroup_sound.wgsl");

/// The source of the variant whose key values are `values` (see [`Variant::key`]),
/// then 1 for the kernel that accumulates.
pub(crate) fn generate(values: &[u32]) -> String {
    source(Variant::from_key(values), values.last() == Some(&1))
}

/// The template with its marked lines generated for `variant`, storing onto
/// the bias or (`accumulate`) adding onto the stored output.
pub(crate) fn source(variant: Variant, accumulate: bool) -> String {
    let (block, vecs) = (variant.block, variant.vecs);
    // Weight units per tap: vec4s of four output channels, or one float.
    let (units, unit_type) = if block == 1 {
        (1, "f32")
    } else {
        (block / 4, "vec4<f32>")
    };
    let mut constants = String::new();
    let bf16 = variant.operands == Operands::Bf16;
    // Operands rounded to bfloat16 come as two words per four values (see
    // shaders/quad_bf16.wgsl), loaded eight values at a time where they can
    // be, and widened exactly.
    let (input_unit, unit_type, units) = match (bf16, paired_weights(variant)) {
        (true, true) => ("vec4<u32>", "vec4<u32>", units / 2),
        (true, false) => ("vec4<u32>", "vec2<u32>", units),
        (false, _) => ("vec4<f32>", unit_type, units),
    };
    let _ = writeln!(constants, "alias InputUnit = {input_unit};");
    let _ = writeln!(constants, "alias WeightUnit = {unit_type};");
    if bf16 {
        let _ = writeln!(
            constants,
            "fn widen(v: vec2<u32>) -> vec4<f32> {{\n    \
             return bitcast<vec4<f32>>(vec4<u32>(v.x << 16u, v.x & 0xffff0000u, v.y << 16u, v.y & 0xffff0000u));\n}}"
        );
    }
    let _ = writeln!(constants, "const WEIGHT_UNITS: u32 = {units}u;");
    let _ = writeln!(constants, "const BLOCK: u32 = {block}u;");
    let _ = writeln!(constants, "const ACCUMULATE: bool = {accumulate};");
    let _ = writeln!(constants, "const OUTS: u32 = {}u;", variant.outs());
    let _ = writeln!(constants, "const ROWS: u32 = {}u;", variant.rows);
    let (output_unit, output_lanes) = if variant.vec_store {
        ("vec4<f32>", 4)
    } else {
        ("f32", 1)
    };
    let _ = writeln!(constants, "alias OutputUnit = {output_unit};");
    let _ = writeln!(constants, "const OUTPUT_LANES: u32 = {output_lanes}u;");
    let _ = writeln!(constants, "const KERNEL_W: u32 = {}u;", variant.kernel_w);
    let _ = writeln!(constants, "const STRIDE_W: u32 = {}u;", variant.stride_w);

    let mut declare = String::new();
    for k in 0..block {
        for v in 0..vecs {
            let _ = writeln!(declare, "    var a{k}_{v} = vec4<f32>(0.0);");
        }
    }

    let _ = writeln!(constants, "const LANES: u32 = {}u;", variant.lanes);

    let pad = "        ";
    let shared = variant.lanes > 0;
    let accumulate = step(variant, variant.rows, pad, shared);
    // The slice's last rows one at a time, where a step takes several.
    let remainder = if variant.rows > 1 {
        format!(
            "    for (; r < row_end; r++) {{\n{}    }}\n",
            step(variant, 1, pad, shared)
        )
    } else {
        String::new()
    };
    // Every lane loads its part of the weights.
    let every_lane = format!("{:#x}u", u32::MAX >> (32 - variant.lanes.clamp(1, 32)));
    let (lane, check) = sharing_parts(shared, "block", &every_lane);

    let mut store = String::new();
    for k in 0..block {
        let _ = writeln!(store, "    if (o0 + {k}u >= o_lo && o0 + {k}u < o_hi) {{");
        for v in 0..vecs {
            if variant.vec_store {
                let q = 4 * v;
                let _ = writeln!(
                    store,
                    "        if ({q}u < count) {{ store_output(n, o0 + {k}u, i, j0 + {q}u, a{k}_{v}); }}"
                );
                continue;
            }
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
        "{block} output channels x {} outputs, {} rows per step, {} stores, kernel width {}, stride {}, dilation {}, {:?} operands, weights shared across {} lanes",
        variant.outs(),
        variant.rows,
        if variant.vec_store { "vec4" } else { "scalar" },
        variant.kernel_w,
        variant.stride_w,
        variant.dilation_w,
        variant.operands,
        variant.lanes
    );
    let framed = |name: &str, indent: &str, text: &str| {
        format!("{indent}// generated: {name} ({about})\n{text}{indent}// end generated: {name}\n")
    };
    let source = TEMPLATE
        .replace("//{constants}\n", &framed("constants", "", &constants))
        .replace("//{lane}\n", &framed("lane", "    ", &lane))
        .replace("//{check}\n", &framed("check", "    ", &check))
        .replace("//{declare}\n", &framed("declare", "    ", &declare))
        .replace("//{accumulate}\n", &framed("accumulate", pad, &accumulate))
        .replace("//{remainder}\n", &framed("remainder", "    ", &remainder))
        .replace("//{store}\n", &framed("store", "    ", &store));
    with_subgroup_check(source, shared)
}

/// Whether the variant loads a tap's weights eight channels at a time: on
/// bfloat16 operands, where a block holds eight channels or more (fewer
/// loads of as many bytes cost less on llvmpipe, where each is a loop over
/// the lanes).
fn paired_weights(variant: Variant) -> bool {
    variant.operands == Operands::Bf16 && variant.block >= 8
}

/// Row `j`'s span of bfloat16 values, as the vec4s `s{j}_{s}`: loaded as vec4s
/// of words (eight values each) from the even quad at or before its start,
/// `at{j}`. Runs start on an even quad where a run's outputs span a whole
/// number of such loads (`vecs · stride_w` even; rows are a multiple of 8
/// long), else on either, and each quad is picked from one load or the next.
fn span_of_words(out: &mut String, variant: Variant, j: usize, pad: &str) {
    let span = variant.span_vecs();
    let aligned = (variant.vecs * variant.stride_w).is_multiple_of(2);
    let loads = if aligned {
        span.div_ceil(2)
    } else {
        span / 2 + 1
    };
    let _ = writeln!(out, "{pad}let base{j} = at{j} / 2u;");
    if !aligned {
        let _ = writeln!(out, "{pad}let odd{j} = (at{j} & 1u) == 1u;");
    }
    for t in 0..loads {
        let _ = writeln!(out, "{pad}let u{j}_{t} = input[base{j} + {t}u];");
    }
    let quad = |q: usize| {
        format!(
            "u{j}_{}.{}",
            q / 2,
            if q.is_multiple_of(2) { "xy" } else { "zw" }
        )
    };
    for s in 0..span {
        let words = if aligned {
            quad(s)
        } else {
            format!("select({}, {}, odd{j})", quad(s), quad(s + 1))
        };
        let _ = writeln!(out, "{pad}let s{j}_{s} = widen({words});");
    }
}

/// One step over `rows` reduction rows (c, a) from the current one: per row
/// where it starts and the next row, its span as vec4s and each kernel
/// column's inputs picked from it; then per four output channels one vec4 of
/// weights per row and column, and each accumulator's multiply-adds over all
/// of them in one chain. `shared`: the step's weights, which lie side by side
/// from the first row's `wt0`, are loaded once across the subgroup's lanes
/// (lane l the units l, l + LANES, …) and broadcast from there.
fn step(variant: Variant, rows: usize, pad: &str, shared: bool) -> String {
    let (block, vecs) = (variant.block, variant.vecs);
    let (units, lanes) = if block == 1 { (1, 1) } else { (block / 4, 4) };
    let load = |what: String| match variant.operands {
        Operands::F32 => what,
        Operands::Bf16 => format!("widen({what})"),
    };
    let mut out = String::new();
    let step_units = rows * variant.kernel_w * units;
    for j in 0..rows {
        let _ = writeln!(
            out,
            "{pad}let plane{j} = (n * d.in_channels + c - d.in_c_begin) * p.padded_h;\n\
             {pad}let at{j} = ((plane{j} + i * p.stride_h + a * p.dilation_h) * d.row_len + j0 * STRIDE_W) / 4u;\n\
             {pad}let wt{j} = ((block * p.in_per_group + c - g * p.in_per_group) * p.kernel_h + a) * KERNEL_W * WEIGHT_UNITS;\n\
             {pad}a++;\n\
             {pad}if (a == p.kernel_h) {{ a = 0u; c++; }}"
        );
        if variant.operands == Operands::Bf16 {
            span_of_words(&mut out, variant, j, pad);
        } else {
            for s in 0..variant.span_vecs() {
                let _ = writeln!(out, "{pad}let s{j}_{s} = input[at{j} + {s}u];");
            }
        }
        for kx in 0..variant.kernel_w {
            for v in 0..vecs {
                let inputs = four_inputs(
                    &format!("s{j}_"),
                    4 * v,
                    kx,
                    variant.stride_w,
                    variant.dilation_w,
                );
                let _ = writeln!(out, "{pad}let x{j}_{kx}_{v} = {inputs};");
            }
        }
    }
    if shared {
        for t in 0..step_units.div_ceil(variant.lanes) {
            let _ = writeln!(
                out,
                "{pad}let held{t} = weight[wt0 + min({}u + lane, {}u)];",
                t * variant.lanes,
                step_units - 1
            );
        }
    }
    for q in 0..units {
        for j in 0..rows {
            for kx in 0..variant.kernel_w {
                if shared {
                    let u = (j * variant.kernel_w + kx) * units + q;
                    let _ = writeln!(
                        out,
                        "{pad}let w{j}_{kx}_{q} = subgroupBroadcast(held{}, {}u);",
                        u / variant.lanes,
                        u % variant.lanes
                    );
                    continue;
                }
                if !paired_weights(variant) {
                    let value = load(format!("weight[wt{j} + {}u]", kx * units + q));
                    let _ = writeln!(out, "{pad}let w{j}_{kx}_{q} = {value};");
                    continue;
                }
                // Channels 8·(q/2) to 8·(q/2) + 7 in one load: the first
                // four in its first two words, the others in the last two.
                let pair = format!("wp{j}_{kx}_{}", q / 2);
                if q % 2 == 0 {
                    let at = kx * units / 2 + q / 2;
                    let _ = writeln!(out, "{pad}let {pair} = weight[wt{j} + {at}u];");
                }
                let half = if q % 2 == 0 { "xy" } else { "zw" };
                let _ = writeln!(out, "{pad}let w{j}_{kx}_{q} = widen({pair}.{half});");
            }
        }
        for l in 0..lanes {
            let k = lanes * q + l;
            let pick = if lanes == 1 {
                String::new()
            } else {
                format!("[{l}]")
            };
            for v in 0..vecs {
                let mut sum = format!("a{k}_{v}");
                for j in 0..rows {
                    for kx in 0..variant.kernel_w {
                        sum = format!("fma(vec4<f32>(w{j}_{kx}_{q}{pick}), x{j}_{kx}_{v}, {sum})");
                    }
                }
                let _ = writeln!(out, "{pad}a{k}_{v} = {sum};");
            }
        }
    }
    out
}
