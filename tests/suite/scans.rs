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
