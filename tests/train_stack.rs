//! Two stacked layers learn blur-then-Sobel end to end on the GPU (the
//! train_stack example, shortened): the loss falls.

mod common;

#[path = "../examples/train_stack.rs"]
mod train_stack;

#[test]
fn a_stack_of_two_layers_learns_the_pipeline() {
    let trace = train_stack::train(common::gpu(), 80, 3).unwrap();
    let first = trace.losses[0];
    let last = trace.losses[trace.losses.len() - 1];
    assert!(
        last < first / 10.0,
        "loss {first} -> {last} over {} steps",
        trace.losses.len()
    );
    eprintln!(
        "loss {first:.4} -> {last:.6}, {:.1} ms per step",
        trace.step_ms
    );
}
