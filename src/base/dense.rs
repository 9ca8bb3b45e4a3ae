//! Dense linear algebra in float64 on row-major slices, for the reference interpreter
//! (`crate::reference`): Cholesky, triangular solves, LU with partial pivoting and the
//! symmetric eigendecomposition by cyclic Jacobi. Plain loops, no blocking: correctness only.

/// The lower Cholesky factor of the `n × n` matrix `a` (only its lower triangle read; zeros
/// above the diagonal), or `None` when it is not positive definite.
pub(crate) fn cholesky(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for j in 0..n {
        let d = a[j * n + j] - (0..j).map(|k| l[j * n + k] * l[j * n + k]).sum::<f64>();
        // NaN fails this test too.
        if d.is_nan() || d <= 0.0 {
            return None;
        }
        let d = d.sqrt();
        l[j * n + j] = d;
        for i in j + 1..n {
            let s = a[i * n + j] - (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum::<f64>();
            l[i * n + j] = s / d;
        }
    }
    Some(l)
}

/// `X` (`n × k`) with `A X = B` for the triangle (`lower` or upper, diagonal included) of the
/// `n × n` matrix `a`.
pub(crate) fn trisolve(a: &[f64], b: &[f64], n: usize, k: usize, lower: bool) -> Vec<f64> {
    let mut x = b.to_vec();
    let rows: Vec<usize> = if lower {
        (0..n).collect()
    } else {
        (0..n).rev().collect()
    };
    for (step, &i) in rows.iter().enumerate() {
        for c in 0..k {
            let mut s = x[i * k + c];
            for &j in &rows[..step] {
                s -= a[i * n + j] * x[j * k + c];
            }
            x[i * k + c] = s / a[i * n + i];
        }
    }
    x
}

/// LU with partial pivoting (the largest magnitude, first of ties), packed as wgrad's kernel
/// packs it: `n` rows of `n + 3` — L below the diagonal and U on and above it, then `perm`
/// (row `i` of `P A` is row `perm[i]` of `A`), its inverse, and the sign in row 0.
pub(crate) fn lu_packed(a: &[f64], n: usize) -> Vec<f64> {
    let w = n + 3;
    let mut p = vec![0.0; n * w];
    for r in 0..n {
        p[r * w..r * w + n].copy_from_slice(&a[r * n..(r + 1) * n]);
        p[r * w + n] = r as f64;
    }
    let mut sign = 1.0;
    for j in 0..n {
        let mut piv = j;
        for i in j + 1..n {
            if p[i * w + j].abs() > p[piv * w + j].abs() {
                piv = i;
            }
        }
        if piv != j {
            for c in 0..=n {
                p.swap(j * w + c, piv * w + c);
            }
            sign = -sign;
        }
        let pivot = p[j * w + j];
        for i in j + 1..n {
            let l = p[i * w + j] / pivot;
            p[i * w + j] = l;
            for c in j + 1..n {
                p[i * w + c] -= l * p[j * w + c];
            }
        }
    }
    for i in 0..n {
        let r = p[i * w + n] as usize;
        p[r * w + n + 1] = i as f64;
    }
    if n > 0 {
        p[n + 2] = sign;
    }
    p
}

/// The eigenvalues (ascending) and unit eigenvectors (as columns, `n × n` row-major) of the
/// symmetric `n × n` matrix `a`, by cyclic Jacobi rotations until the off-diagonal vanishes.
pub(crate) fn eigh(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut m = a.to_vec();
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    for _ in 0..100 {
        let off: f64 = (0..n * n)
            .filter(|i| i / n != i % n)
            .map(|i| m[i] * m[i])
            .sum();
        let scale: f64 = m.iter().map(|x| x * x).sum();
        if off <= 1e-30 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                if m[p * n + q] == 0.0 {
                    continue;
                }
                let theta = (m[q * n + q] - m[p * n + p]) / (2.0 * m[p * n + q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (mkp, mkq) = (m[k * n + p], m[k * n + q]);
                    m[k * n + p] = c * mkp - s * mkq;
                    m[k * n + q] = s * mkp + c * mkq;
                }
                for k in 0..n {
                    let (mpk, mqk) = (m[p * n + k], m[q * n + k]);
                    m[p * n + k] = c * mpk - s * mqk;
                    m[q * n + k] = s * mpk + c * mqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| m[i * n + i].total_cmp(&m[j * n + j]));
    let w = order.iter().map(|&i| m[i * n + i]).collect();
    let vs = (0..n * n).map(|i| v[(i / n) * n + order[i % n]]).collect();
    (w, vs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matmul(a: &[f64], b: &[f64], n: usize, k: usize, m: usize) -> Vec<f64> {
        (0..n * m)
            .map(|i| (0..k).map(|p| a[i / m * k + p] * b[p * m + i % m]).sum())
            .collect()
    }

    #[test]
    fn factors_reproduce_their_matrix() {
        let a = [4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let l = cholesky(&a, 3).unwrap();
        let lt: Vec<f64> = (0..9).map(|i| l[i % 3 * 3 + i / 3]).collect();
        let back = matmul(&l, &lt, 3, 3, 3);
        assert!(back.iter().zip(&a).all(|(x, y)| (x - y).abs() < 1e-12));
        assert!(cholesky(&[1.0, 2.0, 2.0, 1.0], 2).is_none());
        let b = [1.0, 2.0, 3.0];
        let x = trisolve(&l, &b, 3, 1, true);
        let lx = matmul(&l, &x, 3, 3, 1);
        assert!(lx.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-12));
        let (w, v) = eigh(&a, 3);
        assert!(w[0] < w[1] && w[1] < w[2]);
        let av = matmul(&a, &v, 3, 3, 3);
        assert!((0..9).all(|i| (av[i] - v[i] * w[i % 3]).abs() < 1e-12));
        let g = [0.0, 1.0, 2.0, 3.0];
        let p = lu_packed(&g, 2);
        assert_eq!(&p[2..5], &[1.0, 1.0, -1.0]);
        assert_eq!(p[5 + 2], 0.0);
    }
}
