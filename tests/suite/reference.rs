//! The reference interpreter (`wgrad::reference`) against the device: every primitive family,
//! and the graphs the transforms build from them (derivatives, batching, loops), evaluated on
//! the host in float64 before the device computes the same graph. Also a directional
//! derivative of the reference by central differences in float64, against `grad`.

use crate::common::setup;
use wgrad::prelude::*;

/// The reference's value of `t` (evaluated first), then the device's; they must agree.
#[track_caller]
fn agrees(name: &str, t: &Tensor, tol: f64) {
    let want = wgrad::reference::values(t).unwrap_or_else(|e| panic!("{name}: {e}"));
    let got: Vec<f64> = t
        .cast(DType::F32)
        .to_vec::<f32>()
        .into_iter()
        .map(f64::from)
        .collect();
    assert_eq!(got.len(), want.len(), "{name}: length");
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        let ok = (g.is_nan() && w.is_nan()) || (g - w).abs() <= tol * scale;
        assert!(ok, "{name}: element {k}: device {g}, reference {w}");
    }
}

fn data(shape: &[usize], seed: u64) -> Tensor {
    // Fresh host data (not a random-number node), so the graph under test starts at leaves.
    let v = Tensor::randn(shape, seed).to_vec::<f32>();
    Tensor::from_vec(v, shape)
}

#[test]
fn elementwise_families_agree() {
    setup();
    let x = data(&[5, 7], 1);
    let y = data(&[5, 7], 2);
    let pos = x.abs() + 0.5;
    let cases: Vec<(&str, Tensor)> = vec![
        ("sin cos tanh", x.sin() * y.cos() + x.tanh()),
        ("exp log sqrt", pos.log() + pos.sqrt() + x.exp()),
        ("sigmoid erf erfc", x.sigmoid() + x.erf() - y.erfc()),
        ("erfinv", (x.tanh() * 0.9).erfinv()),
        (
            "lgamma digamma",
            pos.lgamma() + pos.digamma() + pos.polygamma(1),
        ),
        (
            "asin atan sinh",
            (x.tanh() * 0.9).asin() + x.atan() + x.sinh(),
        ),
        (
            "rounding",
            x.floor() + (&x * 3.0).round() + x.ceil() + x.trunc() + x.sign(),
        ),
        (
            "binary",
            x.maximum(&y) - x.minimum(&y) + x.atan2(&y) + x.logaddexp(&y),
        ),
        ("pow div", pos.pow(&y) + &x / &pos + pos.xlogy(&pos)),
        ("compare select", where_(&x.greater(&y), &x, &(&y * 2.0))),
        (
            "classify cast",
            x.is_finite().cast(DType::F32) + (&x * 4.0).cast(DType::I32).cast(DType::F32),
        ),
        ("broadcast", &x + &y.sum_keepdim([0])),
    ];
    for (name, t) in &cases {
        agrees(name, t, 2e-5);
    }
}

#[test]
fn reductions_movement_and_matmul_agree() {
    setup();
    let x = data(&[4, 6, 5], 3);
    let w = data(&[5, 3], 4);
    let cases: Vec<(&str, Tensor)> = vec![
        ("sum axes", x.sum_axes([0, 2])),
        (
            "max min prod",
            x.max_axes([1]) + x.min_axes([1]) + (x.tanh() + 1.5).prod_axes([1]),
        ),
        (
            "transpose slice",
            x.transpose([2, 0, 1]).slice_axis(1, 1..3),
        ),
        ("pad flip", x.pad([1, 0, 1], [0, 2, 1]).flip([0, 2])),
        ("concat", concat(&[x.clone(), x.exp()], 1)),
        ("matmul", x.matmul(&w)),
        ("wide sum", data(&[70_001], 5).sum_all()),
        ("softmax", x.softmax(-1)),
    ];
    for (name, t) in &cases {
        agrees(name, t, 2e-5);
    }
}

#[test]
fn indexing_scans_sort_and_windows_agree() {
    setup();
    let x = data(&[6, 9], 6);
    let idx = Tensor::from_vec(vec![3i32, 0, -1, 5, 5, 2], [6]);
    let img = data(&[2, 3, 8, 8], 7);
    let k = data(&[4, 3, 3, 3], 8);
    let cases: Vec<(&str, Tensor)> = vec![
        ("gather", x.take(&idx, 0)),
        ("scatter_add", x.scatter_add(&idx, &data(&[6, 9], 9), 0)),
        ("cumsum cummax", x.cumsum(1) + x.cummax(0)),
        (
            "logcumsumexp cumprod",
            x.logcumsumexp(1) + (x.tanh() + 1.0).cumprod(1),
        ),
        ("sort", x.sort(-1)),
        ("argsort", x.argsort(-1).cast(DType::F32)),
        (
            "conv2d",
            img.conv2d(&k, Conv2dOptions::default().stride(2).padding(1)),
        ),
        ("max_pool", img.max_pool2d([2, 2], Some([2, 2]))),
        ("uniform", Tensor::rand([3, 5], 11) + 0.0),
    ];
    for (name, t) in &cases {
        agrees(name, t, 2e-5);
    }
}

#[test]
fn linear_algebra_agrees() {
    setup();
    let m = data(&[3, 6, 6], 12);
    let spd = m.matmul(&m.mt()) + Tensor::eye(6) * 6.0;
    let b = data(&[3, 6, 2], 13);
    let cases: Vec<(&str, Tensor)> = vec![
        ("cholesky", wgrad::linalg::cholesky(&spd)),
        (
            "triangular_solve",
            wgrad::linalg::triangular_solve(&wgrad::linalg::cholesky(&spd), &b, true),
        ),
        ("solve", wgrad::linalg::solve(&m, &b)),
        ("det", wgrad::linalg::det(&m)),
        ("eigvalsh", wgrad::linalg::eigvalsh(&spd)),
        ("not positive definite", wgrad::linalg::cholesky(&m)),
    ];
    for (name, t) in &cases {
        agrees(name, t, 1e-4);
    }
    // Eigenvectors up to sign: V diag(sqrt λ) Vᵀ does not depend on it.
    let (w, v) = wgrad::linalg::eigh(&spd);
    let root = (&v * &w.sqrt().expand_dims(-2)).matmul(&v.mt());
    agrees("eigh", &root, 1e-4);
}

#[test]
fn loops_custom_rules_and_transform_graphs_agree() {
    setup();
    let w = data(&[4, 4], 14);
    let xs = data(&[7, 4], 15);
    let c0 = data(&[4], 16);
    let rnn = |w: &Tensor| {
        let (c, ys) = scan(
            |c: &Tensor, x: &Tensor| {
                let n = (c.matmul(w) + x).tanh();
                (n.clone(), n.sum_all())
            },
            &c0,
            &xs,
            false,
        );
        c.sum_all() + (ys * 0.5).sum_all()
    };
    agrees("scan", &rnn(&w), 2e-5);
    agrees("grad of scan", &grad(rnn)(&w), 1e-4);
    let back = scan(|c: &Tensor, x: &Tensor| (c + x, c * x), &c0, &xs, true);
    agrees("reverse scan carry", &back.0, 2e-5);
    agrees("reverse scan outputs", &back.1, 2e-5);
    let f = fori_loop(0, 5, |i, c: &Tensor| c * 0.9 + i.cast(DType::F32), &c0);
    agrees("fori_loop", &f, 2e-5);
    let sq = custom_vjp(
        |x: &Tensor| (x.sin(), x.clone()),
        |x: &Tensor, ct: &Tensor| ct * x.cos(),
    );
    let g = grad(move |x: &Tensor| sq(x).sum_all())(&c0);
    agrees("custom_vjp and its rule", &g, 2e-5);
    let h = hessian(|x: &Tensor| (x.sin() * x.sum_all()).sum_all())(&c0);
    agrees("hessian", &h, 1e-4);
    let batched = vmap(|x: &Tensor| x.matmul(&w).softmax(-1), 0)(&xs);
    agrees("vmap", &batched, 2e-5);
}

/// The reference differentiated numerically: central differences of its float64 values along
/// a direction `v` (the step is a float64 constant of the graph), against `⟨grad, v⟩`.
#[test]
fn grad_matches_float64_differences_of_the_reference() {
    setup();
    let x = data(&[3, 5], 17);
    let v = data(&[3, 5], 18);
    let w = data(&[5, 5], 19);
    let f = |x: &Tensor| {
        let h = x.matmul(&w).tanh();
        (h.softmax(-1) * x.sin()).sum_all() + h.logsumexp(0).sum_all()
    };
    // The step is a constant of the graph; the reference adds it in float64.
    let h = 1e-4f32;
    let plus = wgrad::reference::values(&f(&(&x + &(&v * h)))).unwrap()[0];
    let minus = wgrad::reference::values(&f(&(&x - &(&v * h)))).unwrap()[0];
    let fd = (plus - minus) / (2.0 * f64::from(h));
    let g = grad(f)(&x);
    let dot: f64 = g
        .to_vec::<f32>()
        .iter()
        .zip(v.to_vec::<f32>())
        .map(|(a, b)| f64::from(*a) * f64::from(b))
        .sum();
    assert!(
        (dot - fd).abs() <= 1e-4 * fd.abs().max(1.0),
        "grad·v {dot}, differences {fd}"
    );
}
