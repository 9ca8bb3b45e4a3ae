//! Benchmark rows of the numerics vocabulary (issue 18): linear algebra, sorting, scatter,
//! einsum and FFT, each checked against a value a wrong kernel could not produce.

use super::{Workload, normal, time};
use wgrad::prelude::*;

/// `batch` SPD matrices `m mᵀ / n + I` of size `n`.
fn spd(batch: usize, n: usize, seed: u64) -> Tensor {
    let m = normal(&[batch, n, n], 1.0, seed);
    let a = m.matmul(&m.mt()) / n as f32 + Tensor::eye(n);
    a.realize();
    a
}

/// The largest |L Lᵀ - A| relative to max |A|.
fn factor_error(a: &Tensor, l: &Tensor) -> f64 {
    let d = (l.matmul(&l.mt()) - a).abs().max_all().item() as f64;
    d / a.abs().max_all().item() as f64
}

fn cholesky_row(name: &'static str, batch: usize, n: usize) -> Workload {
    (
        name.into(),
        Box::new(move |secs| {
            let a = spd(batch, n, 81);
            let mut step = || {
                let l = wgrad::linalg::cholesky(&a);
                l.realize();
                wgrad::synchronize();
                0.0
            };
            let mut r = time(name, secs, &mut step);
            r.check = factor_error(&a, &wgrad::linalg::cholesky(&a));
            r.extra.push((
                "gflops",
                batch as f64 * (n as f64).powi(3) / 3.0 / (r.median_ms * 1e6),
            ));
            r
        }),
    )
}

/// The RBF Gaussian process's negative log marginal likelihood at log-hyperparameters
/// `theta` = (log signal std, log length scale, log noise std).
fn gp_nll(theta: &Tensor, x: &Tensor, y: &Tensor) -> Tensor {
    let n = x.shape()[0];
    let s2 = (theta.index(0) * 2.0).exp();
    let l2 = (theta.index(1) * 2.0).exp();
    let n2 = (theta.index(2) * 2.0).exp();
    let d2 = (x.expand_dims(1) - x.expand_dims(0)).square().sum_axes(-1);
    let k = (-(d2 / (l2 * 2.0))).exp() * s2 + Tensor::eye(n) * (n2 + 1e-4);
    let l = wgrad::linalg::cholesky(&k);
    let alpha = wgrad::linalg::cho_solve(&l, y);
    let half_logdet = (&l * Tensor::eye(n)).sum_axes(-1).log().sum_all();
    (y * alpha).sum_all() * 0.5 + half_logdet + 0.5 * n as f32 * (2.0 * std::f32::consts::PI).ln()
}

pub fn workloads() -> Vec<Workload> {
    let mut w: Vec<Workload> = vec![
        cholesky_row("cholesky_batched_16", 1024, 16),
        cholesky_row("cholesky_1024", 1, 1024),
    ];
    w.push((
        "solve_512".into(),
        Box::new(|secs| {
            let a = normal(&[512, 512], 1.0, 82) + Tensor::eye(512) * 30.0;
            let b = normal(&[512], 1.0, 83);
            a.realize();
            let mut step = || {
                let x = wgrad::linalg::solve(&a, &b);
                x.realize();
                wgrad::synchronize();
                0.0
            };
            let mut r = time("solve_512", secs, &mut step);
            let x = wgrad::linalg::solve(&a, &b);
            r.check = (a.matmul(&x) - &b).abs().max_all().item() as f64;
            r
        }),
    ));
    w.push((
        "gp_nll_grad".into(),
        Box::new(|secs| {
            let n = 512;
            let x = Tensor::rand([n, 2], 84) * 4.0;
            let y = ((x.slice_axis(1, 0..1) * 1.5).sin() * x.slice_axis(1, 1..2).cos()).squeeze(-1)
                + normal(&[n], 0.1, 85);
            x.realize();
            y.realize();
            let theta = Tensor::from_vec(vec![0.0f32, 0.0, -1.0], [3]);
            let f = |t: &Tensor| gp_nll(t, &x, &y);
            let mut step = || {
                let (v, g) = value_and_grad(f)(&theta);
                wgrad::realize(&[v.clone(), g.clone()]);
                v.item() as f64
            };
            let mut r = time("gp_nll_grad", secs, &mut step);
            r.check = r.check.abs();
            r
        }),
    ));
    w.push((
        "sort_1m".into(),
        Box::new(|secs| {
            let x = normal(&[1 << 20], 1.0, 86);
            let mut step = || {
                let s = x.sort(0);
                s.realize();
                wgrad::synchronize();
                0.0
            };
            let mut r = time("sort_1m", secs, &mut step);
            let s = x.sort(0).to_vec::<f32>();
            // Ascending everywhere: the count of descents must be 0.
            r.check = s.windows(2).filter(|p| p[0] > p[1]).count() as f64;
            r
        }),
    ));
    w.push((
        "scatter_add_1m".into(),
        Box::new(|secs| {
            let m = 1 << 20;
            let bins = 1024;
            let u = normal(&[m], 1.0, 87);
            let idx: Vec<i32> = (0..m).map(|k| ((k * 7919) % bins) as i32).collect();
            let idx = Tensor::from_slice(&idx, [m]);
            let x = Tensor::zeros([bins]);
            let mut step = || {
                let y = x.scatter_add(&idx, &u, 0);
                y.realize();
                wgrad::synchronize();
                0.0
            };
            let mut r = time("scatter_add_1m", secs, &mut step);
            // The total is kept: Σ y = Σ u.
            let y = x.scatter_add(&idx, &u, 0);
            r.check = (y.sum_all().item() - u.sum_all().item()).abs() as f64;
            r
        }),
    ));
    w.push((
        "einsum_attention".into(),
        Box::new(|secs| {
            let (b, h, t, d) = (8, 4, 128, 32);
            let q = normal(&[b, h, t, d], 1.0, 88);
            let k = normal(&[b, h, t, d], 1.0, 89);
            let v = normal(&[b, h, t, d], 1.0, 90);
            let attend = || {
                let s = einsum("bhqd,bhkd->bhqk", &[&q, &k]) / (d as f32).sqrt();
                einsum("bhqk,bhkd->bhqd", &[&s.softmax(-1), &v])
            };
            let mut step = || {
                let o = attend();
                o.realize();
                wgrad::synchronize();
                0.0
            };
            let mut r = time("einsum_attention", secs, &mut step);
            r.check = attend().abs().sum_all().item() as f64;
            r
        }),
    ));
    w.push((
        "rfft_64k".into(),
        Box::new(|secs| {
            let n = 1 << 16;
            let x = normal(&[n], 1.0, 91);
            let mut step = || {
                let (re, im) = wgrad::fft::rfft(&x);
                wgrad::realize(&[re, im]);
                wgrad::synchronize();
                0.0
            };
            let mut r = time("rfft_64k", secs, &mut step);
            // Parseval: Σ x² = (|X_0|² + 2 Σ_{0<k<n/2} |X_k|² + |X_{n/2}|²) / n.
            let (re, im) = wgrad::fft::rfft(&x);
            let p = (re.square() + im.square()).to_vec::<f32>();
            let h = p.len() - 1;
            let spec: f64 =
                p[0] as f64 + p[h] as f64 + 2.0 * p[1..h].iter().map(|&v| v as f64).sum::<f64>();
            let energy = x.square().sum_all().item() as f64;
            r.check = (spec / n as f64 - energy).abs() / energy;
            r
        }),
    ));
    w
}
