//! The WGSL of one depthwise variant: `shaders/conv2d_depthwise.wgsl` with its
//! marked lines (`//{constants}`, `//{declare}`, `//{slide}`, `//{body}`,
//! `//{load}`) replaced by code unrolled for the variant. Each generated block is framed
//! by `// generated: NAME` and `// end generated: NAME` comments.

use std::fmt::Write;

use super::{DepthwiseVariant, Role};

/// The template: the shared prelude, then the kernel with its markers.
const TEMPLATE: &str = crate::gpu::conv::conv_source!("conv2d_depthwise.wgsl");

/// The 16-bit conversions, before the template in a half variant.
const HALF_BITS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/shaders/half_bits.wgsl"
));

/// How a float32 variant reads one input value.
const F32_ACCESS: &str = "fn element(i: u32) -> f32 { return input[i]; }\n";

/// How a half variant reads input values (16-bit values, two per word:
/// element 2i in the low half of word i) and packs two results.
const HALF_ACCESS: &str = "\
fn widened(h: u32) -> f32 { return bitcast<f32>(widen_one(h)); }
fn element(i: u32) -> f32 { return widened((input[i / 2u] >> (16u * (i % 2u))) & 0xffffu); }
fn halves(a: u32, b: u32) -> vec4<f32> {
    return vec4<f32>(widened(a & 0xffffu), widened(a >> 16u), widened(b & 0xffffu), widened(b >> 16u));
}
fn pack_pair(x: f32, y: f32) -> u32 {
    return narrow_one(bitcast<u32>(x)) | (narrow_one(bitcast<u32>(y)) << 16u);
}
";

/// The source of the variant whose key values are `values` (see [`DepthwiseVariant::key`]).
pub(crate) fn generate(values: &[u32]) -> String {
    let (variant, role) = DepthwiseVariant::from_key(values);
    source(variant, role)
}

/// The components of a vec4, by index.
const LANES: [&str; 4] = ["x", "y", "z", "w"];

/// The template with its marked lines generated for `v`'s kernel of `role`.
pub(crate) fn source(v: DepthwiseVariant, role: Role) -> String {
    let interior = role.interior;
    let span_vecs = v.span_vecs();
    let window = v.window();

    let half = v.dtype.is_half();
    let mut constants = String::new();
    let unit = match (half, v.vec_store) {
        (true, _) => "u32",
        (false, true) => "vec4<f32>",
        (false, false) => "f32",
    };
    let _ = writeln!(constants, "alias OutputUnit = {unit};");
    let _ = writeln!(
        constants,
        "alias InputUnit = {};",
        if half { "u32" } else { "f32" }
    );
    constants.push_str(if half { HALF_ACCESS } else { F32_ACCESS });
    let _ = writeln!(constants, "const OUTS: u32 = {}u;", v.outs());
    let _ = writeln!(constants, "const STRIDE_W: u32 = {}u;", v.stride_w);
    let _ = writeln!(constants, "const STRIDE_H: u32 = {}u;", v.stride_h);
    let _ = writeln!(constants, "const SPAN: u32 = {}u;", v.span());
    let _ = writeln!(constants, "const SPAN_VECS: u32 = {span_vecs}u;");
    let _ = writeln!(constants, "const SPAN_PADDED: u32 = {}u;", 4 * span_vecs);
    let _ = writeln!(constants, "const WINDOW: u32 = {window}u;");
    let _ = writeln!(constants, "const INTERIOR: bool = {};", interior);
    let _ = writeln!(constants, "const MODE: u32 = {}u;", v.mode);
    let fields: Vec<String> = (0..span_vecs).map(|q| format!("v{q}: vec4<f32>")).collect();
    let _ = writeln!(constants, "struct Span {{ {} }}", fields.join(", "));

    let taps = v.kernel_h * v.kernel_w;
    let mut declare = String::new();
    let _ = writeln!(declare, "    let taps = o * {taps}u;");
    for a in 0..v.kernel_h {
        for k in 0..v.kernel_w {
            let _ = writeln!(
                declare,
                "    let w{a}_{k} = weight[taps + {}u];",
                a * v.kernel_w + k
            );
        }
    }
    for k in 0..window {
        let _ = writeln!(declare, "    var win{k}: Span;");
    }
    if !interior {
        let _ = writeln!(declare, "    map_columns(x0);");
    }

    // The window moves down one row: the oldest row leaves, the new one
    // comes in last. Rows a stride skips altogether are not loaded.
    let pad = "        ";
    let mut slide = String::new();
    for k in 1..window {
        let _ = writeln!(slide, "{pad}win{} = win{k};", k - 1);
    }
    let needed = if v.stride_h > window {
        " && t % STRIDE_H < WINDOW"
    } else {
        ""
    };
    let _ = writeln!(slide, "{pad}if (held{needed}) {{");
    let _ = writeln!(
        slide,
        "{pad}    win{} = load_span(plane, y0 + t, x0, t0);",
        window - 1
    );
    let _ = writeln!(slide, "{pad}}}");

    let pad = "            ";
    let mut body = String::new();
    let _ = writeln!(body, "{pad}let at = (out_plane + i) * p.out_w + j0;");
    for q in 0..v.vecs {
        let _ = writeln!(body, "{pad}var acc{q} = vec4<f32>(0.0);");
    }
    let _ = writeln!(body, "{pad}if (held) {{");
    for q in 0..v.vecs {
        let mut sum = "vec4<f32>(0.0)".to_string();
        for a in 0..v.kernel_h {
            for k in 0..v.kernel_w {
                let picks: Vec<String> = (0..4)
                    .map(|e| {
                        let x = (4 * q + e) * v.stride_w + k * v.dilation_w;
                        format!("win{}.v{}.{}", a * v.dilation_h, x / 4, LANES[x % 4])
                    })
                    .collect();
                sum = format!(
                    "fma(vec4<f32>(w{a}_{k}), vec4<f32>({}), {sum})",
                    picks.join(", ")
                );
            }
        }
        let _ = writeln!(body, "{pad}    acc{q} = {sum};");
    }
    let _ = writeln!(body, "{pad}}}");
    for q in 0..v.vecs {
        if half {
            // Pairs of outputs rounded into one word (rows an even number
            // long: every pair starts a word).
            for pair in 0..2 {
                let x = 4 * q + 2 * pair;
                let _ = writeln!(body, "{pad}if (j0 + {x}u < p.out_w) {{");
                let _ = writeln!(
                    body,
                    "{pad}    output[at / 2u + {}u] = pack_pair(acc{q}.{} + b, acc{q}.{} + b);",
                    x / 2,
                    LANES[2 * pair],
                    LANES[2 * pair + 1]
                );
                let _ = writeln!(body, "{pad}}}");
            }
        } else if v.vec_store {
            let _ = writeln!(body, "{pad}if (j0 + {}u < p.out_w) {{", 4 * q);
            let _ = writeln!(body, "{pad}    let u = at / 4u + {q}u;");
            let onto = if role.accumulate { "output[u]" } else { "b" };
            let _ = writeln!(body, "{pad}    output[u] = acc{q} + {onto};");
            let _ = writeln!(body, "{pad}}}");
        } else {
            for (e, lane) in LANES.iter().enumerate() {
                let x = 4 * q + e;
                let _ = writeln!(body, "{pad}if (j0 + {x}u < p.out_w) {{");
                let onto = if role.accumulate {
                    format!("output[at + {x}u]")
                } else {
                    "b".to_string()
                };
                let _ = writeln!(body, "{pad}    output[at + {x}u] = acc{q}.{lane} + {onto};");
                let _ = writeln!(body, "{pad}}}");
            }
        }
    }

    // The row load: aligned vec4s shifted into place inside the source
    // window, or column by column through the padding's index map.
    let pad = "    ";
    let mut load = String::new();
    if interior && half {
        // Eight 16-bit values per vec4 word load, widened to two vec4s
        // (h0, h1, ...); the span starts 0–7 values into the first.
        let _ = writeln!(load, "{pad}let f = row + p.src_first_w + u32(t0);");
        let _ = writeln!(load, "{pad}let q = f / 8u;");
        let _ = writeln!(load, "{pad}let coarse = f % 8u >= 4u;");
        let _ = writeln!(load, "{pad}let shift = f % 4u;");
        let widened = span_vecs + 2;
        for k in 0..widened.div_ceil(2) {
            let _ = writeln!(load, "{pad}let a{k} = input4[q + {k}u];");
            let _ = writeln!(load, "{pad}let h{} = halves(a{k}.x, a{k}.y);", 2 * k);
            let _ = writeln!(load, "{pad}let h{} = halves(a{k}.z, a{k}.w);", 2 * k + 1);
        }
        for q in 0..span_vecs {
            let _ = writeln!(
                load,
                "{pad}s.v{q} = select(vec4<f32>(0.0), shifted(select(h{q}, h{}, coarse), select(h{}, h{}, coarse), shift), keep);",
                q + 1,
                q + 1,
                q + 2
            );
        }
    } else if interior {
        let _ = writeln!(load, "{pad}let f = row + p.src_first_w + u32(t0);");
        let _ = writeln!(load, "{pad}let q = f / 4u;");
        let _ = writeln!(load, "{pad}let shift = f % 4u;");
        for q in 0..=span_vecs {
            let _ = writeln!(load, "{pad}let a{q} = input4[q + {q}u];");
        }
        for q in 0..span_vecs {
            let _ = writeln!(
                load,
                "{pad}s.v{q} = select(vec4<f32>(0.0), shifted(a{q}, a{}, shift), keep);",
                q + 1
            );
        }
    } else {
        let _ = writeln!(load, "{pad}var cols: array<f32, SPAN_PADDED>;");
        let _ = writeln!(load, "{pad}for (var x = 0u; x < SPAN; x++) {{");
        let _ = writeln!(load, "{pad}    let sx = column_map[x];");
        let _ = writeln!(
            load,
            "{pad}    cols[x] = select(0.0, element(row + u32(max(sx, 0))), sx >= 0);"
        );
        let _ = writeln!(load, "{pad}}}");
        for q in 0..span_vecs {
            let values: Vec<String> = (0..4).map(|e| format!("cols[{}]", 4 * q + e)).collect();
            let _ = writeln!(
                load,
                "{pad}s.v{q} = select(vec4<f32>(0.0), vec4<f32>({}), keep);",
                values.join(", ")
            );
        }
    }

    let about = format!(
        "{} outputs per row, kernel {}x{}, stride {}x{}, dilation {}x{}, {} {} stores, {} strips{}",
        v.outs(),
        v.kernel_h,
        v.kernel_w,
        v.stride_h,
        v.stride_w,
        v.dilation_h,
        v.dilation_w,
        v.dtype.name(),
        if v.vec_store { "vec4" } else { "scalar" },
        if interior { "interior" } else { "border" },
        if role.accumulate {
            ", accumulating"
        } else {
            ""
        }
    );
    let framed = |name: &str, indent: &str, text: &str| {
        format!("{indent}// generated: {name} ({about})\n{text}{indent}// end generated: {name}\n")
    };
    let text = TEMPLATE
        .replace("//{constants}\n", &framed("constants", "", &constants))
        .replace("//{declare}\n", &framed("declare", "    ", &declare))
        .replace("//{slide}\n", &framed("slide", "        ", &slide))
        .replace("//{body}\n", &framed("body", "            ", &body))
        .replace("//{load}\n", &framed("load", pad, &load));
    if half {
        format!("{HALF_BITS}\n{text}")
    } else {
        text
    }
}
