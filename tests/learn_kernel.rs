//! The d2l learn-a-kernel experiment converges from PyTorch's default init,
//! from every seed tried.

mod common;

#[path = "../examples/learn_kernel.rs"]
mod learn_kernel;

#[test]
fn the_kernel_is_learned_from_any_seed() {
    let mut finals = Vec::new();
    for seed in 0..40 {
        let trace = learn_kernel::train(common::gpu(), seed).unwrap();
        let [a, b] = trace.kernel;
        assert!(
            (a - 1.0).abs() < 0.1 && (b + 1.0).abs() < 0.1,
            "seed {seed}: kernel [{a}, {b}]"
        );
        let (first, last) = (trace.losses[0], trace.losses[9]);
        assert!(last < first / 10.0, "seed {seed}: loss {first} -> {last}");
        finals.push(last);
    }
    finals.sort_by(f32::total_cmp);
    eprintln!("median final loss over 40 seeds: {:.4}", finals[20]);
}
