//! `wgrad::linalg` against float64 host references: factors and solves over batches and sizes
//! (including matrices taller than a workgroup), NaN for matrices that are not positive
//! definite (as JAX), the triangle a solve reads, and the errors.

use crate::common;

use wgrad::linalg::{
    cho_solve, cholesky, cholesky_logdet, triangular_solve, try_cho_solve, try_cholesky,
    try_triangular_solve,
};
use wgrad::prelude::*;

/// A batch of well-conditioned SPD matrices `m mᵀ / n + I` and their f64 values.
fn spd(batch: usize, n: usize, seed: u64) -> (Tensor, Vec<f64>) {
    let m = Tensor::rand([batch, n, n], seed) * 2.0 - 1.0;
    let a = m.matmul(&m.mt()) / n as f32 + Tensor::eye(n);
    let v = a.to_vec::<f32>().iter().map(|&x| x as f64).collect();
    (a, v)
}

/// Cholesky in f64 of each n×n matrix of `a`.
fn chol64(a: &[f64], n: usize) -> Vec<f64> {
    let mut l = vec![0.0; a.len()];
    for b in 0..a.len() / (n * n) {
        let o = b * n * n;
        for j in 0..n {
            let mut s = a[o + j * n + j];
            for k in 0..j {
                s -= l[o + j * n + k] * l[o + j * n + k];
            }
            l[o + j * n + j] = s.sqrt();
            for i in j + 1..n {
                let mut s = a[o + i * n + j];
                for k in 0..j {
                    s -= l[o + i * n + k] * l[o + j * n + k];
                }
                l[o + i * n + j] = s / l[o + j * n + j];
            }
        }
    }
    l
}

fn close64(got: &Tensor, want: &[f64], tol: f32, what: &str) {
    let want: Vec<f32> = want.iter().map(|&v| v as f32).collect();
    if let Err(e) = common::close(&got.to_vec::<f32>(), &want, tol, tol) {
        panic!("{what}: {e}");
    }
}

#[test]
fn cholesky_matches_float64_over_sizes_and_batches() {
    common::setup();
    for (batch, n) in [(1, 1), (5, 3), (3, 16), (2, 70)] {
        let (a, av) = spd(batch, n, n as u64);
        let l = cholesky(&a);
        assert_eq!(l.shape(), &[batch, n, n]);
        close64(
            &l,
            &chol64(&av, n),
            2e-5,
            &format!("cholesky {batch}×{n}×{n}"),
        );
        // L Lᵀ = A, and the upper triangle is exactly zero.
        close64(&l.matmul(&l.mt()), &av, 1e-4, "L Lᵀ");
        let lv = l.to_vec::<f32>();
        for (k, v) in lv.iter().enumerate() {
            let (i, j) = ((k / n) % n, k % n);
            if j > i {
                assert_eq!(*v, 0.0, "upper entry ({i}, {j}) of a {n}×{n} factor");
            }
        }
    }
}

#[test]
fn cholesky_of_a_matrix_that_is_not_positive_definite_is_nan() {
    common::setup();
    // One good matrix, one indefinite, one with a NaN: only the bad ones turn NaN.
    let a = Tensor::from_vec(
        vec![
            4.0f32,
            2.0,
            2.0,
            3.0, //
            1.0,
            2.0,
            2.0,
            1.0, //
            f32::NAN,
            0.0,
            0.0,
            1.0,
        ],
        [3, 2, 2],
    );
    let l = cholesky(&a).to_vec::<f32>();
    assert!((l[0] - 2.0).abs() < 1e-6 && l[1] == 0.0);
    assert!(l[4..].iter().all(|v| v.is_nan()), "{l:?}");
}

#[test]
fn triangular_solves_match_float64_and_read_one_triangle() {
    common::setup();
    let n = 7;
    let (a, _) = spd(2, n, 11);
    let l = cholesky(&a);
    let b = Tensor::rand([2, n, 3], 12) * 2.0 - 1.0;
    // Garbage in the unread triangle must not matter.
    let junk = Tensor::rand([2, n, n], 13).triu(1) * 100.0;
    let x = triangular_solve(&(&l + &junk), &b, true);
    close64(&l.matmul(&x), &to64(&b), 1e-4, "lower solve");
    let lt = l.mt();
    let y = triangular_solve(&(&lt + junk.mt()), &b, false);
    close64(&lt.matmul(&y), &to64(&b), 1e-4, "upper solve");
    // A vector right-hand side, and cho_solve as A⁻¹ b.
    let v = Tensor::rand([2, n], 14);
    let xv = cho_solve(&l, &v);
    assert_eq!(xv.shape(), &[2, n]);
    close64(
        &a.matmul(&xv.expand_dims(-1)).squeeze(-1),
        &to64(&v),
        1e-4,
        "cho_solve",
    );
    // log det from the factor against the product of the pivots squared.
    let lv = l.to_vec::<f32>();
    for m in 0..2 {
        let want: f64 = (0..n)
            .map(|i| 2.0 * (lv[m * n * n + i * n + i] as f64).ln())
            .sum();
        let got = cholesky_logdet(&a).to_vec::<f32>()[m] as f64;
        assert!((got - want).abs() < 1e-4, "logdet {got} vs {want}");
    }
}

fn to64(t: &Tensor) -> Vec<f64> {
    t.to_vec::<f32>().iter().map(|&v| v as f64).collect()
}

#[test]
fn linalg_errors_name_the_op_and_the_shapes() {
    common::setup();
    let msg = |r: wgrad::Result<Tensor>| r.unwrap_err().to_string();
    let e = msg(try_cholesky(&Tensor::zeros([3, 4])));
    assert!(e.contains("cholesky") && e.contains("[3, 4]"), "{e}");
    let e = msg(try_cholesky(&Tensor::zeros([4])));
    assert!(e.contains("[4]"), "{e}");
    let e = msg(try_triangular_solve(
        &Tensor::zeros([2, 3, 3]),
        &Tensor::zeros([4, 3, 1]),
        true,
    ));
    assert!(
        e.contains("triangular_solve") && e.contains("[4, 3, 1]"),
        "{e}"
    );
    let e = msg(try_cho_solve(&Tensor::eye(3), &Tensor::zeros([2, 2])));
    assert!(e.contains("cho_solve") && e.contains("[2, 2]"), "{e}");
    let i = Tensor::from_vec(vec![1i32, 0, 0, 1], [2, 2]);
    assert!(msg(try_cholesky(&i)).contains("i32"));
    // Empty batches are empty results, not errors.
    assert_eq!(cholesky(&Tensor::zeros([0, 3, 3])).shape(), &[0, 3, 3]);
}

/// Determinant in f64 by Gaussian elimination with partial pivoting.
fn det64(a: &[f64], n: usize) -> f64 {
    let mut m = a.to_vec();
    let mut d = 1.0;
    for j in 0..n {
        let p = (j..n)
            .max_by(|&x, &y| m[x * n + j].abs().total_cmp(&m[y * n + j].abs()))
            .unwrap();
        if p != j {
            for c in 0..n {
                m.swap(j * n + c, p * n + c);
            }
            d = -d;
        }
        d *= m[j * n + j];
        for i in j + 1..n {
            let l = m[i * n + j] / m[j * n + j];
            for c in j..n {
                m[i * n + c] -= l * m[j * n + c];
            }
        }
    }
    d
}

#[test]
fn lu_solve_inv_det_match_float64() {
    common::setup();
    use wgrad::linalg::{det, inv, lu_factor, slogdet, solve};
    for (batch, n) in [(1, 1), (4, 3), (2, 9), (1, 70)] {
        let a = Tensor::rand([batch, n, n], 40 + n as u64) * 2.0 - 1.0 + Tensor::eye(n) * 0.5;
        let av = to64(&a);
        // P A = L U, rebuilt from the packed factors.
        let (lu, perm) = lu_factor(&a);
        let l = lu.tril(-1) + Tensor::eye(n);
        let u = lu.triu(0);
        let pa = a.take_along_axis(perm.expand_dims(-1).broadcast_to([batch, n, n]), -2);
        close64(
            &l.matmul(&u),
            &to64(&pa),
            1e-4,
            &format!("P A = L U ({n}×{n})"),
        );
        // |L| <= 1 below the diagonal: the pivots are the largest of their columns.
        assert!(
            lu.tril(-1)
                .to_vec::<f32>()
                .iter()
                .all(|v| v.abs() <= 1.0 + 1e-6)
        );
        let b = Tensor::rand([batch, n, 2], 50);
        let x = solve(&a, &b);
        close64(&a.matmul(&x), &to64(&b), 1e-3, &format!("solve {n}×{n}"));
        let ai = inv(&a);
        let eye: Vec<f64> = to64(&Tensor::eye(n).broadcast_to([batch, n, n]));
        close64(&a.matmul(&ai), &eye, 1e-3, &format!("a · inv(a) {n}×{n}"));
        let want: Vec<f64> = (0..batch)
            .map(|m| det64(&av[m * n * n..(m + 1) * n * n], n))
            .collect();
        let got = det(&a).to_vec::<f32>();
        let (s, ld) = slogdet(&a);
        let (s, ld) = (s.to_vec::<f32>(), ld.to_vec::<f32>());
        for m in 0..batch {
            let rel = (got[m] as f64 - want[m]).abs() / want[m].abs();
            assert!(
                rel < 1e-4 || !want[m].is_normal(),
                "det {} vs {}",
                got[m],
                want[m]
            );
            assert_eq!(s[m] as f64, want[m].signum(), "slogdet sign");
            assert!(
                (ld[m] as f64 - want[m].abs().ln()).abs() < 1e-3,
                "logabsdet"
            );
        }
    }
    // A zero leading entry needs the pivot; a singular matrix gives non-finite values, as JAX.
    let a = Tensor::from_vec(vec![0.0f32, 1.0, 1.0, 0.0], [2, 2]);
    assert!((det(&a).item() + 1.0).abs() < 1e-6);
    let s = Tensor::from_vec(vec![1.0f32, 2.0, 2.0, 4.0], [2, 2]);
    assert_eq!(det(&s).item(), 0.0);
    assert!(inv(&s).to_vec::<f32>().iter().any(|v| !v.is_finite()));
}

#[test]
fn qr_is_orthonormal_upper_and_exact() {
    common::setup();
    use wgrad::linalg::{qr, try_qr};
    for (b, m, n) in [(1, 1, 1), (3, 5, 3), (2, 8, 8), (1, 70, 20)] {
        let a = Tensor::rand([b, m, n], (m * n) as u64) * 2.0 - 1.0
            + Tensor::eye(m).slice_axis(1, 0..n) * 2.0;
        let (q, r) = qr(&a);
        assert_eq!((q.shape(), r.shape()), (&[b, m, n][..], &[b, n, n][..]));
        close64(
            &q.matmul(&r),
            &to64(&a),
            1e-4,
            &format!("Q R = A ({m}×{n})"),
        );
        let eye = to64(&Tensor::eye(n).broadcast_to([b, n, n]));
        close64(
            &q.mt().matmul(&q),
            &eye,
            1e-4,
            &format!("QᵀQ = I ({m}×{n})"),
        );
        let rv = r.to_vec::<f32>();
        for (k, v) in rv.iter().enumerate() {
            let (i, j) = ((k / n) % n, k % n);
            if i > j {
                assert_eq!(*v, 0.0, "R below the diagonal");
            }
            if i == j {
                assert!(*v > 0.0, "R's diagonal is positive");
            }
        }
    }
    let e = try_qr(&Tensor::zeros([2, 3])).unwrap_err().to_string();
    assert!(e.contains("m >= n"), "{e}");
}

#[test]
fn eigh_diagonalizes_in_ascending_order() {
    common::setup();
    use wgrad::linalg::{eigh, eigvalsh, svdvals, try_eigh};
    for (b, n) in [(1, 1), (4, 3), (2, 16), (1, 64), (1, 100)] {
        let m = Tensor::rand([b, n, n], 60 + n as u64) * 2.0 - 1.0;
        let a = &m + m.mt();
        let (w, v) = eigh(&a);
        assert_eq!((w.shape(), v.shape()), (&[b, n][..], &[b, n, n][..]));
        // A V = V diag(w), VᵀV = I, w ascending.
        let av = a.matmul(&v);
        let vw = &v * w.expand_dims(-2);
        let scale = n as f32;
        if let Err(e) = common::close(
            &av.to_vec::<f32>(),
            &vw.to_vec::<f32>(),
            1e-4 * scale,
            1e-4 * scale,
        ) {
            panic!("A V = V Λ for {n}×{n}: {e}");
        }
        let eye = to64(&Tensor::eye(n).broadcast_to([b, n, n]));
        close64(
            &v.mt().matmul(&v),
            &eye,
            1e-4 * scale,
            &format!("VᵀV = I ({n}×{n})"),
        );
        let wv = w.to_vec::<f32>();
        for k in 0..b {
            for i in 1..n {
                assert!(wv[k * n + i - 1] <= wv[k * n + i], "ascending");
            }
        }
        // The trace is the sum of the eigenvalues.
        let tr = (a.clone() * Tensor::eye(n)).sum_all().item();
        assert!((tr - wv.iter().sum::<f32>()).abs() < 1e-3 * scale, "trace");
    }
    // Repeated eigenvalues: values exact, derivatives finite.
    let i3 = Tensor::eye(3) * 2.0;
    assert!(
        eigvalsh(&i3)
            .to_vec::<f32>()
            .iter()
            .all(|&x| (x - 2.0).abs() < 1e-6)
    );
    let g = grad(|a: &Tensor| eigh(a).1.square().sum_all() + eigvalsh(a).sum_all())(&i3);
    assert!(
        g.to_vec::<f32>().iter().all(|v| v.is_finite()),
        "{:?}",
        g.to_vec::<f32>()
    );
    // d λ_max / dA = v vᵀ for the top eigenvector.
    let a = Tensor::from_vec(vec![2.0f32, 1.0, 0.0, 1.0, 3.0, 1.0, 0.0, 1.0, 4.0], [3, 3]);
    let g = grad(|a: &Tensor| eigvalsh(a).index(2))(&a).to_vec::<f32>();
    let (_, v) = eigh(&a);
    let top = v.slice_axis(1, 2..3);
    let outer = top.matmul(&top.mt()).to_vec::<f32>();
    common::close(&g, &outer, 1e-4, 1e-5).unwrap();
    // Singular values: of a diagonal matrix, and invariant under transposition.
    let d = Tensor::from_vec(
        vec![0.0f32, -5.0, 0.0, 0.0, 0.0, 2.0, 1.0, 0.0, 0.0],
        [3, 3],
    );
    common::close(&svdvals(&d).to_vec::<f32>(), &[5.0, 2.0, 1.0], 1e-5, 1e-5).unwrap();
    let r = Tensor::rand([2, 4, 6], 70);
    common::close(
        &svdvals(&r).to_vec::<f32>(),
        &svdvals(&r.mt()).to_vec::<f32>(),
        1e-4,
        1e-5,
    )
    .unwrap();
    let e = try_eigh(&Tensor::zeros([129, 129]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("eigh") && e.contains("128"), "{e}");
}

#[test]
fn large_factorizations_split_across_launches_stay_exact() {
    common::setup();
    use wgrad::linalg::{det, solve};
    // Sizes whose loops would pass the drivers' 65,535-iteration cap in one launch.
    let n = 300;
    let (a, av) = spd(1, n, 90);
    let l = cholesky(&a);
    close64(&l, &chol64(&av, n), 1e-4, "cholesky 300×300");
    let b = Tensor::rand([1, n, 2], 91);
    let x = cho_solve(&l, &b);
    close64(&a.matmul(&x), &to64(&b), 1e-3, "cho_solve 300×300");
    let g = Tensor::rand([1, n, n], 92) * 2.0 - 1.0 + Tensor::eye(n) * 8.0;
    let y = solve(&g, &b);
    close64(&g.matmul(&y), &to64(&b), 1e-3, "solve 300×300");
    let gv = to64(&g);
    let (s, logabs) = wgrad::linalg::slogdet(&g);
    let want = det64(&gv, n);
    assert_eq!(s.item() as f64, want.signum());
    assert!(
        (logabs.item() as f64 - want.abs().ln()).abs() < 1e-2,
        "logdet 300×300"
    );
    assert!(det(&Tensor::eye(3)).item() == 1.0);
    // A triangular solve of 700 rows (245,000 steps in one launch otherwise).
    let m = 700;
    let t = Tensor::rand([m, m], 93).tril(0) * 0.1 + Tensor::eye(m);
    let rhs = Tensor::rand([m, 1], 94);
    let z = triangular_solve(&t, &rhs, true);
    close64(&t.matmul(&z), &to64(&rhs), 1e-4, "triangular solve 700×700");
}

#[test]
fn blocked_cholesky_differentiates_and_reports_nan() {
    common::setup();
    // n = 150: the blocked path. d log det A / dA = A⁻¹ (symmetric), against the LU inverse.
    let n = 150;
    let (a, _) = spd(1, n, 95);
    let g = grad(|a: &Tensor| cholesky_logdet(a).sum_all())(&a);
    let want = wgrad::linalg::inv(&a);
    common::close(&g.to_vec::<f32>(), &want.to_vec::<f32>(), 2e-3, 2e-4).unwrap();
    // Indefinite only in the trailing block: still NaN everywhere.
    let mut v = a.to_vec::<f32>();
    v[(n - 1) * n + (n - 1)] = -100.0;
    let bad = cholesky(&Tensor::from_vec(v, [1, n, n])).to_vec::<f32>();
    assert!(bad.iter().all(|x| x.is_nan()));
}

#[test]
fn svd_reconstructs_with_orthonormal_factors() {
    common::setup();
    use wgrad::linalg::{svd, svdvals};
    for (b, m, n) in [(1, 3, 3), (2, 5, 3), (2, 3, 6), (1, 40, 24)] {
        let a = Tensor::rand([b, m, n], (m * 10 + n) as u64) * 2.0 - 1.0;
        let (u, s, vt) = svd(&a);
        let k = m.min(n);
        assert_eq!(
            (u.shape(), s.shape(), vt.shape()),
            (&[b, m, k][..], &[b, k][..], &[b, k, n][..])
        );
        let back = (&u * s.expand_dims(-2)).matmul(&vt);
        close64(&back, &to64(&a), 1e-4, &format!("U S Vᵀ = A ({m}×{n})"));
        let eye = to64(&Tensor::eye(k).broadcast_to([b, k, k]));
        close64(&u.mt().matmul(&u), &eye, 1e-4, "UᵀU = I");
        close64(&vt.matmul(&vt.mt()), &eye, 1e-4, "V Vᵀ = I");
        common::close(&s.to_vec::<f32>(), &svdvals(&a).to_vec::<f32>(), 1e-6, 1e-6).unwrap();
    }
    // The nuclear norm's gradient is U Vᵀ.
    let a = Tensor::rand([4, 3], 5) * 2.0 - 1.0;
    let g = grad(|a: &Tensor| svdvals(a).sum_all())(&a);
    let (u, _, vt) = svd(&a);
    common::close(
        &g.to_vec::<f32>(),
        &u.matmul(&vt).to_vec::<f32>(),
        1e-3,
        1e-4,
    )
    .unwrap();
}
