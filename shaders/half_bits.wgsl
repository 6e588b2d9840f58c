// f32 <-> float16 / bfloat16 (bfloat16 when BFLOAT is set) on the bits, in
// integer arithmetic, so that every driver rounds alike (WGSL leaves the
// rounding of f32 -> f16 conversions to the implementation, and an
// out-of-range pack2x16float is indeterminate): to nearest, ties to even;
// beyond the largest finite value to infinity; NaN stays a quiet NaN. The
// prelude of shaders/half.wgsl and shaders/pad_backward_half.wgsl.

// bfloat16 instead of float16.
override BFLOAT: bool;

// The bits of an f32 rounded to float16. Branch-free: each range's result
// is computed and the right one selected (llvmpipe runs every arm of a
// branch anyway, under masks).
fn to_f16(x: u32) -> u32 {
    let sign = (x >> 16u) & 0x8000u;
    let a = x & 0x7fffffffu;
    let biased = a >> 23u;
    // NaN: quiet, keeping the payload's top bits.
    let nan = 0x7e00u | ((a >> 13u) & 0x3ffu);
    // A normal float16 (|x| >= 2^-14): the exponent rebased by 127 - 15 and
    // 13 significand bits dropped, rounded to nearest, ties to even; a carry
    // out of the significand bumps the exponent (up to infinity), as it
    // should. (Wraps for smaller |x|, whose result is not selected.)
    let rebased = a - (112u << 23u);
    let normal = (rebased + 0xfffu + ((rebased >> 13u) & 1u)) >> 13u;
    // A subnormal float16 (2^-25 <= |x| < 2^-14), in units of 2^-24: the
    // 24-bit significand shifted right by 14 to 24, rounded alike.
    let shift = clamp(126u - min(biased, 126u), 14u, 24u);
    let full = (a & 0x7fffffu) | 0x800000u;
    let kept = full >> shift;
    let rest = full & ((1u << shift) - 1u);
    let halfway = 1u << (shift - 1u);
    let up = rest > halfway || (rest == halfway && (kept & 1u) == 1u);
    let subnormal = kept + select(0u, 1u, up);
    // Below half the smallest subnormal (2^-25): zero; from 2^16 up: infinity.
    var h = select(0u, subnormal, biased >= 102u);
    h = select(h, normal, biased >= 113u);
    h = select(h, 0x7c00u, biased >= 143u);
    h = select(h, nan, a > 0x7f800000u);
    return sign | h;
}

// The f32 bits of a float16 (exact).
fn from_f16(h: u32) -> u32 {
    let sign = (h & 0x8000u) << 16u;
    let e = (h >> 10u) & 0x1fu;
    let m = h & 0x3ffu;
    if (e == 0x1fu) {
        return sign | 0x7f800000u | (m << 13u);
    }
    if (e == 0u) {
        // m · 2^-24: exact in f32, and normal there.
        return sign | bitcast<u32>(f32(m) * 5.9604644775390625e-8);
    }
    return sign | ((e + 112u) << 23u) | (m << 13u);
}

// The bits of an f32 rounded to bfloat16.
fn to_bf16(x: u32) -> u32 {
    if ((x & 0x7fffffffu) > 0x7f800000u) {
        return (x >> 16u) | 0x40u;
    }
    // Adding 0x7fff and the kept part's last bit rounds to nearest, ties to
    // even; the largest finite values round up into infinity.
    return (x + 0x7fffu + ((x >> 16u) & 1u)) >> 16u;
}

fn narrow_one(x: u32) -> u32 {
    if (BFLOAT) {
        return to_bf16(x);
    }
    return to_f16(x);
}

fn widen_one(h: u32) -> u32 {
    if (BFLOAT) {
        return h << 16u;
    }
    return from_f16(h);
}

// An f32 rounded to the dtype, as f32.
fn round_to_dtype(x: f32) -> f32 {
    return bitcast<f32>(widen_one(narrow_one(bitcast<u32>(x))));
}
