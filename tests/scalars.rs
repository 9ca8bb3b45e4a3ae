//! Scalars are data: a 2,000-step training loop whose learning rate (a cosine schedule) and
//! random seed change every step compiles pipelines only in its first step, and holds no more
//! memory at the end than after ten steps. (Its own test binary: the counters are
//! process-wide, and other tests compiling kernels at the same time would count.)

mod common;

use wgrad::prelude::*;

#[test]
fn changing_scalars_compile_nothing_after_the_first_step() {
    common::setup();
    // SGD with a cosine learning-rate schedule and a changing seed: the scalars are data.
    let x = Tensor::rand([64, 8], 1);
    let y = Tensor::rand([64, 1], 2);
    let mut w = Tensor::from_vec(vec![0.0f32; 8], [8, 1]);
    let steps = 2000;
    let mut compiled = vec![];
    let mut held = vec![];
    for step in 0..steps {
        let before = wgrad::counters();
        let lr = 0.1 * (1.0 + (std::f32::consts::PI * step as f32 / steps as f32).cos()) / 2.0;
        let g = grad(|w: &Tensor| (x.matmul(w) - &y).square().mean(None, false))(&w);
        let noise = Tensor::rand([8, 1], step as u64) * 1e-3;
        w = &w - g * lr + noise;
        w.realize();
        compiled.push(wgrad::counters().since(&before).pipelines_compiled);
        held.push(wgrad::counters().bytes_allocated);
    }
    assert!(compiled[0] > 0);
    let later: u64 = compiled[1..].iter().sum();
    assert_eq!(later, 0, "pipelines compiled after the first step: {later}");
    assert_eq!(
        held[steps - 1],
        held[9],
        "bytes held grew from {} to {}",
        held[9],
        held[steps - 1]
    );
}
