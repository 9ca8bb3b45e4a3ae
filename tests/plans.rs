//! The plan cache: a realize whose graph has the structure of an earlier one reuses its
//! kernels, buffers and pipelines, and must give exactly what planning afresh gives — with
//! new input buffers, new constants, new random keys, aliased inputs and views. (Its own
//! binary, run one test at a time: the counters and the policy are process-wide.)

mod common;

use std::sync::Mutex;
use wgrad::prelude::*;
use wgrad::{optim, random};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn with_cache<T>(size: usize, f: impl FnOnce() -> T) -> T {
    let before = wgrad::policy();
    wgrad::set_policy(wgrad::Policy {
        plan_cache: size,
        ..before.clone()
    });
    let out = f();
    wgrad::set_policy(before);
    out
}

/// One "step" of a small model with everything that varies between calls: inputs, a scalar,
/// a random key.
fn step(x: &Tensor, w: &Tensor, scale: f32, seed: u64) -> (Tensor, Tensor) {
    let noise = random::normal(random::key(seed), w.shape()) * 0.01;
    let (l, g) =
        value_and_grad(|w: &Tensor| (x.matmul(w).tanh() * scale).square().mean_all())(&(w + noise));
    let g = &g * (1.0 / (1.0 + scale));
    wgrad::realize(&[l.clone(), g.clone()]);
    (l, g)
}

#[test]
fn a_cached_plan_gives_what_planning_afresh_gives() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    common::setup();
    let runs: Vec<(f32, Vec<f32>)> = (0..6)
        .map(|k| {
            let x = Tensor::rand([16, 8], 100 + k);
            let w = Tensor::rand([8, 4], 200 + k);
            let (l, g) = with_cache(0, || step(&x, &w, 0.5 + k as f32, 300 + k));
            (l.item(), g.to_vec::<f32>())
        })
        .collect();
    let before = wgrad::counters();
    let cached: Vec<(f32, Vec<f32>)> = (0..6)
        .map(|k| {
            let x = Tensor::rand([16, 8], 100 + k);
            let w = Tensor::rand([8, 4], 200 + k);
            let (l, g) = with_cache(32, || step(&x, &w, 0.5 + k as f32, 300 + k));
            (l.item(), g.to_vec::<f32>())
        })
        .collect();
    let used = wgrad::counters().since(&before);
    assert!(used.plan_hits >= 5, "{used:?}");
    for (k, (a, b)) in runs.iter().zip(&cached).enumerate() {
        assert_eq!(a.0.to_bits(), b.0.to_bits(), "loss of run {k}");
        assert_eq!(a.1, b.1, "gradient of run {k}");
    }
    // The runs differ from each other (the values did reach the kernels).
    assert_ne!(cached[0].1, cached[1].1);
}

#[test]
fn aliased_inputs_views_and_keys_are_told_apart() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    common::setup();
    with_cache(32, || {
        let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [3])
            .realize()
            .clone();
        let b = Tensor::from_vec(vec![10.0f32, 20.0, 30.0], [3])
            .realize()
            .clone();
        // The same op on (a, a) and on (a, b): different wirings, different plans.
        let f = |x: &Tensor, y: &Tensor| (x * 2.0 + y).exp().log();
        for _ in 0..2 {
            assert_eq!(f(&a, &a).to_vec::<f32>(), vec![3.0, 6.0, 9.0]);
            assert_eq!(f(&a, &b).to_vec::<f32>(), vec![12.0, 24.0, 36.0]);
            assert_eq!(f(&b, &a).to_vec::<f32>(), vec![21.0, 42.0, 63.0]);
        }
        // A target that is only a view of an input.
        for t in [&a, &b] {
            let v = t.reshape([3, 1]);
            let w = v.clone() + 0.0;
            wgrad::realize(&[v.clone(), w.clone()]);
            assert_eq!(v.to_vec::<f32>(), t.to_vec::<f32>());
            assert_eq!(w.to_vec::<f32>(), t.to_vec::<f32>());
        }
        // Random keys are values: the same graph with another key gives other numbers, and
        // each is what a fresh plan gives.
        let draws: Vec<Vec<f32>> = (0..4)
            .map(|k| random::uniform(random::key(k), [5]).to_vec::<f32>())
            .collect();
        for (k, d) in draws.iter().enumerate() {
            let fresh: Vec<f32> =
                with_cache(0, || random::uniform(random::key(k as u64), [5]).to_vec());
            assert_eq!(d, &fresh);
        }
        assert_ne!(draws[0], draws[1]);
    });
}

#[test]
fn a_training_loop_is_bit_identical_with_and_without_the_cache() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    common::setup();
    let train = |cache: usize| {
        with_cache(cache, || {
            let [k1, k2] = random::key(5).split_n();
            let mut model = wgrad::nn::Mlp::new(k1, &[4, 16, 1], wgrad::nn::Activation::Tanh);
            let x = random::normal(k2, [32, 4]);
            let y = x.sum_keepdim(-1).sin();
            let opt = optim::adamw(optim::cosine_decay_schedule(0.05, 30, 0.0), 1e-3);
            let mut state = opt.init(&model);
            let before = wgrad::counters();
            let mut losses = vec![];
            for _ in 0..30 {
                let (l, g) =
                    value_and_grad(|m: &wgrad::nn::Mlp| wgrad::nn::mse(&m.forward(&x), &y))(&model);
                model = opt.step(&model, &g, &mut state);
                wgrad::tree::realize(&[&model, &state, &l]);
                losses.push(l.item().to_bits());
            }
            (losses, wgrad::counters().since(&before))
        })
    };
    let (plain, off) = train(0);
    let (cached, on) = train(32);
    assert_eq!(plain, cached);
    assert_eq!(off.plan_hits, 0);
    assert!(on.plan_hits >= 25, "{on:?}");
    assert!(f32::from_bits(cached[29]) < f32::from_bits(cached[0]));
}

#[test]
fn multi_output_and_horizontal_kernels_compute_what_single_ones_do() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    common::setup();
    // Adam's moments and parameter per leaf: three results of one shape that share their
    // inputs, written by one kernel with several outputs.
    let run = |multi: bool, horizontal: bool| {
        let before = wgrad::policy();
        wgrad::set_policy(wgrad::Policy {
            multi_output: multi,
            horizontal,
            plan_cache: 0,
            ..before.clone()
        });
        let [k1, k2] = random::key(9).split_n();
        let mut model = wgrad::nn::Mlp::new(k1, &[3, 8, 2], wgrad::nn::Activation::Relu);
        let x = random::normal(k2, [16, 3]);
        let opt = optim::adam(0.01);
        let mut state = opt.init(&model);
        let mut kernels = vec![];
        for _ in 0..3 {
            let g = grad(|m: &wgrad::nn::Mlp| m.forward(&x).square().mean_all())(&model);
            model = opt.step(&model, &g, &mut state);
            let c = wgrad::counters();
            wgrad::tree::realize(&[&model, &state]);
            kernels.push(wgrad::counters().since(&c).kernels);
        }
        wgrad::set_policy(before);
        let mut leaves: Vec<u32> = vec![];
        for t in wgrad::tree::tree_leaves(&model)
            .iter()
            .chain(wgrad::tree::tree_leaves(&state).iter())
        {
            leaves.extend(t.to_vec::<f32>().iter().map(|v| v.to_bits()));
        }
        (leaves, kernels)
    };
    let (single, k_single) = run(false, false);
    let (multi, k_multi) = run(true, false);
    assert_eq!(single, multi, "multi-output kernels changed a value");
    assert!(
        k_multi[2] + 8 <= k_single[2],
        "expected fewer kernels: {k_multi:?} vs {k_single:?}"
    );
    // Horizontal fusion: never more launches; the four leaves' updates (of four shapes) in
    // fewer, where the adapter binds enough buffers for two leaves' (each reads four, writes
    // three: lavapipe and llvmpipe GL, so CI checks it).
    let (horizontal, k_horizontal) = run(true, true);
    assert_eq!(single, horizontal, "horizontal fusion changed a value");
    assert!(
        k_horizontal[2] <= k_multi[2],
        "horizontal fusion added launches: {k_horizontal:?} vs {k_multi:?}"
    );
    let device = wgrad::device_info();
    if device.max_storage_buffers_per_shader_stage >= 16 {
        assert!(
            k_horizontal[2] + 2 <= k_multi[2],
            "expected fewer kernels: {k_horizontal:?} vs {k_multi:?}"
        );
    }
}
