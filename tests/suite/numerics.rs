//! Accuracy of the transcendental kernels against float64 host references, over sweeps that
//! include the hard regions (tiny arguments, the tails).

use crate::common;

use wgrad::prelude::*;

/// Worst error in units of the f32 spacing at the reference value.
fn worst_ulp(got: &[f32], want: &[f64]) -> (f64, usize) {
    let mut worst = (0.0, 0);
    for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
        let spacing = ((w as f32).abs().max(f32::MIN_POSITIVE) * f32::EPSILON) as f64;
        let e = (g as f64 - w).abs() / spacing;
        if e > worst.0 || e.is_nan() {
            worst = (e, k);
        }
    }
    worst
}

fn sweep(lo: f64, hi: f64, n: usize) -> Vec<f32> {
    (0..n)
        .map(|k| (lo + (hi - lo) * k as f64 / (n - 1) as f64) as f32)
        .collect()
}

/// Log-spaced magnitudes of both signs, from 1e-30 to `hi`.
fn tiny_to(hi: f64, n: usize) -> Vec<f32> {
    let mut v = vec![];
    for k in 0..n {
        let m = (1e-30f64).ln() + ((hi.ln() - (1e-30f64).ln()) * k as f64 / (n - 1) as f64);
        v.push(m.exp() as f32);
        v.push(-(m.exp()) as f32);
    }
    v
}

fn check(
    name: &str,
    xs: &[f32],
    f: impl Fn(&Tensor) -> Tensor,
    reference: impl Fn(f64) -> f64,
    max_ulp: f64,
) {
    let got = f(&Tensor::from_vec(xs.to_vec(), [xs.len()])).to_vec::<f32>();
    let want: Vec<f64> = xs.iter().map(|&x| reference(x as f64)).collect();
    let (e, k) = worst_ulp(&got, &want);
    assert!(
        e <= max_ulp,
        "{name}: {e:.1} ulp at x = {:e}: got {:e}, want {:e}",
        xs[k],
        got[k],
        want[k]
    );
    println!("{name}: worst {e:.2} ulp over {} points", xs.len());
}

#[test]
fn log1p_expm1_are_accurate_near_zero_and_beyond() {
    common::setup();
    let mut xs = tiny_to(0.9, 400);
    xs.extend(sweep(-0.99, 50.0, 2000));
    check("log1p", &xs, |x| x.log1p(), libm::log1p, 4.0);
    let mut xs = tiny_to(0.9, 400);
    xs.extend(sweep(-30.0, 30.0, 2000));
    check("expm1", &xs, |x| x.expm1(), libm::expm1, 4.0);
}

#[test]
fn erf_and_erfc_are_accurate_including_the_tails() {
    common::setup();
    let mut xs = tiny_to(1.0, 300);
    xs.extend(sweep(-6.0, 6.0, 4001));
    check("erf", &xs, |x| x.erf(), libm::erf, 4.0);
    // erfc: relative accuracy far into the tail, down to where it leaves the normal range.
    let xs = sweep(-5.0, 9.0, 4001);
    check("erfc", &xs, |x| x.erfc(), libm::erfc, 8.0);
    // gelu's negative tail: x/2·erfc(-x/√2) has no cancellation (1 + erf would lose every
    // digit past x = -6); what remains is the rounding of x/√2 to f32, which erfc amplifies
    // by 2z² (as in any f32 implementation, JAX's included): 64 ulp covers z up to 5.7.
    let xs = sweep(-8.0, 4.0, 2001);
    check(
        "gelu",
        &xs,
        |x| x.gelu(),
        |x| 0.5 * x * libm::erfc(-x / std::f64::consts::SQRT_2),
        64.0,
    );
}

#[test]
fn exp_log_tanh_sigmoid_are_accurate() {
    common::setup();
    let xs = sweep(-87.0, 88.0, 20001);
    check("exp", &xs, |x| x.exp(), f64::exp, 2.0);
    let mut xs: Vec<f32> = sweep(-80.0, 88.0, 20001).iter().map(|v| v.exp()).collect();
    xs.extend(sweep(0.999, 1.001, 2001));
    check("log", &xs, |x| x.log(), f64::ln, 2.0);
    let mut xs = tiny_to(20.0, 400);
    xs.extend(sweep(-10.0, 10.0, 4001));
    check("tanh", &xs, |x| x.tanh(), f64::tanh, 4.0);
    check(
        "sigmoid",
        &sweep(-80.0, 30.0, 4001),
        |x| x.sigmoid(),
        |x| 1.0 / (1.0 + (-x).exp()),
        4.0,
    );
}

#[test]
fn sin_cos_are_accurate_over_the_whole_range() {
    common::setup();
    // Log-spaced magnitudes from 1e-6 to 3e38, both signs, and the cases.
    let mut xs = vec![
        1e6f32, 1e9, 1e15, 3e38, -3e38, 65_535.0, 65_536.0, 105_615.0,
    ];
    for k in 0..6000 {
        let m = (1e-6f64).ln() + (3e38f64.ln() - (1e-6f64).ln()) * k as f64 / 5999.0;
        let v = m.exp() as f32;
        xs.push(v);
        xs.push(-v * 1.000_000_1);
    }
    let t = Tensor::from_vec(xs.clone(), [xs.len()]);
    for (name, got, f) in [
        ("sin", t.sin().to_vec::<f32>(), f64::sin as fn(f64) -> f64),
        ("cos", t.cos().to_vec::<f32>(), f64::cos),
    ] {
        let mut worst = (0.0f64, 0usize);
        for (k, (&x, &g)) in xs.iter().zip(&got).enumerate() {
            let want = f(x as f64);
            // ulp of the result, but no finer than 2^-30 (results near a zero of sin/cos).
            let spacing = ((want.abs() as f32).max(2f32.powi(-30)) * f32::EPSILON) as f64;
            let e = (g as f64 - want).abs() / spacing;
            if e > worst.0 || e.is_nan() {
                worst = (e, k);
            }
        }
        let k = worst.1;
        assert!(
            worst.0 <= 4.0,
            "{name}: {:.1} ulp at x = {:e}: got {:e}, want {:e}",
            worst.0,
            xs[k],
            got[k],
            f(xs[k] as f64)
        );
        println!(
            "{name}: worst {:.2} ulp over {} points up to 3e38",
            worst.0,
            xs.len()
        );
    }
    let special = Tensor::from_vec(vec![f32::INFINITY, f32::NAN], [2]);
    assert!(special.sin().to_vec::<f32>().iter().all(|v| v.is_nan()));
}

#[test]
fn special_values() {
    common::setup();
    let x = Tensor::from_vec(vec![0.0f32, -1.0, f32::INFINITY, 40.0, -40.0], [5]);
    let l = x.log1p().to_vec::<f32>();
    assert_eq!(l[0], 0.0);
    assert_eq!(l[1], f32::NEG_INFINITY, "log1p(-1) = -inf");
    assert_eq!(l[2], f32::INFINITY);
    let e = x.expm1().to_vec::<f32>();
    assert_eq!(e[4], -1.0);
    assert_eq!(e[0], 0.0);
    let erf = x.erf().to_vec::<f32>();
    assert_eq!((erf[3], erf[4]), (1.0, -1.0));
    let erfc = x.erfc().to_vec::<f32>();
    assert_eq!((erfc[3], erfc[4]), (0.0, 2.0));
}

#[test]
fn logsumexp_of_infinities_is_what_jax_gives() {
    common::setup();
    let inf = f32::INFINITY;
    let lse = |v: Vec<f32>| Tensor::from_vec(v.clone(), [v.len()]).logsumexp(0).item();
    // All −inf: log(0) = −inf (the max shift must not make it −inf − −inf = NaN).
    assert_eq!(lse(vec![-inf, -inf]), -inf);
    // A +inf element: +inf; −inf beside finite values contributes nothing.
    assert_eq!(lse(vec![inf, 1.0]), inf);
    assert!((lse(vec![-inf, 0.0, 0.0]) - 2f32.ln()).abs() < 1e-6);
    // NaN propagates.
    assert!(lse(vec![f32::NAN, 1.0]).is_nan());
    // Along an axis, one row of −infs beside a finite row.
    let x = Tensor::from_vec(vec![-inf, -inf, 0.0, 0.0], [2, 2]);
    let v = x.logsumexp(1).to_vec::<f32>();
    assert_eq!(v[0], -inf);
    assert!((v[1] - 2f32.ln()).abs() < 1e-6);
    // The gradient of a finite row is the softmax, untouched by the fix.
    let g = grad(|x: &Tensor| x.logsumexp(0))(&Tensor::from_vec(vec![0.0f32, 0.0], [2]));
    assert_eq!(g.to_vec::<f32>(), vec![0.5, 0.5]);
}
