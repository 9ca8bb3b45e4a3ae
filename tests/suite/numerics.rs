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

#[test]
fn trigonometric_and_hyperbolic_inverses_are_accurate() {
    common::setup();
    let mut xs = tiny_to(1e4, 300);
    xs.extend(sweep(-10.0, 10.0, 4001));
    check("atan", &xs, |x| x.atan(), libm::atan, 3.0);
    check("sinh", &tiny_to(89.0, 600), |x| x.sinh(), libm::sinh, 4.0);
    check(
        "cosh",
        &sweep(-89.0, 89.0, 4001),
        |x| x.cosh(),
        libm::cosh,
        4.0,
    );
    let mut xs = tiny_to(3e38, 600);
    xs.extend(sweep(-10.0, 10.0, 2001));
    check("asinh", &xs, |x| x.asinh(), libm::asinh, 4.0);
    let mut xs = tiny_to(1.0, 400);
    xs.extend(sweep(-1.0, 1.0, 4001));
    check("asin", &xs, |x| x.asin(), libm::asin, 3.0);
    check("acos", &xs, |x| x.acos(), libm::acos, 3.0);
    // atanh's poles at ±1 are in `inverse_trigonometric_special_values`.
    xs.retain(|x| x.abs() < 1.0);
    check("atanh", &xs, |x| x.atanh(), libm::atanh, 4.0);
    let mut xs: Vec<f32> = tiny_to(3e38, 600)
        .into_iter()
        .map(|v| 1.0 + v.abs())
        .collect();
    xs.extend(sweep(1.0, 1.01, 1001));
    check("acosh", &xs, |x| x.acosh(), libm::acosh, 4.0);
    // tan away from its poles (where one ulp of x moves the result by many ulp).
    let xs: Vec<f32> = sweep(-20.0, 20.0, 8001)
        .into_iter()
        .filter(|&x| {
            (x as f64 / std::f64::consts::PI - 0.5)
                .rem_euclid(1.0)
                .min(1.0 - (x as f64 / std::f64::consts::PI - 0.5).rem_euclid(1.0))
                > 0.01
        })
        .collect();
    check("tan", &xs, |x| x.tan(), libm::tan, 4.0);
}

#[test]
fn inverse_trigonometric_special_values() {
    common::setup();
    let inf = f32::INFINITY;
    let x = Tensor::from_vec(vec![1.5f32, -1.5, f32::NAN, inf, -0.0], [5]);
    let v = |t: Tensor| t.to_vec::<f32>();
    let asin = v(x.asin());
    assert!(asin[0].is_nan() && asin[1].is_nan() && asin[2].is_nan());
    assert!(v(x.acos())[0].is_nan());
    assert_eq!(v(x.atan())[3], std::f32::consts::FRAC_PI_2);
    assert!(v(x.atan())[4].is_sign_negative(), "atan(-0) = -0");
    let at = v(Tensor::from_vec(vec![1.0f32, -1.0], [2]).atanh());
    assert_eq!(at, vec![inf, -inf]);
    assert!(v(Tensor::scalar(0.5).acosh())[0].is_nan());
    assert_eq!(v(x.sinh())[3], inf);
    assert_eq!(v(Tensor::scalar(-inf).cosh())[0], inf);
    // atan2's signed zeros and infinities, as C's (and jnp.arctan2).
    let ys = Tensor::from_vec(
        vec![0.0f32, -0.0, 0.0, -0.0, inf, inf, -inf, 1.0, 1.0, f32::NAN],
        [10],
    );
    let xs = Tensor::from_vec(
        vec![0.0f32, 0.0, -0.0, -0.0, inf, -inf, 1.0, 0.0, -inf, 1.0],
        [10],
    );
    let got = v(ys.atan2(&xs));
    let want: Vec<f32> = (0..10)
        .map(|k| {
            let (y, x) = (ys.to_vec::<f32>()[k], xs.to_vec::<f32>()[k]);
            libm::atan2(y as f64, x as f64) as f32
        })
        .collect();
    for k in 0..9 {
        assert_eq!(
            got[k].to_bits(),
            want[k].to_bits(),
            "atan2 case {k}: {} vs {}",
            got[k],
            want[k]
        );
    }
    assert!(got[9].is_nan());
}

#[test]
fn atan2_is_accurate_in_every_quadrant() {
    common::setup();
    let mut ys = vec![];
    let mut xs = vec![];
    for i in 0..101 {
        for j in 0..101 {
            ys.push((i as f32 - 50.0) * 0.37);
            xs.push((j as f32 - 50.0) * 0.29 + 1e-3);
        }
    }
    let n = ys.len();
    let got = Tensor::from_vec(ys.clone(), [n])
        .atan2(Tensor::from_vec(xs.clone(), [n]))
        .to_vec::<f32>();
    let want: Vec<f64> = ys
        .iter()
        .zip(&xs)
        .map(|(&y, &x)| libm::atan2(y as f64, x as f64))
        .collect();
    let (e, k) = worst_ulp(&got, &want);
    assert!(e <= 4.0, "atan2: {e:.1} ulp at ({}, {})", ys[k], xs[k]);
    println!("atan2: worst {e:.2} ulp over {n} points");
}

/// ψ^(n)(x) in float64 by direct summation of (-1)^(n+1) n! Σ 1/(x+k)^(n+1) to 10^5 terms plus
/// the integral of the rest.
fn polygamma64(n: i32, x: f64) -> f64 {
    let s = (n + 1) as f64;
    let mut acc = 0.0;
    let m = 100_000;
    for k in 0..m {
        acc += (x + k as f64).powf(-s);
    }
    let y = x + m as f64;
    acc += y.powf(1.0 - s) / (s - 1.0) - 0.5 * y.powf(-s);
    let fact: f64 = (1..=n).map(|j| j as f64).product();
    if n % 2 == 1 { fact * acc } else { -fact * acc }
}

#[test]
fn lgamma_digamma_polygamma_are_accurate() {
    common::setup();
    // Known values first (independent of any series): Γ(1/2) = √π, ψ(1) = -γ, ψ'(1) = π²/6,
    // ψ''(1) = -2 ζ(3).
    let pi = std::f32::consts::PI;
    let lg = Tensor::from_vec(vec![0.5f32, 1.0, 2.0, 10.0], [4])
        .lgamma()
        .to_vec::<f32>();
    assert!((lg[0] - pi.sqrt().ln()).abs() < 2e-7, "{lg:?}");
    assert_eq!((lg[1], lg[2]), (0.0, 0.0), "log Γ is exactly 0 at 1 and 2");
    assert!((lg[3] / 362_880f32.ln() - 1.0).abs() < 2e-7);
    let one = Tensor::scalar(1.0);
    assert!((one.digamma().item() + 0.577_215_7).abs() < 2e-7);
    assert!((one.polygamma(1).item() - pi * pi / 6.0).abs() < 4e-7);
    assert!((one.polygamma(2).item() + 2.0 * 1.202_056_9).abs() < 1e-6);

    // lgamma: relative to max(|log Γ|, 1) (its zeros at 1 and 2 make a pure ulp measure
    // meaningless in f32, as in every f32 implementation).
    let mut xs = tiny_to(1e30, 300)
        .into_iter()
        .map(f32::abs)
        .collect::<Vec<_>>();
    xs.extend(sweep(0.01, 12.0, 6000));
    let got = Tensor::from_vec(xs.clone(), [xs.len()])
        .lgamma()
        .to_vec::<f32>();
    let mut worst = (0.0f64, 0usize);
    for (k, (&x, &g)) in xs.iter().zip(&got).enumerate() {
        let w = libm::lgamma(x as f64);
        let e = (g as f64 - w).abs() / (w.abs().max(1.0) * f32::EPSILON as f64);
        if e > worst.0 || e.is_nan() {
            worst = (e, k);
        }
    }
    assert!(
        worst.0 <= 4.0,
        "lgamma: {:.1} ulp at x = {:e}",
        worst.0,
        xs[worst.1]
    );
    println!(
        "lgamma: worst {:.2} ulp of max(|y|, 1) over {} points",
        worst.0,
        xs.len()
    );
    // Negative non-integers through the reflection: absolute accuracy.
    let neg: Vec<f32> = sweep(-5.9, -0.1, 59)
        .into_iter()
        .filter(|x| (x - x.round()).abs() > 0.05)
        .collect();
    let got = Tensor::from_vec(neg.clone(), [neg.len()])
        .lgamma()
        .to_vec::<f32>();
    for (&x, &g) in neg.iter().zip(&got) {
        let w = libm::lgamma(x as f64);
        assert!(
            (g as f64 - w).abs() < 2e-5 * w.abs().max(1.0),
            "lgamma({x}) = {g}, want {w}"
        );
    }
    // digamma: the same measure (its zero near 1.4616).
    let mut xs = tiny_to(1e30, 300)
        .into_iter()
        .map(f32::abs)
        .collect::<Vec<_>>();
    xs.extend(sweep(0.01, 30.0, 6000));
    let got = Tensor::from_vec(xs.clone(), [xs.len()])
        .digamma()
        .to_vec::<f32>();
    let mut worst = (0.0f64, 0usize);
    for (k, (&x, &g)) in xs.iter().zip(&got).enumerate() {
        let w = common::digamma64(x as f64);
        let e = (g as f64 - w).abs() / (w.abs().max(1.0) * f32::EPSILON as f64);
        if e > worst.0 || e.is_nan() {
            worst = (e, k);
        }
    }
    assert!(
        worst.0 <= 6.0,
        "digamma: {:.1} ulp at x = {:e}",
        worst.0,
        xs[worst.1]
    );
    println!(
        "digamma: worst {:.2} ulp of max(|y|, 1) over {} points",
        worst.0,
        xs.len()
    );
    // polygamma(1), (2), (3): no zeros, so plain relative error.
    let xs = sweep(0.05, 40.0, 400);
    for n in 1..=3 {
        let want: Vec<f64> = xs.iter().map(|&x| polygamma64(n, x as f64)).collect();
        let got = Tensor::from_vec(xs.clone(), [xs.len()])
            .polygamma(n as u32)
            .to_vec::<f32>();
        let (e, k) = worst_ulp(&got, &want);
        assert!(e <= 8.0, "polygamma({n}): {e:.1} ulp at x = {}", xs[k]);
        println!("polygamma({n}): worst {e:.2} ulp over {} points", xs.len());
    }
    // Poles and NaN, as JAX: log Γ = +inf at 0 and the negative integers, ψ NaN there.
    let p = Tensor::from_vec(vec![0.0f32, -1.0, -3.0, f32::NAN], [4]);
    let l = p.lgamma().to_vec::<f32>();
    assert_eq!(&l[..3], &[f32::INFINITY; 3]);
    assert!(l[3].is_nan());
    assert!(p.digamma().to_vec::<f32>().iter().all(|v| v.is_nan()));
}
