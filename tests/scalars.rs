//! Scalars are data: a training loop whose learning rate, step count or random seed changes
//! every step compiles pipelines only in its first step. (Its own test binary: the counters
//! are process-wide, and other tests compiling kernels at the same time would count.)

mod common;

use wgrad::prelude::*;

#[test]
fn changing_scalars_compile_nothing_after_the_first_step() {
    common::setup();
    // SGD with a cosine learning-rate schedule and a changing seed: the scalars are data.
    let x = Tensor::rand([64, 8], 1);
    let y = Tensor::rand([64, 1], 2);
    let mut w = Tensor::from_vec(vec![0.0f32; 8], [8, 1]);
    let mut compiled = vec![];
    for step in 0..20 {
        let before = wgrad::counters();
        let lr = 0.1 * (1.0 + (std::f32::consts::PI * step as f32 / 20.0).cos()) / 2.0;
        let g = grad(|w: &Tensor| (x.matmul(w) - &y).square().mean(None, false))(&w);
        let noise = Tensor::rand([8, 1], step) * 1e-3;
        w = &w - g * lr + noise;
        w.realize();
        compiled.push(wgrad::counters().since(&before).pipelines_compiled);
    }
    assert!(compiled[0] > 0);
    assert!(
        compiled[1..].iter().all(|&c| c == 0),
        "pipelines compiled per step: {compiled:?}"
    );
}
