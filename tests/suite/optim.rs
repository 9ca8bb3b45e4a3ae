//! Optimizers against optax: trajectories of 8 steps on a small non-convex problem
//! (tests/data/optim_reference.json, made by tests/data/make_optim_reference.py), plus
//! hand-computed steps, schedules and state handling.

use crate::common;

use common::{Json, close, parse_json};
use wgrad::optim::{self, Optimizer};
use wgrad::prelude::*;

struct Params {
    w: Tensor,
    b: Tensor,
}
wgrad::tree_struct!(Params { w, b });

fn start() -> Params {
    Params {
        w: Tensor::from_vec(vec![0.5f32, -1.0, 2.0, 0.25, 1.5, -0.75], [2, 3]),
        b: Tensor::from_vec(vec![0.1f32, -0.3, 0.8], [3]),
    }
}

fn loss(p: &Params) -> Tensor {
    let a = Tensor::from_vec(vec![1.0f32, 2.0, 0.5, 3.0, 0.25, 1.0], [2, 3]);
    let c = Tensor::from_vec(vec![-0.5f32, 0.5, 1.0, 0.0, -1.0, 2.0], [2, 3]);
    let cosh = (p.b.exp() + p.b.neg().exp()) * 0.5;
    (a * (&p.w - c).square()).sum_all() + p.w.sin().sum_all() + (cosh * &p.b).sum_all()
}

fn reference() -> Json {
    parse_json(include_str!("../data/optim_reference.json"))
}

fn run(opt: &Optimizer, steps: usize) -> Vec<Vec<f32>> {
    let mut p = start();
    let mut s = opt.init(&p);
    let mut out = vec![];
    for _ in 0..steps {
        let g = grad(loss)(&p);
        p = opt.step(&p, &g, &mut s);
        wgrad::tree::realize(&[&p, &s]);
        let mut v = p.w.to_vec::<f32>();
        v.extend(p.b.to_vec::<f32>());
        out.push(v);
    }
    out
}

fn check(name: &str, opt: Optimizer) {
    let want = reference();
    let want = want.get(name).expect(name).arr();
    let got = run(&opt, want.len());
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        let w: Vec<f32> = w.arr().iter().map(|v| v.num() as f32).collect();
        if let Err(e) = close(g, &w, 2e-5, 2e-5) {
            panic!("{name}, step {}: {e}\n got {g:?}\nwant {w:?}", k + 1);
        }
    }
}

#[test]
fn sgd_matches_optax() {
    check("sgd", optim::sgd(0.05));
    check("sgd_momentum", optim::sgd_momentum(0.02, 0.9, false));
    check("sgd_nesterov", optim::sgd_momentum(0.02, 0.9, true));
    check(
        "sgd_exponential",
        optim::sgd(optim::exponential_decay(0.05, 2, 0.5, 0, false)),
    );
}

#[test]
fn adam_family_matches_optax() {
    check("adam", optim::adam(0.05));
    check(
        "adam_custom",
        optim::adam_with(
            0.05,
            optim::AdamConfig {
                b1: 0.8,
                b2: 0.99,
                eps: 1e-3,
                eps_root: 1e-4,
            },
        ),
    );
    check("adamw", optim::adamw(0.05, 0.1));
    check(
        "clip_adam",
        optim::chain([optim::clip_by_global_norm(0.5), optim::adam(0.1)]),
    );
    check(
        "adam_warmup_cosine",
        optim::adam(optim::warmup_cosine_decay_schedule(0.0, 0.1, 3, 10, 0.01)),
    );
}

#[test]
fn rmsprop_matches_optax() {
    check("rmsprop", optim::rmsprop(0.01));
    check(
        "rmsprop_momentum",
        optim::rmsprop_with(0.01, 0.95, 1e-6, Some(0.9)),
    );
}

#[test]
fn adam_step_by_hand() {
    // Two steps of Adam on one scalar, written out.
    let (b1, b2, eps, lr) = (0.9f64, 0.999f64, 1e-8f64, 0.01f64);
    let opt = optim::adam(lr as f32);
    let mut p = Tensor::from_vec(vec![1.0f32], [1]);
    let mut s = opt.init(&p);
    let (mut m, mut v, mut x) = (0.0f64, 0.0f64, 1.0f64);
    for t in 1..=2 {
        let g = 2.0 * x + 3.0; // d/dx (x^2 + 3x)
        m = b1 * m + (1.0 - b1) * g;
        v = b2 * v + (1.0 - b2) * g * g;
        let mh = m / (1.0 - b1.powi(t));
        let vh = v / (1.0 - b2.powi(t));
        x -= lr * mh / (vh.sqrt() + eps);
        let gt = grad(|p: &Tensor| (p.square() + p * 3.0).sum_all())(&p);
        p = opt.step(&p, &gt, &mut s);
        assert!(
            (p.item() as f64 - x).abs() < 1e-6,
            "step {t}: {} vs {x}",
            p.item()
        );
        let mu = s.slot("adam", "mu").unwrap()[0].item() as f64;
        assert!((mu - m).abs() < 1e-5, "mu {mu} vs {m}");
    }
}

#[test]
fn mismatched_gradients_are_an_error_and_change_nothing() {
    let opt = optim::adam(0.1);
    let p = start();
    let mut s = opt.init(&p);
    let bad = Params {
        w: Tensor::ones([3, 2]),
        b: Tensor::ones([3]),
    };
    let e = opt.try_update(&bad, &mut s, &p).err().unwrap().to_string();
    assert!(
        e.contains("`w`") && e.contains("[3, 2]") && e.contains("[2, 3]"),
        "{e}"
    );
    assert_eq!(s.step(), 0);
    assert_eq!(
        s.slot("adam", "mu").unwrap()[0].to_vec::<f32>(),
        vec![0.0; 6]
    );
    // A state made by another optimizer.
    let other = optim::sgd_momentum(0.1, 0.9, false).init(&p);
    let mut other = other;
    let g = grad(loss)(&p);
    let e = opt
        .try_update(&g, &mut other, &p)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("another optimizer"), "{e}");
}

#[test]
fn schedules_match_optax_formulas() {
    let s = optim::cosine_decay_schedule(0.5, 20, 0.1);
    for t in [0u64, 7, 20, 30] {
        let c = t.min(20) as f64;
        let want = 0.5 * (0.9 * 0.5 * (1.0 + (std::f64::consts::PI * c / 20.0).cos()) + 0.1);
        assert!((s.at(t) as f64 - want).abs() < 1e-7, "cosine at {t}");
    }
    let e = optim::exponential_decay(2.0, 4, 0.1, 3, false);
    assert_eq!(e.at(2), 2.0);
    assert!((e.at(7) as f64 - 0.2).abs() < 1e-7);
    let l = optim::linear_schedule(1.0, 0.0, 4, 0);
    assert_eq!([l.at(0), l.at(1), l.at(4), l.at(9)], [1.0, 0.75, 0.0, 0.0]);
}

#[test]
fn lbfgs_solves_rosenbrock_quadratics_and_trees() {
    common::setup();
    use wgrad::optim::{LbfgsOptions, lbfgs, try_lbfgs};
    // Rosenbrock from (-1.2, 1): L-BFGS needs a few dozen iterations (Adam thousands).
    let rosen = |p: &Tensor| {
        let (x, y) = (p.index(0), p.index(1));
        (1.0 - &x).square() + (y - x.square()).square() * 100.0
    };
    let r = lbfgs(
        rosen,
        &Tensor::from_vec(vec![-1.2f32, 1.0], [2]),
        LbfgsOptions::default(),
    );
    let p = r.params.to_vec::<f32>();
    assert!(r.converged, "{r:?}");
    assert!(
        (p[0] - 1.0).abs() < 1e-3 && (p[1] - 1.0).abs() < 2e-3,
        "{p:?}"
    );
    assert!(r.iterations < 60, "{} iterations", r.iterations);
    // A 20-dimensional SPD quadratic ½xᵀAx - bᵀx: the minimizer A⁻¹b.
    let m = Tensor::rand([20, 20], 3) - 0.5;
    let a = m.matmul(&m.mt()) + Tensor::eye(20);
    let b = Tensor::rand([20], 4);
    let q = |x: &Tensor| (x * a.matmul(x)).sum_all() * 0.5 - (x * &b).sum_all();
    let r = lbfgs(q, &Tensor::zeros([20]), LbfgsOptions::default());
    let want = wgrad::linalg::solve(&a, &b).to_vec::<f32>();
    common::close(&r.params.to_vec::<f32>(), &want, 1e-3, 1e-3).unwrap();
    // A tree of parameters: a line fitted by least squares.
    let xs = Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0], [4]);
    let ys = Tensor::from_vec(vec![1.0f32, 3.1, 4.9, 7.0], [4]);
    let fit = |p: &(Tensor, Tensor)| (&p.0 * &xs + &p.1 - &ys).square().sum_all();
    let r = lbfgs(
        fit,
        &(Tensor::scalar(0.0), Tensor::scalar(0.0)),
        LbfgsOptions::default(),
    );
    assert!((r.params.0.item() - 1.98).abs() < 1e-3 && (r.params.1.item() - 1.03).abs() < 1e-3);
    // A NaN at the start is an error, not a silent result.
    let e = try_lbfgs(
        |p: &Tensor| p.log().sum_all(),
        &Tensor::scalar(-1.0),
        LbfgsOptions::default(),
    );
    assert!(e.unwrap_err().to_string().contains("lbfgs"));
}
