//! cumsum at lengths that exercise the blocked scan (against float64 prefix sums), integer
//! scans, prod with zeros, min, var and std against host formulas.

use crate::common;

use common::{assert_close, close};
use wgrad::prelude::*;

#[test]
fn cumsum_of_long_axes_matches_float64_prefix_sums() {
    common::setup();
    for n in [1usize, 63, 64, 65, 4096, 4097, 100_003] {
        let t = Tensor::rand([n], n as u64) - 0.5;
        let v = t.to_vec::<f32>();
        let mut acc = 0f64;
        let want: Vec<f32> = v
            .iter()
            .map(|&x| {
                acc += x as f64;
                acc as f32
            })
            .collect();
        let got = Tensor::from_vec(v, [n]).cumsum(0).to_vec::<f32>();
        // Prefix sums of ±0.5 values: compare against the float64 running sum, scaled to the
        // running magnitude.
        close(&got, &want, 0.0, 2e-5 * (n as f32).sqrt().max(1.0))
            .unwrap_or_else(|e| panic!("n = {n}: {e}"));
    }
    // Along a middle axis, and integers exactly.
    let x = Tensor::arange(24).reshape([2, 3, 4]);
    let c = x.cumsum(1);
    assert_close(
        &c.slice_axis(1, 2..3).reshape([2, 4]),
        &[2, 4],
        &[12.0, 15.0, 18.0, 21.0, 48.0, 51.0, 54.0, 57.0],
        0.0,
    );
    let i = Tensor::from_slice(&[1i32; 200], [200])
        .cumsum(0)
        .to_vec::<i32>();
    assert_eq!(i, (1..=200).collect::<Vec<i32>>());
    // The VJP is a reversed cumsum.
    let g = grad(|x: &Tensor| (x.cumsum(0) * Tensor::arange(130)).sum_all())(&Tensor::zeros([130]));
    let want: Vec<f32> = (0..130).map(|k| (k..130).map(|j| j as f32).sum()).collect();
    assert_close(&g, &[130], &want, 1e-6);
}

#[test]
fn prod_min_var_std_match_host_formulas() {
    common::setup();
    let v = vec![1.5f32, -2.0, 0.5, 3.0, -1.0, 2.0];
    let x = Tensor::from_vec(v.clone(), [2, 3]);
    assert_close(&x.prod_axes(1), &[2], &[-1.5, -6.0], 1e-6);
    assert_close(&x.min_all(), &[], &[-2.0], 0.0);
    assert_close(&x.min_keepdim(0), &[1, 3], &[1.5, -2.0, 0.5], 0.0);
    let mean = v.iter().sum::<f32>() / 6.0;
    let var = v.iter().map(|a| (a - mean).powi(2)).sum::<f32>() / 6.0;
    assert_close(&x.var_all(), &[], &[var], 1e-6);
    assert_close(&x.std_all(), &[], &[var.sqrt()], 1e-6);
    // prod's gradient with zeros: one zero gets the product of the rest, two zeros give 0.
    let g = grad(|x: &Tensor| x.prod_axes(1).sum_all())(&Tensor::from_vec(
        vec![0.0f32, 2.0, 3.0, 0.0, 0.0, 5.0],
        [2, 3],
    ));
    assert_close(&g, &[2, 3], &[6.0, 0.0, 0.0, 0.0, 0.0, 0.0], 0.0);
}

/// The host's inclusive scan of each row of `v` (rows of `l`) in f64.
fn host_scan(v: &[f32], l: usize, f: impl Fn(f64, f64) -> f64) -> Vec<f64> {
    let mut out = vec![0.0; v.len()];
    for r in 0..v.len() / l {
        let mut acc = v[r * l] as f64;
        out[r * l] = acc;
        for k in 1..l {
            acc = f(acc, v[r * l + k] as f64);
            out[r * l + k] = acc;
        }
    }
    out
}

#[test]
fn cumprod_cummax_cummin_logcumsumexp_match_float64_at_every_length() {
    common::setup();
    for l in [1usize, 5, 64, 65, 200, 5000] {
        let x = Tensor::rand([3, l], l as u64) * 2.0 - 1.0;
        let v = x.to_vec::<f32>();
        // Products of factors near 1 stay finite over long rows.
        let near1 = &x * 0.01 + 1.0;
        let p: Vec<f32> = near1.to_vec::<f32>();
        let cases: Vec<(&str, Tensor, Vec<f64>, f32)> = vec![
            (
                "cumprod",
                near1.cumprod(1),
                host_scan(&p, l, |a, b| a * b),
                2e-5,
            ),
            ("cummax", x.cummax(1), host_scan(&v, l, f64::max), 0.0),
            ("cummin", x.cummin(1), host_scan(&v, l, f64::min), 0.0),
            (
                "logcumsumexp",
                (&x * 50.0).logcumsumexp(1),
                host_scan(
                    &v.iter().map(|a| a * 50.0).collect::<Vec<_>>(),
                    l,
                    |a, b| a.max(b) + (-(a - b).abs()).exp().ln_1p(),
                ),
                1e-5,
            ),
        ];
        for (name, got, want, tol) in cases {
            let want: Vec<f32> = want.iter().map(|&w| w as f32).collect();
            if let Err(e) = common::close(&got.to_vec::<f32>(), &want, tol, tol) {
                panic!("{name} over rows of {l}: {e}");
            }
        }
    }
    // Along axis 0, and integers for the running maximum.
    let x = Tensor::from_vec(vec![1i32, 5, 3, 2, 4, 9], [3, 2]);
    assert_eq!(x.cummax(0).to_vec::<i32>(), vec![1, 5, 3, 5, 4, 9]);
    // NaN propagates through a running maximum (as JAX).
    let n = Tensor::from_vec(vec![1.0f32, f32::NAN, 3.0], [3])
        .cummax(0)
        .to_vec::<f32>();
    assert!(n[0] == 1.0 && n[1].is_nan() && n[2].is_nan());
}

#[test]
fn cumprod_gradients_are_exact_with_zeros() {
    common::setup();
    // y_i = Π_{j<=i} x_j with a zero in the row: d(Σ y)/dx_j = Σ_{i>=j} Π_{k<=i, k!=j} x_k.
    let v = vec![2.0f32, 0.0, 3.0, -1.0, 0.5];
    let x = Tensor::from_vec(v.clone(), [5]);
    let g = grad(|x: &Tensor| x.cumprod(0).sum_all())(&x).to_vec::<f32>();
    for (j, gj) in g.iter().enumerate() {
        let mut want = 0.0f32;
        for i in j..5 {
            want += (0..=i).filter(|&k| k != j).map(|k| v[k]).product::<f32>();
        }
        assert!((gj - want).abs() < 1e-6, "d/dx_{j}: {gj} vs {want}");
    }
    // logcumsumexp's gradient of the last entry is the softmax, even at large values (to the
    // f32 spacing of y near 1000, 6e-5, which e^(x - y) carries).
    let x = Tensor::from_vec(vec![1000.0f32, 1001.0, 999.0], [3]);
    let g = grad(|x: &Tensor| x.logcumsumexp(0).index(2))(&x).to_vec::<f32>();
    let s = x.softmax(0).to_vec::<f32>();
    common::close(&g, &s, 1e-4, 1e-6).unwrap();
}
