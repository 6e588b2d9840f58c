//! Conversions between `f32` buffers and the 16-bit dtypes' packed buffers
//! (`shaders/half.wgsl`: two values per `u32` word, rounded in integer
//! arithmetic so that every driver agrees), on the GPU and on the host.

use bytemuck::{Pod, Zeroable};
use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
use half::{bf16, f16};

use super::runtime::registry::Binding::{ReadOnly, ReadWrite, Uniform};
use super::runtime::{KernelSpec, Recorder, WrittenKernel};
use crate::dtype::DType;
use crate::error::{Conv2dError, Result};

/// The uniform block of `shaders/half.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
struct ConvertParams {
    len: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const KERNEL: WrittenKernel = WrittenKernel::new(
    "half",
    concat!(
        include_str!("../../shaders/half_bits.wgsl"),
        "\n",
        include_str!("../../shaders/half.wgsl")
    ),
    64,
    &[Uniform, ReadOnly, ReadWrite],
);

const F16: &[(&str, f64)] = &[("BFLOAT", 0.0)];
const BF16: &[(&str, f64)] = &[("BFLOAT", 1.0)];

/// What a conversion does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Conversion {
    /// Packed 16-bit words to `f32`.
    Widen,
    /// `f32` to packed 16-bit words, rounded.
    Narrow,
    /// `f32` to `f32` rounded to the dtype.
    Round,
}

/// The kernel of `conversion` for `dtype`: its entry point, and a family
/// name per dtype (the `BFLOAT` constant makes them different pipelines).
fn spec(dtype: DType, conversion: Conversion) -> KernelSpec {
    let (entry, families) = match conversion {
        Conversion::Widen => ("widen", ["widen_f16", "widen_bf16"]),
        Conversion::Narrow => ("narrow", ["narrow_f16", "narrow_bf16"]),
        Conversion::Round => ("round", ["round_f16", "round_bf16"]),
    };
    let (family, constants) = match dtype {
        DType::BF16 => (families[1], BF16),
        _ => (families[0], F16),
    };
    KERNEL
        .entry(family, entry)
        .with_constants(family, constants)
        .spec()
}

/// `u32` words holding `len` 16-bit values.
pub(crate) fn words(len: usize) -> usize {
    len.div_ceil(2)
}

/// Records `conversion` of `len` elements of `from` into `to`: packed words
/// of `dtype` widened into `f32` values, `f32` values rounded to `dtype` and
/// packed, or rounded and kept as `f32`. A tensor larger than one binding is
/// converted block by block.
pub(crate) fn encode(
    rec: &mut Recorder,
    dtype: DType,
    conversion: Conversion,
    [from, to]: [&wgpu::Buffer; 2],
    len: usize,
) -> Result<()> {
    debug_assert!(dtype.is_half());
    if len == 0 {
        return Ok(());
    }
    // Elements of one binding's worth of f32 values, even so that a block's
    // packed words start on a word.
    let block = ((rec.context().max_binding_bytes() / 4) as usize & !1).max(2);
    if len <= block {
        return dispatch(rec, dtype, conversion, [from, to], len);
    }
    // A tensor larger than one binding: block by block, each copied into a
    // buffer of its own, converted, and copied into place.
    for start in (0..len).step_by(block) {
        let n = block.min(len - start);
        let ((from_at, from_len), (to_at, to_len)) = match conversion {
            Conversion::Widen => ((start / 2, words(n)), (start, n)),
            Conversion::Narrow => ((start, n), (start / 2, words(n))),
            Conversion::Round => ((start, n), (start, n)),
        };
        let source = rec.scratch("conversion block", from_len);
        rec.copy(from, from_at, &source, 0, from_len);
        let result = rec.scratch("converted block", to_len);
        dispatch(rec, dtype, conversion, [&source, &result], n)?;
        rec.copy(&result, 0, to, to_at, to_len);
    }
    Ok(())
}

/// One dispatch converting `len` elements from the start of `from` into the
/// start of `to`.
fn dispatch(
    rec: &mut Recorder,
    dtype: DType,
    conversion: Conversion,
    [from, to]: [&wgpu::Buffer; 2],
    len: usize,
) -> Result<()> {
    let params = ConvertParams {
        len: u32::try_from(len).map_err(|_| Conv2dError::ValueTooLarge {
            what: "elements to convert",
            value: len.to_string(),
        })?,
        _pad0: 0,
        _pad1: 0,
        _pad2: 0,
    };
    let params = rec.uniform("convert", &params);
    // Eight values per invocation, four for `round` (shaders/half.wgsl).
    let invocations = match conversion {
        Conversion::Round => len.div_ceil(4),
        _ => len.div_ceil(8),
    };
    rec.dispatch(
        &spec(dtype, conversion),
        &[&params, from, to],
        invocations as u64,
    )
}

/// Values converted per step on the host: a stack buffer's worth, so that
/// no half-sized copy of a tensor is allocated (on the development machine,
/// allocating and first touching memory costs more than converting it).
const HOST_CHUNK: usize = 4096;

/// `values` rounded to `dtype` and packed as the GPU holds them (the
/// buffers carry `f32`s, so the words are handed over as their bits). The
/// rounding runs over slices, with the processor's conversion instructions
/// where it has them (F16C).
pub(crate) fn pack(dtype: DType, values: &[f32]) -> Vec<f32> {
    let mut words = Vec::with_capacity(values.len().div_ceil(2));
    let mut buffer = [0u16; HOST_CHUNK];
    for chunk in values.chunks(HOST_CHUNK) {
        let bits = &mut buffer[..chunk.len()];
        match dtype {
            DType::BF16 => bits
                .reinterpret_cast_mut::<bf16>()
                .convert_from_f32_slice(chunk),
            _ => bits
                .reinterpret_cast_mut::<f16>()
                .convert_from_f32_slice(chunk),
        }
        words.extend(bits.chunks(2).map(|pair| {
            let high = pair.get(1).map_or(0, |&h| u32::from(h));
            f32::from_bits(u32::from(pair[0]) | (high << 16))
        }));
    }
    words
}

/// The `len` values of `dtype` packed in `words` (read back as `f32`s).
pub(crate) fn unpack(dtype: DType, words: &[f32], len: usize) -> Vec<f32> {
    let len = len.min(2 * words.len());
    let mut values = Vec::with_capacity(len);
    let mut buffer = [0u16; HOST_CHUNK];
    for chunk in words.chunks(HOST_CHUNK / 2) {
        for (pair, w) in buffer.chunks_exact_mut(2).zip(chunk) {
            let w = w.to_bits();
            pair.copy_from_slice(&[w as u16, (w >> 16) as u16]);
        }
        let start = values.len();
        let n = (2 * chunk.len()).min(len - start);
        values.resize(start + n, 0.0);
        let bits = &buffer[..n];
        match dtype {
            DType::BF16 => bits
                .reinterpret_cast::<bf16>()
                .convert_to_f32_slice(&mut values[start..]),
            _ => bits
                .reinterpret_cast::<f16>()
                .convert_to_f32_slice(&mut values[start..]),
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::runtime::GpuContext;
    use crate::gpu::runtime::buffers::{read_mapped, staging};
    use crate::gpu::runtime::registry::tests::assert_mirrors;
    use crate::gpu::runtime::registry::tests::validate;

    #[test]
    fn the_kernels_validate_and_their_uniform_mirrors_wgsl() {
        for dtype in [DType::F16, DType::BF16] {
            for c in [Conversion::Widen, Conversion::Narrow, Conversion::Round] {
                validate(&spec(dtype, c));
            }
        }
        assert_mirrors::<ConvertParams>(
            KERNEL.source,
            "ConvertParams",
            &["len", "_pad0", "_pad1", "_pad2"],
        );
    }

    /// The host's slice conversions against one value at a time, over every
    /// 16-bit pattern (many of `HOST_CHUNK`'s steps) and an odd length.
    #[test]
    fn host_packing_matches_one_value_at_a_time() {
        for dtype in [DType::F16, DType::BF16] {
            let widen = |h: u16| match dtype {
                DType::BF16 => bf16::from_bits(h).to_f32(),
                _ => f16::from_bits(h).to_f32(),
            };
            let words: Vec<f32> = (0..=u16::MAX)
                .collect::<Vec<_>>()
                .chunks(2)
                .map(|p| f32::from_bits(u32::from(p[0]) | (u32::from(p[1]) << 16)))
                .collect();
            let len = usize::from(u16::MAX);
            let values = unpack(dtype, &words, len);
            assert_eq!(values.len(), len);
            for (h, &v) in (0..=u16::MAX).zip(&values) {
                let want = widen(h);
                assert!(
                    v.to_bits() == want.to_bits() || (v.is_nan() && want.is_nan()),
                    "{dtype} unpack {h:#06x}: {v}, want {want}"
                );
            }
            // Every value but the NaNs packs back to its own bits.
            let finite: Vec<f32> = values.iter().copied().filter(|v| !v.is_nan()).collect();
            let packed = pack(dtype, &finite);
            assert_eq!(packed.len(), finite.len().div_ceil(2));
            for (k, &v) in finite.iter().enumerate() {
                let bits = (packed[k / 2].to_bits() >> (16 * (k % 2))) & 0xffff;
                assert_eq!(
                    widen(bits as u16).to_bits(),
                    v.to_bits(),
                    "{dtype} pack {v:e}"
                );
            }
            if finite.len() % 2 == 1 {
                assert_eq!(packed[packed.len() - 1].to_bits() >> 16, 0);
            }
        }
    }

    /// Runs one conversion of `len` elements from `input` on the GPU.
    fn run(ctx: &GpuContext, dtype: DType, c: Conversion, input: &[f32], len: usize) -> Vec<f32> {
        let out_len = match c {
            Conversion::Narrow => words(len),
            _ => len,
        };
        let mut rec = Recorder::new(ctx);
        let from = rec.upload("input", input);
        let to = rec.scratch("output", out_len);
        encode(&mut rec, dtype, c, [&from, &to], len).unwrap();
        let readback = staging(ctx, out_len);
        rec.copy(&to, 0, &readback, 0, out_len);
        rec.submit();
        pollster::block_on(read_mapped(ctx, &readback, out_len)).unwrap()
    }

    /// Bits for bits, NaN for NaN (payloads aside).
    fn same(a: f32, b: f32) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    /// Every one of the 65536 values of each dtype widens exactly, and
    /// narrows back to itself; f32 values around every rounding case
    /// (halfway points, subnormals, overflow, NaN, random bits) narrow as
    /// the `half` crate rounds (to nearest, ties to even), and `round` too;
    /// an odd length leaves the last word's high half zero.
    #[test]
    fn conversions_match_the_half_crate_bit_for_bit() {
        let ctx = GpuContext::new().expect("a GPU adapter (see ADAPTER_HELP)");
        let every: Vec<u16> = (0..=u16::MAX).collect();
        let mut edges: Vec<f32> = vec![
            0.0,
            -0.0,
            65504.0,
            65519.99,
            65520.0,
            -65520.0,
            1e-8,
            2.9802322e-8,
            2.98e-8,
            5.9604645e-8,
            6.1035156e-5,
            6.097e-5,
            f32::MAX,
            f32::MIN_POSITIVE,
            1e-40,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            1.0009765,
            1.0 + 2f32.powi(-11),
        ];
        // Each f16 and bf16 value, and the points halfway to the next.
        for h in (0..=u16::MAX).step_by(7) {
            for v in [f16::from_bits(h).to_f32(), bf16::from_bits(h).to_f32()] {
                edges.push(v);
                edges.push(f32::from_bits(v.to_bits().wrapping_add(0x1000)));
                edges.push(f32::from_bits(v.to_bits().wrapping_add(0x8000)));
                edges.push(f32::from_bits(v.to_bits().wrapping_add(0x8001)));
            }
        }
        // Ties between neighbouring float16 subnormals, (h + 1/2)·2⁻²⁴, and
        // the points just either side of them.
        for h in 0..1024u32 {
            let tie = (h as f32 + 0.5) * 2f32.powi(-24);
            for v in [tie, -tie, tie.next_up(), tie.next_down()] {
                edges.push(v);
            }
        }
        let mut state = 0x2545_f491_u32;
        edges.extend((0..100_000).map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            f32::from_bits(state)
        }));
        for dtype in [DType::F16, DType::BF16] {
            let host = |h: u16| match dtype {
                DType::BF16 => bf16::from_bits(h).to_f32(),
                _ => f16::from_bits(h).to_f32(),
            };
            let packed: Vec<f32> = every
                .chunks(2)
                .map(|p| f32::from_bits(u32::from(p[0]) | (u32::from(p[1]) << 16)))
                .collect();
            let wide = run(&ctx, dtype, Conversion::Widen, &packed, every.len());
            for (&h, &got) in every.iter().zip(&wide) {
                assert!(same(got, host(h)), "{dtype} widen {h:#06x}: {got}");
            }
            let narrowed = run(&ctx, dtype, Conversion::Narrow, &edges, edges.len());
            let want = pack(dtype, &edges);
            let back = unpack(dtype, &narrowed, edges.len());
            for (k, &x) in edges.iter().enumerate() {
                assert!(
                    same(back[k], dtype.round(x)),
                    "{dtype} narrow {x:e} ({:#010x}): got {}, want {}",
                    x.to_bits(),
                    back[k],
                    dtype.round(x)
                );
                if !x.is_nan() {
                    let shift = 16 * (k % 2);
                    assert_eq!(
                        (narrowed[k / 2].to_bits() >> shift) & 0xffff,
                        (want[k / 2].to_bits() >> shift) & 0xffff,
                        "{dtype} narrow {x:e}: bits"
                    );
                }
            }
            let rounded = run(&ctx, dtype, Conversion::Round, &edges, edges.len());
            for (&x, &got) in edges.iter().zip(&rounded) {
                assert!(same(got, dtype.round(x)), "{dtype} round {x:e}: {got}");
            }
            // Every length up to 17 (an invocation converts eight values,
            // four when rounding): the values the host gives, and zero halves
            // past the last value.
            for len in 1..=17 {
                let values = &edges[..len];
                let packed = pack(dtype, values);
                let narrowed = run(&ctx, dtype, Conversion::Narrow, values, len);
                let bits = |w: &[f32]| w.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&narrowed), bits(&packed), "{dtype} narrow, len {len}");
                let wide = run(&ctx, dtype, Conversion::Widen, &packed, len);
                let host = unpack(dtype, &packed, len);
                assert!(
                    (wide.iter().zip(&host)).all(|(&a, &b)| same(a, b)),
                    "{dtype} widen, len {len}"
                );
                let rounded = run(&ctx, dtype, Conversion::Round, values, len);
                assert!(
                    (rounded.iter().zip(values)).all(|(&a, &x)| same(a, dtype.round(x))),
                    "{dtype} round, len {len}"
                );
            }
            // An odd length: three values in two words, the fourth half zero.
            let odd = run(&ctx, dtype, Conversion::Narrow, &[1.0, 2.0, 3.0], 3);
            assert_eq!(odd[1].to_bits() >> 16, 0);
            assert_eq!(unpack(dtype, &odd, 3), [1.0, 2.0, 3.0]);
            // Bindings capped at 64 bytes: blocks of 16 values, the same bits.
            let small = ctx.with_max_binding_bytes(64);
            let count = 1001;
            let values = &edges[..count];
            let packed = pack(dtype, values);
            for (c, input, len) in [
                (Conversion::Widen, &packed[..], count),
                (Conversion::Narrow, values, count),
                (Conversion::Round, values, count),
            ] {
                let whole = run(&ctx, dtype, c, input, len);
                let blocked = run(&small, dtype, c, input, len);
                assert!(
                    (whole.iter().zip(&blocked)).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{dtype} {c:?}: blocks differ from one pass"
                );
            }
        }
    }
}
