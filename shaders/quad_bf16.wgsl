// How shaders/pad_input.wgsl and shaders/pack_weight.wgsl store four values
// for the blocked kernel on bfloat16 operands (`Precision::Medium`): rounded
// to bfloat16 (to nearest, ties to even, as shaders/half_bits.wgsl does, its
// prelude) and packed two to a word, the first value in the low half. The
// kernel widens them back exactly, so its products are those of the rounded
// operands, exact in f32.

alias StoredQuad = vec2<u32>;

fn stored_quad(v: vec4<f32>) -> StoredQuad {
    let b = bitcast<vec4<u32>>(v);
    return vec2<u32>(to_bf16(b.x) | (to_bf16(b.y) << 16u), to_bf16(b.z) | (to_bf16(b.w) << 16u));
}
