//! inf, -inf, NaN, ±0 and the values around them through every unary, binary and reduction
//! op, compared with a host reference that follows IEEE (and JAX where IEEE leaves a choice).

use crate::common;

use wgrad::prelude::*;

const INF: f32 = f32::INFINITY;

/// An op's result and its host reference.
type Unary = (&'static str, Tensor, Box<dyn Fn(f64) -> f64>);
type Binary = (&'static str, Tensor, Box<dyn Fn(f64, f64) -> f64>);
type Reduction = (&'static str, Tensor, Box<dyn Fn(&Vec<f32>) -> f64>);

fn specials() -> Vec<f32> {
    vec![
        INF,
        -INF,
        f32::NAN,
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        -0.5,
        2.5,
        -3.5,
        1e-30,
        1e30,
        -1e30,
    ]
}

/// Equal as IEEE results: both NaN, or the same value (0 == -0), or within `tol` relatively.
fn same(got: f32, want: f64, tol: f64) -> bool {
    if want.is_nan() {
        return got.is_nan();
    }
    if want.is_infinite() || want == 0.0 {
        return got as f64 == want;
    }
    ((got as f64) - want).abs() <= tol * want.abs().max(1e-30)
}

fn check(
    name: &str,
    xs: &[f32],
    got: &[f32],
    want: impl Fn(usize) -> f64,
    tol: f64,
) -> Vec<String> {
    let mut bad = vec![];
    for (k, &g) in got.iter().enumerate() {
        let w = want(k);
        if !same(g, w, tol) {
            bad.push(format!("{name}({}) = {g}, want {w}", xs[k]));
        }
    }
    bad
}

#[test]
fn unary_ops_on_special_values() {
    common::setup();
    let xs = specials();
    let x = Tensor::from_vec(xs.clone(), [xs.len()]);
    let f = |v: f32| v as f64;
    let sigmoid = |v: f64| {
        if v >= 0.0 {
            1.0 / (1.0 + (-v).exp())
        } else {
            v.exp() / (1.0 + v.exp())
        }
    };
    let cases: Vec<Unary> = vec![
        ("neg", x.neg(), Box::new(|v: f64| -v)),
        ("abs", x.abs(), Box::new(f64::abs)),
        ("exp", x.exp(), Box::new(f64::exp)),
        ("log", x.log(), Box::new(f64::ln)),
        ("sqrt", x.sqrt(), Box::new(f64::sqrt)),
        ("sin", x.sin(), Box::new(f64::sin)),
        ("cos", x.cos(), Box::new(f64::cos)),
        ("tanh", x.tanh(), Box::new(f64::tanh)),
        ("sigmoid", x.sigmoid(), Box::new(sigmoid)),
        (
            "sign",
            x.sign(),
            Box::new(|v: f64| {
                if v.is_nan() {
                    v
                } else if v == 0.0 {
                    0.0
                } else {
                    v.signum()
                }
            }),
        ),
        ("log1p", x.log1p(), Box::new(libm::log1p)),
        ("expm1", x.expm1(), Box::new(libm::expm1)),
        ("erf", x.erf(), Box::new(libm::erf)),
        ("erfc", x.erfc(), Box::new(libm::erfc)),
        ("tan", x.tan(), Box::new(libm::tan)),
        ("atan", x.atan(), Box::new(libm::atan)),
        ("asin", x.asin(), Box::new(libm::asin)),
        ("acos", x.acos(), Box::new(libm::acos)),
        ("sinh", x.sinh(), Box::new(libm::sinh)),
        ("cosh", x.cosh(), Box::new(libm::cosh)),
        ("asinh", x.asinh(), Box::new(libm::asinh)),
        ("acosh", x.acosh(), Box::new(libm::acosh)),
        ("atanh", x.atanh(), Box::new(libm::atanh)),
        ("ceil", x.ceil(), Box::new(f64::ceil)),
        ("trunc", x.trunc(), Box::new(f64::trunc)),
        ("lgamma", x.lgamma(), Box::new(libm::lgamma)),
        ("floor", x.floor(), Box::new(f64::floor)),
        ("round", x.round(), Box::new(f64::round_ties_even)),
        (
            "relu",
            x.relu(),
            Box::new(|v: f64| if v.is_nan() { v } else { v.max(0.0) }),
        ),
        (
            "softplus",
            x.softplus(),
            Box::new(|v: f64| if v > 30.0 { v } else { v.exp().ln_1p() }),
        ),
    ];
    let mut bad = vec![];
    for (name, t, reference) in &cases {
        let got = t.to_vec::<f32>();
        bad.extend(check(
            name,
            &xs,
            &got,
            |k| reference(f(xs[k])) as f32 as f64,
            4e-6,
        ));
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn binary_ops_on_special_values() {
    common::setup();
    let s = specials();
    let (mut a, mut b) = (vec![], vec![]);
    for &p in &s {
        for &q in &s {
            a.push(p);
            b.push(q);
        }
    }
    let n = a.len();
    let (ta, tb) = (
        Tensor::from_vec(a.clone(), [n]),
        Tensor::from_vec(b.clone(), [n]),
    );
    let nan_max = |p: f64, q: f64| {
        if p.is_nan() || q.is_nan() {
            f64::NAN
        } else {
            p.max(q)
        }
    };
    let nan_min = |p: f64, q: f64| {
        if p.is_nan() || q.is_nan() {
            f64::NAN
        } else {
            p.min(q)
        }
    };
    let cases: Vec<Binary> = vec![
        ("add", &ta + &tb, Box::new(|p, q| p + q)),
        ("sub", &ta - &tb, Box::new(|p, q| p - q)),
        ("mul", &ta * &tb, Box::new(|p, q| p * q)),
        ("div", &ta / &tb, Box::new(|p, q| p / q)),
        ("pow", ta.pow(&tb), Box::new(f64::powf)),
        ("maximum", ta.maximum(&tb), Box::new(nan_max)),
        ("minimum", ta.minimum(&tb), Box::new(nan_min)),
        ("atan2", ta.atan2(&tb), Box::new(libm::atan2)),
        (
            "logaddexp",
            ta.logaddexp(&tb),
            Box::new(|p: f64, q: f64| {
                if p == q {
                    p + std::f64::consts::LN_2
                } else {
                    p.max(q) + (-(p - q).abs()).exp().ln_1p()
                }
            }),
        ),
        (
            "xlogy",
            ta.xlogy(&tb),
            Box::new(|p: f64, q: f64| if p == 0.0 { 0.0 } else { p * q.ln() }),
        ),
    ];
    let mut bad = vec![];
    for (name, t, reference) in &cases {
        let got = t.to_vec::<f32>();
        for k in 0..n {
            let w = reference(a[k] as f64, b[k] as f64) as f32 as f64;
            if !same(got[k], w, 4e-6) {
                bad.push(format!("{name}({}, {}) = {}, want {w}", a[k], b[k], got[k]));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn reductions_over_special_values() {
    common::setup();
    let rows: Vec<Vec<f32>> = vec![
        vec![INF, 1.0, 2.0],
        vec![INF, -INF, 0.0],
        vec![f32::NAN, 1.0, INF],
        vec![0.0, INF, 3.0],
        vec![-0.0, -0.0, -0.0],
        vec![-INF, -INF, -INF],
        vec![1e30, 1e30, 1e30],
    ];
    let x = Tensor::from_vec(rows.concat(), [rows.len(), 3]);
    let nan_fold = |init: f64, f: fn(f64, f64) -> f64| {
        move |r: &Vec<f32>| {
            r.iter().fold(init, |a, &v| {
                if a.is_nan() || v.is_nan() {
                    f64::NAN
                } else {
                    f(a, v as f64)
                }
            })
        }
    };
    let cases: Vec<Reduction> = vec![
        (
            "sum",
            x.sum_axes(1),
            Box::new(|r: &Vec<f32>| r.iter().map(|&v| v as f64).sum::<f64>() as f32 as f64),
        ),
        (
            "prod",
            x.prod_axes(1),
            Box::new(|r: &Vec<f32>| r.iter().map(|&v| v as f64).product::<f64>() as f32 as f64),
        ),
        (
            "max",
            x.max_axes(1),
            Box::new(nan_fold(f64::NEG_INFINITY, f64::max)),
        ),
        (
            "min",
            x.min_axes(1),
            Box::new(nan_fold(f64::INFINITY, f64::min)),
        ),
    ];
    let mut bad = vec![];
    for (name, t, reference) in &cases {
        let got = t.to_vec::<f32>();
        for (k, r) in rows.iter().enumerate() {
            let w = reference(r);
            if !same(got[k], w, 4e-6) {
                bad.push(format!("{name}({r:?}) = {}, want {w}", got[k]));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
