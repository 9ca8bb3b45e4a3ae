//! The rules table of the numerics vocabulary (issue 18): special functions, einsum, linear
//! algebra, scatter, convolutions, sorting, scans and FFTs — the same checks as `rules.rs`
//! (JVP against finite differences, VJP against JVP, second order, vmap against a loop).

use super::rules::{Spec, distinct, signs, spec};
pub(super) use super::rules::{check_derivatives, check_vmap};

use wgrad::prelude::*;

fn table() -> Vec<Spec> {
    let m = &[3usize, 4][..];
    vec![
        spec(
            "ceil_trunc",
            |a| (&a[0] + signs() * 1.5).ceil() * &a[0] + (&a[0] * 2.0 - 1.5).trunc().exp() * &a[0],
            &[(m, 0.1, 0.2)],
        ),
        spec("tan", |a| a[0].tan(), &[(m, -1.2, 1.2)]),
        spec("atan", |a| a[0].atan(), &[(m, -2.0, 2.0)]),
        spec("asin", |a| a[0].asin(), &[(m, -0.8, 0.8)]),
        spec("acos", |a| a[0].acos(), &[(m, -0.8, 0.8)]),
        spec("sinh", |a| a[0].sinh(), &[(m, -2.0, 2.0)]),
        spec("cosh", |a| a[0].cosh(), &[(m, -2.0, 2.0)]),
        spec("asinh", |a| a[0].asinh(), &[(m, -2.0, 2.0)]),
        spec("acosh", |a| a[0].acosh(), &[(m, 1.2, 3.0)]),
        spec("atanh", |a| a[0].atanh(), &[(m, -0.8, 0.8)]),
        spec("lgamma", |a| a[0].lgamma(), &[(m, 0.4, 4.0)]),
        spec("digamma", |a| a[0].digamma(), &[(m, 0.4, 4.0)]),
        spec("polygamma", |a| a[0].polygamma(2), &[(m, 0.6, 4.0)]),
        spec(
            "atan2",
            |a| a[0].atan2(&a[1]),
            &[(m, 0.2, 2.0), (&[4], -2.0, -0.5)],
        ),
        spec(
            "remainder",
            |a| a[0].remainder(&a[1]),
            &[(m, 2.2, 2.8), (&[4], -1.05, -1.0)],
        ),
        spec(
            "logaddexp",
            |a| a[0].logaddexp(&a[1]),
            &[(m, -2.0, 2.0), (&[4], -2.0, 2.0)],
        ),
        spec(
            "xlogy",
            |a| a[0].xlogy(&a[1]),
            &[(m, -1.0, 1.0), (&[4], 0.5, 2.0)],
        ),
        spec(
            "einsum_batched",
            |a| einsum("qhd,khd->hqk", &[&a[0], &a[1]]),
            &[(&[3, 2, 4], -1.0, 1.0), (&[5, 2, 4], -1.0, 1.0)],
        ),
        spec(
            "einsum_diag_three",
            |a| {
                einsum("ii,j->ij", &[&a[0], &a[1]])
                    + einsum("bi,ij,j->b", &[&a[0], &a[0], &a[1]]).sum_all()
            },
            &[(&[3, 3], -1.0, 1.0), (&[3], -1.0, 1.0)],
        ),
        spec(
            "cholesky",
            |a| wgrad::linalg::cholesky(&(a[0].matmul(&a[0].mt()) + Tensor::eye(3) * 2.0)),
            &[(&[2, 3, 3], -1.0, 1.0)],
        ),
        spec(
            "triangular_solve",
            |a| {
                let t = a[0].tril(0) + Tensor::eye(3) * 2.0;
                wgrad::linalg::triangular_solve(&t, &a[1], true)
                    + wgrad::linalg::triangular_solve(&t.mt(), &a[1], false)
            },
            &[(&[3, 3], -0.5, 0.5), (&[3, 2], -1.0, 1.0)],
        ),
        spec(
            "cho_solve_logdet",
            |a| {
                let s = a[0].matmul(&a[0].mt()) + Tensor::eye(3) * 2.0;
                let l = wgrad::linalg::cholesky(&s);
                wgrad::linalg::cho_solve(&l, &a[1]) * wgrad::linalg::cholesky_logdet(&s)
            },
            &[(&[3, 3], -1.0, 1.0), (&[3, 2], -1.0, 1.0)],
        ),
        spec(
            "solve_inv",
            |a| {
                let m = &a[0] + Tensor::eye(3) * 2.0;
                wgrad::linalg::solve(&m, &a[1])
                    + wgrad::linalg::inv(&m).sum_axes(-1).expand_dims(-1)
            },
            &[(&[2, 3, 3], -1.0, 1.0), (&[2, 3, 2], -1.0, 1.0)],
        ),
        spec(
            "det_slogdet",
            |a| {
                let m = &a[0] + Tensor::eye(3) * 2.0;
                wgrad::linalg::det(&m) + wgrad::linalg::slogdet(&m).1
            },
            &[(&[2, 3, 3], -1.0, 1.0)],
        ),
        spec(
            "lu_factor",
            |a| wgrad::linalg::lu_factor(&a[0]).0,
            &[(&[2, 3, 3], -1.0, 1.0)],
        ),
        spec(
            "scatter_add_segments",
            |a| {
                a[0].scatter_add([2i64, 0, 2], &a[1], 1)
                    .sum_axes(0)
                    .expand_dims(0)
                    + segment_max(&a[1].mt(), [1i64, 0, 1], 2).sum_all()
                    + segment_sum(&a[0], [1i64, 1, 0], 2).sum_all()
            },
            &[(&[3, 4], -1.0, 1.0), (&[3, 3], -1.0, 1.0)],
        ),
        spec(
            "conv1d",
            |a| {
                a[0].conv1d(
                    &a[1],
                    Conv1dOptions::default().stride(2).padding(1).groups(2),
                )
            },
            &[(&[2, 4, 7], -1.0, 1.0), (&[4, 2, 3], -1.0, 1.0)],
        ),
        spec(
            "conv_transpose2d",
            |a| a[0].conv_transpose2d(&a[1], [2, 1], [1, 0]),
            &[(&[1, 2, 3, 3], -1.0, 1.0), (&[2, 3, 3, 2], -1.0, 1.0)],
        ),
        spec(
            "sort_top_k",
            |a| {
                // Entries at least 0.3 apart: no step of the check crosses a tie.
                let x = &a[0] + distinct(&[4, 3], 0.5);
                x.sort(0) + x.top_k(2).0.sum_axes(-1).expand_dims(-1)
            },
            &[(&[4, 3], -0.1, 0.1)],
        ),
        spec(
            "cumprod_logcumsumexp",
            |a| a[0].cumprod(1) + a[0].logcumsumexp(0),
            &[(&[3, 4], 0.5, 1.5)],
        ),
        spec(
            "cummax_cummin",
            |a| {
                let x = &a[0] + distinct(&[3, 4], 0.5);
                x.cummax(1) * x.cummin(0)
            },
            &[(&[3, 4], -0.1, 0.1)],
        ),
        spec(
            "scans_blocked",
            |a| {
                (a[0].cumprod(-1) + a[0].logcumsumexp(-1))
                    * (&a[0] + distinct(&[70], 0.05)).cummax(-1)
            },
            &[(&[70], 0.97, 1.03)],
        ),
        spec(
            "rfft_irfft",
            |a| {
                let (r, i) = wgrad::fft::rfft(&a[0]);
                wgrad::fft::irfft(&(r.square() - &i), &(&i * 0.5), 6)
            },
            &[(&[2, 6], -1.0, 1.0)],
        ),
        spec(
            "fft_bluestein",
            |a| {
                let (r, i) = wgrad::fft::fft(&a[0], &a[0].square());
                r * i
            },
            &[(&[67], -1.0, 1.0)],
        ),
        spec(
            "qr",
            |a| {
                let m = &a[0] + Tensor::eye(4).slice_axis(1, 0..3) * 2.0;
                let (q, r) = wgrad::linalg::qr(&m);
                q.slice_axis(0, 0..3) + r
            },
            &[(&[4, 3], -0.5, 0.5)],
        ),
        spec(
            "eigh_svdvals",
            |a| {
                // Sign-invariant functions of the eigenvectors; distinct eigenvalues.
                let s = &a[0]
                    + a[0].mt()
                    + Tensor::from_vec(
                        vec![0.0f32, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 6.0],
                        [3, 3],
                    );
                let (w, v) = wgrad::linalg::eigh(&s);
                v.square() * w.expand_dims(0)
                    + wgrad::linalg::svdvals(&s.slice_axis(1, 0..2)).sum_all()
            },
            &[(&[3, 3], -0.5, 0.5)],
        ),
        spec(
            "svd",
            |a| {
                // Sign-invariant: squares of the singular vectors' entries.
                let m = &a[0] + Tensor::from_vec(vec![2.0f32, 0.0, 0.0, 1.0, 0.0, 0.0], [3, 2]);
                let (u, s, vt) = wgrad::linalg::svd(&m);
                u.square() * &s + vt.square().sum_all()
            },
            &[(&[3, 2], -0.3, 0.3)],
        ),
        spec(
            "scatter_set",
            |a| a[0].scatter([2i64, 0], &a[1], 0) * &a[0],
            &[(&[3, 4], -1.0, 1.0), (&[2, 4], -1.0, 1.0)],
        ),
    ]
}

/// The table's row `name`.
fn row(name: &str) -> Spec {
    let name = name.trim_start_matches("r#");
    table()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no row {name} in the numerics rules table"))
}

rule_tests!(
    tan,
    atan,
    asin,
    acos,
    sinh,
    cosh,
    asinh,
    acosh,
    atanh,
    lgamma,
    digamma,
    polygamma,
    atan2,
    remainder,
    logaddexp,
    xlogy,
    ceil_trunc,
    einsum_batched,
    einsum_diag_three,
    cholesky,
    triangular_solve,
    cho_solve_logdet,
    solve_inv,
    det_slogdet,
    lu_factor,
    qr,
    eigh_svdvals,
    scatter_add_segments,
    conv1d,
    conv_transpose2d,
    sort_top_k,
    cumprod_logcumsumexp,
    cummax_cummin,
    scans_blocked,
    rfft_irfft,
    fft_bluestein,
    scatter_set,
    svd,
);

#[test]
fn every_row_of_the_numerics_table_has_its_tests() {
    let rows: Vec<&str> = table().iter().map(|s| s.name).collect();
    for r in &rows {
        assert!(
            COVERED.contains(r),
            "row {r} has no tests: add it to rule_tests!"
        );
    }
    assert_eq!(
        rows.len(),
        COVERED.len(),
        "a test names no row, or a row is repeated"
    );
}
