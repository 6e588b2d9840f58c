//! The WGSL of the Winograd passes: each template in `shaders/winograd_*.wgsl`
//! with its marked lines (`//{constants}`, `//{load}`, `//{transform}`,
//! `//{store}`, `//{declare}`, `//{accumulate}`) replaced by straight-line code
//! for the variant: the transforms are small constant matrix products, unrolled
//! here with their zeros dropped and their ±1 folded, since nothing downstream
//! unrolls loops that index registers. Each generated block is framed by
//! `// generated: NAME` and `// end generated: NAME` comments.

use std::fmt::Write;

use super::{PER_INVOCATION, Transforms, WinogradVariant};
use crate::gpu::conv::sharing::{sharing_parts, with_subgroup_check};

const WEIGHT_TEMPLATE: &str = crate::gpu::conv::conv_source!("winograd_weight.wgsl");
const INPUT_TEMPLATE: &str =
    crate::gpu::conv::conv_source!("winograd_tiles.wgsl", "winograd_input.wgsl");
const GEMM_TEMPLATE: &str = crate::gpu::conv::conv_source!(
    "winograd_tiles.wgsl",
    "winograd_gemm.wgsl",
    "subgroup_sound.wgsl"
);
const OUTPUT_TEMPLATE: &str = crate::gpu::conv::conv_source!(
    "winograd_tiles.wgsl",
    "winograd_output.wgsl",
    "winograd_store_each.wgsl"
);
const OUTPUT_ROWS_TEMPLATE: &str = crate::gpu::conv::conv_source!(
    "winograd_tiles.wgsl",
    "winograd_output.wgsl",
    "winograd_store_rows.wgsl"
);

/// The weight transform of the variant whose key values are `values`.
pub(crate) fn weight(values: &[u32]) -> String {
    let v = WinogradVariant::from_key(values);
    let t = v.transforms();
    let alpha = t.alpha();
    let mut taps = String::new();
    for r in 0..3 {
        for s in 0..3 {
            let _ = writeln!(
                taps,
                "    let g{r}_{s} = quad_tap(base, apart, k0, {}u);",
                3 * r + s
            );
        }
    }
    // U = G g Gᵀ: rows first (G g), then columns.
    let transform = taps
        + &product_code("    ", "h", t.g, 3, |r, s| format!("g{r}_{s}"))
        + &product_code_right("    ", "u", t.g, alpha, |i, s| format!("h{i}_{s}"));
    let store = per_value(alpha, "u", |xi, name| {
        format!("    transformed[{xi}u * plane + into] = {name};\n")
    });
    fill(
        WEIGHT_TEMPLATE,
        &v,
        &[("transform", &transform), ("store", &store)],
    )
}

/// The input transform of the variant whose key values are `values`: per
/// tile `u` of the invocation's [`PER_INVOCATION`], its window's source rows
/// and columns, its loads and its transform; then one store per transformed
/// position of all their values.
pub(crate) fn input(values: &[u32]) -> String {
    let v = WinogradVariant::from_key(values);
    let t = v.transforms();
    let alpha = t.alpha();
    let mut load = String::new();
    let mut transform = String::new();
    for u in 0..PER_INVOCATION {
        let _ = writeln!(load, "    let tile{u} = tile_at(places.first + {u}u);");
        let _ = writeln!(
            load,
            "    let base{u} = (tile{u}.n * d.in_channels + places.channel) * p.in_h * p.in_w;"
        );
        for r in 0..alpha {
            let _ = writeln!(
                load,
                "    let sy{u}_{r} = source_h(tile{u}, tile{u}.y0 + {r}u);"
            );
            let _ = writeln!(load, "    let sx{u}_{r} = source_w(tile{u}.x0 + {r}u);");
        }
        for r in 0..alpha {
            for j in 0..alpha {
                let _ = writeln!(
                    load,
                    "    let x{u}_{r}_{j} = read_input(base{u}, sy{u}_{r}, sx{u}_{j});"
                );
            }
        }
        // V = Bᵀ x B.
        transform += &product_code("    ", &format!("h{u}_"), t.bt, alpha, |r, j| {
            format!("x{u}_{r}_{j}")
        });
        transform += &product_code_right("    ", &format!("v{u}_"), t.bt, alpha, |i, s| {
            format!("h{u}_{i}_{s}")
        });
    }
    let store = per_value(alpha, "_", |xi, name| {
        let values: Vec<String> = (0..PER_INVOCATION).map(|u| format!("v{u}{name}")).collect();
        format!(
            "    transformed[({xi}u * places.stride + places.at) / PER_INVOCATION] = TileValues({});\n",
            values.join(", ")
        )
    });
    fill(
        INPUT_TEMPLATE,
        &v,
        &[
            ("load", &load),
            ("transform", &transform),
            ("store", &store),
        ],
    )
}

/// The transformed-domain GEMM of the variant whose key values are `values`.
pub(crate) fn gemm(values: &[u32]) -> String {
    let v = WinogradVariant::from_key(values);
    let mut declare = String::new();
    for k in 0..v.kb {
        for q in 0..v.tv {
            let _ = writeln!(declare, "    var a{k}_{q} = vec4<f32>(0.0);");
        }
    }
    let pad = "        ";
    // Where lanes share the weights, each loads one vec4 of the channel's
    // (`held{j}` holds vec4 j·LANES + lane, where the subgroup is narrower
    // than KB/4) and the others come by broadcast.
    let accumulate = if v.lanes > 0 {
        let mut held = String::new();
        for j in 0..(v.kb / 4).div_ceil(v.lanes) {
            let _ = writeln!(
                held,
                "{pad}let held{j} = weight[wt + ({}u + lane) % (KB / 4u)];",
                j * v.lanes
            );
        }
        held + &channel_step(&v, pad, |u| {
            format!("subgroupBroadcast(held{}, {}u)", u / v.lanes, u % v.lanes)
        })
    } else {
        channel_step(&v, pad, |u| format!("weight[wt + {u}u]"))
    };
    let (lane, check) = sharing_parts(v.lanes > 0, "rest", "WEIGHT_LANES");
    let mut store = String::new();
    for k in 0..v.kb {
        let _ = writeln!(store, "    if (o0 + {k}u >= o_lo && o0 + {k}u < o_hi) {{");
        for q in 0..v.tv {
            let _ = writeln!(
                store,
                "        if (live && run * TV + {q}u < quads) {{ store_product(xi, o0 + {k}u, run * TV + {q}u, quads, a{k}_{q}); }}"
            );
        }
        let _ = writeln!(store, "    }}");
    }
    let source = fill(
        GEMM_TEMPLATE,
        &v,
        &[
            ("lane", &lane),
            ("declare", &declare),
            ("check", &check),
            ("accumulate", &accumulate),
            ("store", &store),
        ],
    );
    with_subgroup_check(source, v.lanes > 0)
}

/// One channel's step of the product: its TV vec4s of tiles from `at`, its
/// KB/4 vec4s of weights as `weights(u)` gives them, and the KB·TV vec4
/// multiply-adds.
fn channel_step(v: &WinogradVariant, pad: &str, weights: impl Fn(usize) -> String) -> String {
    let mut step = String::new();
    for q in 0..v.tv {
        let _ = writeln!(step, "{pad}let s{q} = input[at + {q}u];");
    }
    for u in 0..v.kb / 4 {
        let _ = writeln!(step, "{pad}let w{u} = {};", weights(u));
        for lane in 0..4 {
            let k = 4 * u + lane;
            for q in 0..v.tv {
                let _ = writeln!(
                    step,
                    "{pad}a{k}_{q} = fma(vec4<f32>(w{u}[{lane}]), s{q}, a{k}_{q});"
                );
            }
        }
    }
    step
}

/// The output transform of the variant whose key values are `values`: one
/// load per transformed position of the products of the invocation's
/// [`PER_INVOCATION`] tiles, then per tile `u` its transform and its stores.
pub(crate) fn output(values: &[u32]) -> String {
    let v = WinogradVariant::from_key(values);
    let t = v.transforms();
    let alpha = t.alpha();
    let mut load = per_value(alpha, "m", |xi, name| {
        format!("    let {name} = product[({xi}u * places.stride + places.at) / PER_INVOCATION];\n")
    });
    let mut transform = String::new();
    let mut store = String::new();
    for u in 0..PER_INVOCATION {
        let _ = writeln!(load, "    let tile{u} = tile_at(places.first + {u}u);");
        // Y = Aᵀ M A.
        transform += &product_code("    ", &format!("h{u}_"), t.at, alpha, |r, j| {
            format!("m{r}_{j}[{u}]")
        });
        transform += &product_code_right("    ", &format!("y{u}_"), t.at, v.tile, |i, s| {
            format!("h{u}_{i}_{s}")
        });
        for i in 0..v.tile {
            if v.whole_rows {
                let row: Vec<String> = (0..v.tile).map(|j| format!("y{u}_{i}_{j}")).collect();
                let _ = writeln!(
                    store,
                    "    store_row(tile{u}, places.channel, {i}u, start, TileRow({}));",
                    row.join(", ")
                );
            } else {
                for j in 0..v.tile {
                    let _ = writeln!(
                        store,
                        "    store_output(tile{u}, places.channel, {i}u, {j}u, start, y{u}_{i}_{j});"
                    );
                }
            }
        }
    }
    fill(
        if v.whole_rows {
            OUTPUT_ROWS_TEMPLATE
        } else {
            OUTPUT_TEMPLATE
        },
        &v,
        &[
            ("load", &load),
            ("transform", &transform),
            ("store", &store),
        ],
    )
}

/// `let {name}{i}_{j} = Σ_r matrix[i][r] · x(r, j)` for every row `i` of
/// `matrix` and column `j < columns`: the product of `matrix` and `x`.
fn product_code(
    indent: &str,
    name: &str,
    matrix: &[&[f64]],
    columns: usize,
    x: impl Fn(usize, usize) -> String,
) -> String {
    let mut code = String::new();
    for (i, row) in matrix.iter().enumerate() {
        for j in 0..columns {
            let terms = row.iter().enumerate().map(|(r, &c)| (c, x(r, j)));
            let _ = writeln!(code, "{indent}let {name}{i}_{j} = {};", sum(terms));
        }
    }
    code
}

/// `let {name}{i}_{j} = Σ_s x(i, s) · matrix[j][s]` for every `i < rows` and
/// row `j` of `matrix`: the product of `x` and `matrix`ᵀ.
fn product_code_right(
    indent: &str,
    name: &str,
    matrix: &[&[f64]],
    rows: usize,
    x: impl Fn(usize, usize) -> String,
) -> String {
    let mut code = String::new();
    for i in 0..rows {
        for (j, row) in matrix.iter().enumerate() {
            let terms = row.iter().enumerate().map(|(s, &c)| (c, x(i, s)));
            let _ = writeln!(code, "{indent}let {name}{i}_{j} = {};", sum(terms));
        }
    }
    code
}

/// A WGSL sum of `coefficient · value` terms, zeros dropped and ±1 folded.
fn sum(terms: impl Iterator<Item = (f64, String)>) -> String {
    let mut text = String::new();
    for (c, value) in terms.filter(|(c, _)| *c != 0.0) {
        let (sign, magnitude) = if c < 0.0 { ("-", -c) } else { ("+", c) };
        let term = if magnitude == 1.0 {
            value
        } else {
            format!("{:?} * {value}", magnitude as f32)
        };
        if text.is_empty() {
            text = if sign == "-" {
                format!("-{term}")
            } else {
                term
            };
        } else {
            let _ = write!(text, " {sign} {term}");
        }
    }
    if text.is_empty() { "0.0".into() } else { text }
}

/// One line per transformed value `{name}{i}_{j}`, ξ = i·alpha + j (its
/// store, or its load).
fn per_value(alpha: usize, name: &str, line: impl Fn(usize, String) -> String) -> String {
    (0..alpha * alpha)
        .map(|xi| line(xi, format!("{name}{}_{}", xi / alpha, xi % alpha)))
        .collect()
}

/// `template` with its constants and `blocks` filled in, each framed.
fn fill(template: &str, v: &WinogradVariant, blocks: &[(&str, &str)]) -> String {
    let t: &Transforms = v.transforms();
    // What the variant fixes for this pass: a transform's key leaves the
    // product's choices at 0.
    let mut about = format!("F({m}x{m}, 3x3)", m = v.tile);
    if v.kb > 0 {
        let _ = write!(about, ", {} output channels per block", v.kb);
    }
    if v.whole_rows {
        about += ", rows of whole tiles";
    }
    if v.tv > 0 {
        let _ = write!(about, " x {} vec4s of tiles, ", v.tv);
        about += &if v.lanes > 0 {
            format!("weights shared across {} lanes", v.lanes)
        } else {
            "no subgroup operations".to_string()
        };
    }
    let mut constants = String::new();
    let _ = writeln!(constants, "const TILE: u32 = {}u;", v.tile);
    let _ = writeln!(constants, "const PER_INVOCATION: u32 = {PER_INVOCATION}u;");
    // One transformed position's values of an invocation's tiles, as the
    // input and output transforms move them (winograd_tiles.wgsl).
    let _ = writeln!(constants, "alias TileValues = vec{PER_INVOCATION}<f32>;");
    // One row of a tile, as the output transform stores it where rows are
    // whole tiles (winograd_store_rows.wgsl).
    let _ = writeln!(constants, "alias TileRow = vec{}<f32>;", v.tile);
    let _ = writeln!(constants, "const ALPHA: u32 = {}u;", t.alpha());
    let _ = writeln!(constants, "const KB: u32 = {}u;", v.kb);
    let _ = writeln!(constants, "const TV: u32 = {}u;", v.tv);
    let _ = writeln!(constants, "const LANES: u32 = {}u;", v.lanes);
    // The lanes that load a channel's weights where lanes share them: the
    // first KB/4, or all of a narrower subgroup.
    let _ = writeln!(
        constants,
        "const WEIGHT_LANES: u32 = {:#x}u;",
        (1u64 << (v.kb / 4).min(v.lanes.max(1))) - 1
    );
    let framed = |name: &str, text: &str| {
        format!("// generated: {name} ({about})\n{text}// end generated: {name}\n")
    };
    let mut source = template.replace("//{constants}\n", &framed("constants", &constants));
    for (name, text) in blocks {
        source = source.replace(&format!("//{{{name}}}\n"), &framed(name, text));
    }
    source
}
