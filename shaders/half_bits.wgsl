// f32 <-> float16 / bfloat16 (bfloat16 when BFLOAT is set) on the bits, in
// integer arithmetic, so that every driver rounds alike (WGSL leaves the
// rounding of f32 -> f16 conversions to the implementation, and an
// out-of-range pack2x16float is indeterminate): to nearest, ties to even;
// beyond the largest finite value to infinity; NaN stays a quiet NaN. The
// prelude of shaders/half.wgsl and shaders/pad_backward_half.wgsl.

// bfloat16 instead of float16.
override BFLOAT: bool;

// The bits of an f32 rounded to float16.
fn to_f16(x: u32) -> u32 {
    let sign = (x >> 16u) & 0x8000u;
    let biased = (x >> 23u) & 0xffu;
    let m = x & 0x7fffffu;
    if (biased == 0xffu) {
        if (m != 0u) {
            return sign | 0x7e00u | (m >> 13u);
        }
        return sign | 0x7c00u;
    }
    let e = i32(biased) - 127;
    if (e > 15) {
        return sign | 0x7c00u;
    }
    if (e >= -14) {
        // A normal float16: 13 significand bits dropped. A carry out of the
        // significand bumps the exponent (up to infinity), as it should.
        var h = (u32(e + 15) << 10u) | (m >> 13u);
        let rest = m & 0x1fffu;
        if (rest > 0x1000u || (rest == 0x1000u && (h & 1u) == 1u)) {
            h = h + 1u;
        }
        return sign | h;
    }
    if (e < -25) {
        // Below half the smallest subnormal (2^-25): zero.
        return sign;
    }
    // A subnormal float16, in units of 2^-24: the 24-bit significand
    // shifted right by 14 to 24.
    let full = m | 0x800000u;
    let shift = u32(-(e + 1));
    var h = full >> shift;
    let rest = full & ((1u << shift) - 1u);
    let halfway = 1u << (shift - 1u);
    if (rest > halfway || (rest == halfway && (h & 1u) == 1u)) {
        h = h + 1u;
    }
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
