//! Scalars are data: a 2,000-step training loop whose learning rate (a cosine schedule) and
//! random seed change every step compiles pipelines only in its first step, and holds no more
//! memory at the end than after ten steps; an optimizer chain with a warm-up cosine schedule
//! compiles nothing after its first steps. (Their own test binary, run one at a time: the
//! counters are process-wide, and other tests compiling kernels at the same time would count.)

mod common;

use std::sync::Mutex;
use wgrad::optim;
use wgrad::prelude::*;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn changing_scalars_compile_nothing_after_the_first_step() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
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
        let g = grad(|w: &Tensor| (x.matmul(w) - &y).square().mean_all())(&w);
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

#[test]
fn an_optimizer_schedule_compiles_nothing_after_the_first_steps() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    common::setup();
    // The learning rate is 0 at step 0, then warms up and decays; weight decay and clipping
    // add more scalars. The first two steps compile (22 and 8 pipelines here): at step 0 the
    // parameters and the optimizer's moments are fresh zeros computed in the kernels, from
    // step 1 on they are buffers. From step 2 on, nothing.
    let opt = optim::chain([
        optim::clip_by_global_norm(1.0),
        optim::adamw(
            optim::warmup_cosine_decay_schedule(0.0, 0.05, 5, 40, 0.001),
            1e-3,
        ),
    ]);
    let x = Tensor::rand([32, 4], 3);
    let y = Tensor::rand([32, 1], 4);
    let loss = |p: &(Tensor, Tensor)| (x.matmul(&p.0) + &p.1 - &y).square().mean_all();
    let mut p = (Tensor::zeros([4, 1]), Tensor::zeros([1]));
    let mut s = opt.init(&p);
    let mut compiled = vec![];
    let mut losses = vec![];
    for _ in 0..40 {
        let before = wgrad::counters();
        let (l, g) = value_and_grad(loss)(&p);
        p = opt.step(&p, &g, &mut s);
        wgrad::tree::realize(&[&p, &s, &l]);
        losses.push(l.item());
        compiled.push(wgrad::counters().since(&before).pipelines_compiled);
    }
    assert!(compiled[0] > 0);
    assert_eq!(compiled[2..].iter().sum::<u64>(), 0, "{compiled:?}");
    assert!(losses[39] < losses[0] * 0.5, "{losses:?}");
}
