// How shaders/pad_input.wgsl and shaders/pack_weight.wgsl store four values
// for the blocked kernel on float32 operands: as they are.

alias StoredQuad = vec4<f32>;

fn stored_quad(v: vec4<f32>) -> StoredQuad {
    return v;
}
