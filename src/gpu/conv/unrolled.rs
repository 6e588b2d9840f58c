//! Pieces of WGSL that more than one generated kernel writes.

/// The inputs of four adjacent outputs along a row, `first_output` to
/// `first_output + 3`, at kernel column `tap`, picked as one vec4 from the
/// row's span held in registers as vec4s named `{span}{n}` (`n` the vec4's
/// index from the span's start).
pub(crate) fn four_inputs(
    span: &str,
    first_output: usize,
    tap: usize,
    stride: usize,
    dilation: usize,
) -> String {
    let lanes: Vec<String> = (0..4)
        .map(|lane| {
            let x = (first_output + lane) * stride + tap * dilation;
            format!("{span}{}[{}]", x / 4, x % 4)
        })
        .collect();
    format!("vec4<f32>({})", lanes.join(", "))
}

#[cfg(test)]
mod tests {
    #[test]
    fn four_inputs_walk_the_span_by_the_stride_from_the_tap() {
        assert_eq!(
            super::four_inputs("s_", 4, 1, 2, 3),
            "vec4<f32>(s_2[3], s_3[1], s_3[3], s_4[1])"
        );
    }
}
