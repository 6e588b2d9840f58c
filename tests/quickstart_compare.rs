//! The quickstart's verdict: a NaN the truth does not have is a mismatch.

#[path = "../examples/quickstart.rs"]
mod quickstart;

use wgpu_conv2d::Tensor;

fn t(data: &[f32]) -> Tensor {
    Tensor::new([1, 1, 1, data.len()], data.to_vec()).unwrap()
}

#[test]
fn nan_is_a_mismatch_unless_the_truth_has_it_too() {
    let magnitude = t(&[4.0, 4.0, 4.0]);
    let want = t(&[1.0, 2.0, 3.0]);
    assert!(quickstart::compare(&want, &want, &magnitude, 4).agrees);
    // A NaN where the truth has a number: f32::max would skip it.
    for at in 0..3 {
        let mut data = [1.0, 2.0, 3.0];
        data[at] = f32::NAN;
        let verdict = quickstart::compare(&t(&data), &want, &magnitude, 4);
        assert!(!verdict.agrees, "NaN at {at} passed");
        assert_eq!(verdict.nan_mismatches, 1);
    }
    // NaN on both sides at the same place agrees; at different places does not.
    let nan_want = t(&[1.0, f32::NAN, 3.0]);
    assert!(quickstart::compare(&nan_want, &nan_want, &magnitude, 4).agrees);
    assert!(!quickstart::compare(&t(&[f32::NAN, 2.0, 3.0]), &nan_want, &magnitude, 4).agrees);
    // A difference just past the bound (6·2⁻²³·4) fails, one inside passes.
    let bound = 6.0 * f32::EPSILON * 4.0;
    assert!(!quickstart::compare(&t(&[1.0 + 2.0 * bound, 2.0, 3.0]), &want, &magnitude, 4).agrees);
    assert!(quickstart::compare(&t(&[1.0 + bound / 2.0, 2.0, 3.0]), &want, &magnitude, 4).agrees);
    // Infinities must match exactly; shapes must match.
    assert!(!quickstart::compare(&t(&[f32::INFINITY, 2.0, 3.0]), &want, &magnitude, 4).agrees);
    assert!(!quickstart::compare(&t(&[1.0, 2.0]), &want, &magnitude, 4).agrees);
}
