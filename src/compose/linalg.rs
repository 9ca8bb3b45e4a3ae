//! The public linear algebra (`wgrad::linalg`): matrices in the last two axes, any leading axes
//! a batch, JAX's semantics. Built on the Cholesky and triangular-solve primitives; every
//! function is differentiable to any order and batches under `vmap`.

use crate::base::error::{Result, or_panic, shape_err};
use crate::ir::tensor::Tensor;
use crate::prim::eigh::{eigh_p, parts};
use crate::prim::linalg::{LuParts, check_square, cholesky_p, lu_p, trisolve_p};

/// The lower Cholesky factor `L` of a symmetric positive-definite matrix, `L Lᵀ = a`, with a
/// positive diagonal (`jnp.linalg.cholesky`). Like JAX it works with `(a + aᵀ)/2`, so its
/// derivative is symmetric; a matrix that is not positive definite gives NaN everywhere (as
/// JAX), never an error. One workgroup per matrix up to 128 rows (batches of small matrices);
/// larger ones by blocks of 128, the trailing updates as matmuls.
///
/// ```
/// use wgrad::prelude::*;
/// let a = Tensor::from_vec(vec![4.0f32, 2.0, 2.0, 3.0], [2, 2]);
/// let l = wgrad::linalg::cholesky(&a);
/// let v = l.to_vec::<f32>();
/// assert!((v[0] - 2.0).abs() < 1e-6 && (v[2] - 1.0).abs() < 1e-6 && v[1] == 0.0);
/// assert!((v[3] - 2f32.sqrt()).abs() < 1e-6);
/// ```
#[track_caller]
pub fn cholesky(a: &Tensor) -> Tensor {
    or_panic(try_cholesky(a))
}

/// Fallible [`cholesky`]: an error for input that is not a stack of square f32 matrices.
///
/// ```
/// use wgrad::prelude::*;
/// let e = wgrad::linalg::try_cholesky(&Tensor::zeros([2, 3])).unwrap_err();
/// assert!(e.to_string().contains("cholesky") && e.to_string().contains("[2, 3]"));
/// ```
pub fn try_cholesky(a: &Tensor) -> Result<Tensor> {
    let n = check_square("cholesky", a)?;
    let sym = symmetrized(a)?;
    if n <= CHOLESKY_BLOCK {
        return cholesky_p(&sym);
    }
    let l = cholesky_blocked(&sym)?;
    // Not positive definite somewhere: NaN everywhere, as the unblocked kernel (and JAX).
    let diag = diagonal(&l)?.try_sum_axes(-1)?;
    let bad = diag
        .try_is_nan()?
        .try_expand_dims(-1)?
        .try_expand_dims(-1)?;
    let nan = Tensor::full(l.shape(), f32::NAN);
    crate::prim::logic::try_where(&bad, &nan, &l)
}

/// `(a + aᵀ) / 2`: what the symmetric factorizations work with (as JAX), so their derivatives
/// are symmetric.
fn symmetrized(a: &Tensor) -> Result<Tensor> {
    a.try_add(&a.try_mt()?)?.try_mul(Tensor::scalar(0.5))
}

/// The diagonals `(..., n)` of square matrices `(..., n, n)`: a gather of every `(n + 1)`-th
/// entry (no `n × n` mask).
fn diagonal(x: &Tensor) -> Result<Tensor> {
    let r = x.rank();
    let n = x.shape()[r - 1];
    let mut flat = x.shape()[..r - 2].to_vec();
    flat.push(n * n);
    let at: Vec<i64> = (0..n).map(|i| (i * (n + 1)) as i64).collect();
    x.try_reshape(flat)?.try_take(at, -1)
}

/// Matrices above this size are factored by blocks.
const CHOLESKY_BLOCK: usize = 128;

/// Right-looking blocked Cholesky of a symmetric `a`: the leading block by the kernel, the
/// panel below it by a triangular solve, the trailing matrix updated by a matmul (the bulk of
/// the work, on the matmul kernels) and factored the same way.
fn cholesky_blocked(a: &Tensor) -> Result<Tensor> {
    let n = a.shape()[a.rank() - 1];
    if n <= CHOLESKY_BLOCK {
        return cholesky_p(a);
    }
    let b = CHOLESKY_BLOCK;
    let rows = |t: &Tensor, r: std::ops::Range<usize>| t.try_slice_axis(-2, r);
    let cols = |t: &Tensor, r: std::ops::Range<usize>| t.try_slice_axis(-1, r);
    let a11 = cols(&rows(a, 0..b)?, 0..b)?;
    let a21 = cols(&rows(a, b..n)?, 0..b)?;
    let a22 = cols(&rows(a, b..n)?, b..n)?;
    let l11 = cholesky_p(&a11)?;
    // L21 = A21 L11⁻ᵀ, as a matmul by the block's inverse (one small solve, then the device's
    // fastest kernel; a substitution per row of A21 was the slowest launch of the factor).
    let eye = Tensor::eye(b).try_broadcast_to(l11.shape())?;
    let l11_inv = trisolve_p(&l11, &eye, true)?;
    let l21 = a21.try_matmul(&l11_inv.try_mt()?)?;
    let l22 = cholesky_blocked(&a22.try_sub(&l21.try_matmul(&l21.try_mt()?)?)?)?;
    let r = a.rank();
    let mut hi = vec![0; r];
    hi[r - 1] = n - b;
    let top = l11.try_pad(vec![0; r], hi)?;
    let bottom = crate::compose::shape::try_concat(&[l21, l22], -1)?;
    crate::compose::shape::try_concat(&[top, bottom], -2)
}

/// `x` with `a x = b` for a triangular `a` (`jax.scipy.linalg.solve_triangular(a, b,
/// lower=...)`): only the named triangle of `a`, diagonal included, is read, so the other has
/// derivative 0. `a` is `(..., n, n)`; `b` is `(..., n, k)` with the same batch axes, or a
/// vector `(..., n)`. One invocation per right-hand side, O(n²) each.
///
/// ```
/// use wgrad::prelude::*;
/// let a = Tensor::from_vec(vec![2.0f32, 0.0, 1.0, 4.0], [2, 2]);
/// let b = Tensor::from_vec(vec![2.0f32, 9.0], [2]);
/// let x = wgrad::linalg::triangular_solve(&a, &b, true).to_vec::<f32>();
/// assert_eq!(x, vec![1.0, 2.0]);
/// ```
#[track_caller]
pub fn triangular_solve(a: &Tensor, b: &Tensor, lower: bool) -> Tensor {
    or_panic(try_triangular_solve(a, b, lower))
}

/// Fallible [`triangular_solve`]: an error names the op and both shapes.
///
/// ```
/// use wgrad::prelude::*;
/// let e = wgrad::linalg::try_triangular_solve(&Tensor::eye(3), &Tensor::zeros([2, 1]), true);
/// assert!(e.unwrap_err().to_string().contains("[2, 1]"));
/// ```
pub fn try_triangular_solve(a: &Tensor, b: &Tensor, lower: bool) -> Result<Tensor> {
    with_matrix_rhs("triangular_solve", a, b, |b| trisolve_p(a, b, lower))
}

/// `x` with `(l lᵀ) x = b` for a lower Cholesky factor `l` (`jax.scipy.linalg.cho_solve((l,
/// True), b)`): two triangular solves. Shapes as [`triangular_solve`].
///
/// ```
/// use wgrad::prelude::*;
/// let a = Tensor::from_vec(vec![4.0f32, 2.0, 2.0, 3.0], [2, 2]);
/// let b = Tensor::from_vec(vec![6.0f32, 5.0], [2]);
/// let x = wgrad::linalg::cho_solve(&wgrad::linalg::cholesky(&a), &b).to_vec::<f32>();
/// assert!((x[0] - 1.0).abs() < 1e-5 && (x[1] - 1.0).abs() < 1e-5);
/// ```
#[track_caller]
pub fn cho_solve(l: &Tensor, b: &Tensor) -> Tensor {
    or_panic(try_cho_solve(l, b))
}

/// Fallible [`cho_solve`]: an error names the op and both shapes.
///
/// ```
/// use wgrad::prelude::*;
/// assert!(wgrad::linalg::try_cho_solve(&Tensor::eye(2), &Tensor::zeros([3])).is_err());
/// ```
pub fn try_cho_solve(l: &Tensor, b: &Tensor) -> Result<Tensor> {
    with_matrix_rhs("cho_solve", l, b, |b| {
        let y = trisolve_p(l, b, true)?;
        trisolve_p(&l.try_mt()?, &y, false)
    })
}

/// `log det a` of a symmetric positive-definite matrix from its Cholesky factor:
/// `2 Σ log diag L` (shape: the batch shape). NaN when `a` is not positive definite.
///
/// ```
/// use wgrad::prelude::*;
/// let a = Tensor::from_vec(vec![4.0f32, 2.0, 2.0, 3.0], [2, 2]);
/// assert!((wgrad::linalg::cholesky_logdet(&a).item() - 8f32.ln()).abs() < 1e-5);
/// ```
#[track_caller]
pub fn cholesky_logdet(a: &Tensor) -> Tensor {
    or_panic(try_cholesky_logdet(a))
}

/// Fallible [`cholesky_logdet`].
///
/// ```
/// use wgrad::prelude::*;
/// assert!(wgrad::linalg::try_cholesky_logdet(&Tensor::zeros([3])).is_err());
/// ```
pub fn try_cholesky_logdet(a: &Tensor) -> Result<Tensor> {
    let l = try_cholesky(a)?;
    diagonal(&l)?
        .try_log()?
        .try_sum_axes(-1)?
        .try_mul(Tensor::scalar(2.0))
}

/// The LU factorization with partial pivoting of square matrices, `P a = L U`
/// (`jax.scipy.linalg.lu_factor`): `(lu, perm)` with L below the diagonal of `lu` (its unit
/// diagonal implied), U on and above it, and `perm` (i32, shape `(..., n)`) such that row `i`
/// of `P a` is row `perm[i]` of `a`. One workgroup per matrix, right-looking.
///
/// ```
/// use wgrad::prelude::*;
/// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]);
/// let (lu, perm) = wgrad::linalg::lu_factor(&a);
/// assert_eq!(perm.to_vec::<i32>(), vec![1, 0]); // the larger pivot 3 comes first
/// let v = lu.to_vec::<f32>();
/// assert_eq!(v[0], 3.0);
/// assert!((v[2] - 1.0 / 3.0).abs() < 1e-6);
/// ```
#[track_caller]
pub fn lu_factor(a: &Tensor) -> (Tensor, Tensor) {
    or_panic(try_lu_factor(a))
}

/// Fallible [`lu_factor`].
///
/// ```
/// use wgrad::prelude::*;
/// assert!(wgrad::linalg::try_lu_factor(&Tensor::zeros([2, 3])).is_err());
/// ```
pub fn try_lu_factor(a: &Tensor) -> Result<(Tensor, Tensor)> {
    let n = check_square("lu_factor", a)?;
    let packed = lu_p(a)?;
    let parts = LuParts::of(&packed)?;
    Ok((packed.try_slice_axis(-1, 0..n)?, parts.perm))
}

/// `x` with `a x = b` for square `a` (`jnp.linalg.solve`), through the LU factorization with
/// partial pivoting. `b` is `(..., n, k)` with `a`'s batch axes, or a vector `(..., n)`. A
/// singular `a` gives inf or NaN, as JAX.
///
/// ```
/// use wgrad::prelude::*;
/// let a = Tensor::from_vec(vec![0.0f32, 2.0, 1.0, 1.0], [2, 2]);
/// let b = Tensor::from_vec(vec![4.0f32, 3.0], [2]);
/// let x = wgrad::linalg::solve(&a, &b).to_vec::<f32>();
/// assert!((x[0] - 1.0).abs() < 1e-6 && (x[1] - 2.0).abs() < 1e-6);
/// ```
#[track_caller]
pub fn solve(a: &Tensor, b: &Tensor) -> Tensor {
    or_panic(try_solve(a, b))
}

/// Fallible [`solve`]: an error names the op and both shapes.
///
/// ```
/// use wgrad::prelude::*;
/// let e = wgrad::linalg::try_solve(&Tensor::eye(2), &Tensor::zeros([3, 1])).unwrap_err();
/// assert!(e.to_string().contains("solve") && e.to_string().contains("[3, 1]"));
/// ```
pub fn try_solve(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    with_matrix_rhs("solve", a, b, |b| {
        let f = LuParts::of(&lu_p(a)?)?;
        let pb = f.permute_rows(b, &f.perm)?;
        let y = trisolve_p(&f.l, &pb, true)?;
        trisolve_p(&f.u, &y, false)
    })
}

/// The inverse of square matrices (`jnp.linalg.inv`), as `solve(a, I)`.
///
/// ```
/// use wgrad::prelude::*;
/// let a = Tensor::from_vec(vec![2.0f32, 0.0, 0.0, 4.0], [2, 2]);
/// assert_eq!(wgrad::linalg::inv(&a).to_vec::<f32>(), vec![0.5, 0.0, 0.0, 0.25]);
/// ```
#[track_caller]
pub fn inv(a: &Tensor) -> Tensor {
    or_panic(try_inv(a))
}

/// Fallible [`inv`].
///
/// ```
/// use wgrad::prelude::*;
/// assert!(wgrad::linalg::try_inv(&Tensor::zeros([2, 3])).is_err());
/// ```
pub fn try_inv(a: &Tensor) -> Result<Tensor> {
    let n = check_square("inv", a)?;
    try_solve(a, &Tensor::eye(n).try_broadcast_to(a.shape())?)
}

/// The determinant of square matrices (`jnp.linalg.det`; shape: the batch shape), from the LU
/// factorization: the permutation's sign times the product of U's diagonal.
///
/// ```
/// use wgrad::prelude::*;
/// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]);
/// assert!((wgrad::linalg::det(&a).item() + 2.0).abs() < 1e-5);
/// ```
#[track_caller]
pub fn det(a: &Tensor) -> Tensor {
    or_panic(try_det(a))
}

/// Fallible [`det`].
///
/// ```
/// use wgrad::prelude::*;
/// assert!(wgrad::linalg::try_det(&Tensor::zeros([3])).is_err());
/// ```
pub fn try_det(a: &Tensor) -> Result<Tensor> {
    let (sign, diag) = lu_diagonal("det", a)?;
    sign.try_mul(&diag.try_prod_axes(-1)?)
}

/// `(sign, log |det a|)` of square matrices (`jnp.linalg.slogdet`), each of the batch shape:
/// the log-determinant without overflow for large matrices.
///
/// ```
/// use wgrad::prelude::*;
/// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]);
/// let (s, l) = wgrad::linalg::slogdet(&a);
/// assert_eq!(s.item(), -1.0);
/// assert!((l.item() - 2f32.ln()).abs() < 1e-5);
/// ```
#[track_caller]
pub fn slogdet(a: &Tensor) -> (Tensor, Tensor) {
    or_panic(try_slogdet(a))
}

/// Fallible [`slogdet`].
///
/// ```
/// use wgrad::prelude::*;
/// assert!(wgrad::linalg::try_slogdet(&Tensor::zeros([2, 3])).is_err());
/// ```
pub fn try_slogdet(a: &Tensor) -> Result<(Tensor, Tensor)> {
    let (sign, diag) = lu_diagonal("slogdet", a)?;
    let s = sign.try_mul(&diag.try_sign()?.try_prod_axes(-1)?)?;
    Ok((s, diag.try_abs()?.try_log()?.try_sum_axes(-1)?))
}

/// The permutation's sign and U's diagonal `(..., n)` of `a`'s LU factorization.
fn lu_diagonal(op: &'static str, a: &Tensor) -> Result<(Tensor, Tensor)> {
    check_square(op, a)?;
    let f = LuParts::of(&lu_p(a)?)?;
    let diag = diagonal(&f.u)?;
    Ok((f.sign, diag))
}

/// The reduced QR factorization of `a` (`(..., m, n)`, `m >= n`, full column rank): `q`
/// `(..., m, n)` with orthonormal columns and `r` `(..., n, n)` upper triangular with a
/// positive diagonal, `a = q r` — the unique such factorization (`jnp.linalg.qr` up to the
/// signs LAPACK leaves). Computed as CholeskyQR2 (two rounds of `q = a·chol(aᵀa)⁻ᵀ`): matmuls
/// and triangular solves, accurate for condition numbers up to about 10³ in f32, and
/// differentiable through its parts.
///
/// ```
/// use wgrad::prelude::*;
/// let a = Tensor::from_vec(vec![3.0f32, 1.0, 4.0, 2.0, 0.0, 2.0], [3, 2]);
/// let (q, r) = wgrad::linalg::qr(&a);
/// let back = q.matmul(&r).to_vec::<f32>();
/// assert!(back.iter().zip(a.to_vec::<f32>()).all(|(x, y)| (x - y).abs() < 1e-4));
/// assert!(r.to_vec::<f32>()[0] > 0.0 && r.to_vec::<f32>()[2] == 0.0);
/// ```
#[track_caller]
pub fn qr(a: &Tensor) -> (Tensor, Tensor) {
    or_panic(try_qr(a))
}

/// Fallible [`qr`]: an error unless `a` is a stack of f32 matrices with `m >= n`.
///
/// ```
/// use wgrad::prelude::*;
/// let e = wgrad::linalg::try_qr(&Tensor::zeros([2, 3])).unwrap_err();
/// assert!(e.to_string().contains("qr") && e.to_string().contains("[2, 3]"));
/// ```
pub fn try_qr(a: &Tensor) -> Result<(Tensor, Tensor)> {
    let r = a.rank();
    if r < 2 || a.shape()[r - 2] < a.shape()[r - 1] || a.dtype() != crate::DType::F32 {
        return shape_err(
            "qr",
            format!(
                "expected f32 matrices (..., m, n) with m >= n, got {} of shape {:?}",
                a.dtype(),
                a.shape()
            ),
        );
    }
    // One round: l = chol(xᵀx), q = x l⁻ᵀ = (l⁻¹ xᵀ)ᵀ.
    let round = |x: &Tensor| -> Result<(Tensor, Tensor)> {
        let xt = x.try_mt()?;
        let l = try_cholesky(&xt.try_matmul(x)?)?;
        Ok((trisolve_p(&l, &xt, true)?.try_mt()?, l))
    };
    let (q1, l1) = round(a)?;
    let (q, l2) = round(&q1)?;
    Ok((q, l1.try_matmul(&l2)?.try_mt()?))
}

/// The eigendecomposition of symmetric matrices (`jnp.linalg.eigh`): eigenvalues ascending
/// `(..., n)` and unit eigenvectors as the columns of `(..., n, n)` (each column's sign is
/// arbitrary). Works with `(a + aᵀ)/2`, so derivatives are symmetric, as JAX's; eigenvectors
/// of repeated eigenvalues have no derivative (their part is zero). Cyclic Jacobi sweeps, one
/// workgroup per matrix: for matrices up to 128 rows.
///
/// ```
/// use wgrad::prelude::*;
/// let a = Tensor::from_vec(vec![2.0f32, 1.0, 1.0, 2.0], [2, 2]);
/// let (w, v) = wgrad::linalg::eigh(&a);
/// let w = w.to_vec::<f32>();
/// assert!((w[0] - 1.0).abs() < 1e-5 && (w[1] - 3.0).abs() < 1e-5);
/// let v = v.to_vec::<f32>(); // columns ±(1, -1)/√2 and ±(1, 1)/√2
/// assert!((v[0].abs() - 0.5f32.sqrt()).abs() < 1e-5);
/// ```
#[track_caller]
pub fn eigh(a: &Tensor) -> (Tensor, Tensor) {
    or_panic(try_eigh(a))
}

/// Fallible [`eigh`]: an error for non-square input or matrices over 128 rows.
///
/// ```
/// use wgrad::prelude::*;
/// assert!(wgrad::linalg::try_eigh(&Tensor::zeros([2, 3])).is_err());
/// ```
pub fn try_eigh(a: &Tensor) -> Result<(Tensor, Tensor)> {
    check_square("eigh", a)?;
    parts(&eigh_p(&symmetrized(a)?)?)
}

/// The eigenvalues of symmetric matrices, ascending (`jnp.linalg.eigvalsh`).
///
/// ```
/// use wgrad::prelude::*;
/// let w = wgrad::linalg::eigvalsh(&Tensor::from_vec(vec![3.0f32, 0.0, 0.0, -1.0], [2, 2]));
/// assert_eq!(w.to_vec::<f32>(), vec![-1.0, 3.0]);
/// ```
#[track_caller]
pub fn eigvalsh(a: &Tensor) -> Tensor {
    or_panic(try_eigvalsh(a))
}

/// Fallible [`eigvalsh`].
///
/// ```
/// use wgrad::prelude::*;
/// assert!(wgrad::linalg::try_eigvalsh(&Tensor::zeros([3])).is_err());
/// ```
pub fn try_eigvalsh(a: &Tensor) -> Result<Tensor> {
    Ok(try_eigh(a)?.0)
}

/// The singular values of `(..., m, n)` matrices, descending, `(..., min(m, n))`
/// (`jnp.linalg.svd(a, compute_uv=False)`): the largest eigenvalues of the symmetric
/// `[[0, a], [aᵀ, 0]]`, which are `±σ` — so no squaring of the condition number, as `aᵀa`
/// would. For `m + n` up to 128.
///
/// ```
/// use wgrad::prelude::*;
/// let a = Tensor::from_vec(vec![3.0f32, 0.0, 0.0, 0.0, -2.0, 0.0], [2, 3]);
/// let s = wgrad::linalg::svdvals(&a).to_vec::<f32>();
/// assert!((s[0] - 3.0).abs() < 1e-5 && (s[1] - 2.0).abs() < 1e-5);
/// ```
#[track_caller]
pub fn svdvals(a: &Tensor) -> Tensor {
    or_panic(try_svdvals(a))
}

/// Fallible [`svdvals`]: an error for input of rank below 2 or `m + n` over 128.
///
/// ```
/// use wgrad::prelude::*;
/// assert!(wgrad::linalg::try_svdvals(&Tensor::zeros([3])).is_err());
/// ```
pub fn try_svdvals(a: &Tensor) -> Result<Tensor> {
    let r = a.rank();
    if r < 2 {
        return shape_err(
            "svdvals",
            format!(
                "expected matrices in the last two axes, got shape {:?}",
                a.shape()
            ),
        );
    }
    let (m, n) = (a.shape()[r - 2], a.shape()[r - 1]);
    let w = try_eigvalsh(&augmented(a)?)?;
    let k = m.min(n);
    w.try_slice_axis(-1, m + n - k..m + n)?
        .try_flip(crate::prim::reduce::Axes::List(vec![-1]))
}

/// The reduced singular value decomposition of `(..., m, n)` matrices (`jnp.linalg.svd(a,
/// full_matrices=False)`): `(u, s, vt)` with `u` `(..., m, k)`, `s` `(..., k)` descending and
/// `vt` `(..., k, n)`, `k = min(m, n)`, `a = u diag(s) vt`. From the eigenvectors of
/// `[[0, a], [aᵀ, 0]]`, whose eigenvector for `σ` is `(u; v)/√2` — so for `m + n` up to 128, and
/// differentiable while the singular values are distinct and positive (each pair of columns
/// of `u` and rows of `vt` may flip sign together).
///
/// ```
/// use wgrad::prelude::*;
/// let a = Tensor::from_vec(vec![3.0f32, 1.0, 1.0, -1.0, 3.0, 1.0], [2, 3]);
/// let (u, s, vt) = wgrad::linalg::svd(&a);
/// let back = (u * s.expand_dims(-2)).matmul(&vt).to_vec::<f32>();
/// assert!(back.iter().zip(a.to_vec::<f32>()).all(|(x, y)| (x - y).abs() < 1e-4));
/// ```
#[track_caller]
pub fn svd(a: &Tensor) -> (Tensor, Tensor, Tensor) {
    or_panic(try_svd(a))
}

/// Fallible [`svd`]: an error for input of rank below 2 or `m + n` over 128.
///
/// ```
/// use wgrad::prelude::*;
/// assert!(wgrad::linalg::try_svd(&Tensor::zeros([3])).is_err());
/// ```
pub fn try_svd(a: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
    let r = a.rank();
    if r < 2 {
        return shape_err(
            "svd",
            format!(
                "expected matrices in the last two axes, got shape {:?}",
                a.shape()
            ),
        );
    }
    let (m, n) = (a.shape()[r - 2], a.shape()[r - 1]);
    let (w, v) = try_eigh(&augmented(a)?)?;
    let k = m.min(n);
    let rev = |t: &Tensor| t.try_flip(crate::prim::reduce::Axes::List(vec![-1]));
    let s = rev(&w.try_slice_axis(-1, m + n - k..m + n)?)?;
    let top =
        rev(&v.try_slice_axis(-1, m + n - k..m + n)?)?.try_mul(Tensor::scalar(2f32.sqrt()))?;
    let u = top.try_slice_axis(-2, 0..m)?;
    let vt = top.try_slice_axis(-2, m..m + n)?.try_mt()?;
    Ok((u, s, vt))
}

/// `[[0, a], [aᵀ, 0]]` of `(..., m, n)` matrices: `(..., m + n, m + n)`.
fn augmented(a: &Tensor) -> Result<Tensor> {
    let r = a.rank();
    let (m, n) = (a.shape()[r - 2], a.shape()[r - 1]);
    let pad = |t: &Tensor, lo: [usize; 2], hi: [usize; 2]| -> Result<Tensor> {
        let (mut l, mut h) = (vec![0; r], vec![0; r]);
        l[r - 2..].copy_from_slice(&lo);
        h[r - 2..].copy_from_slice(&hi);
        t.try_pad(l, h)
    };
    pad(a, [0, m], [n, 0])?.try_add(&pad(&a.try_mt()?, [m, 0], [0, n])?)
}

/// Runs `f` on `b` as a matrix right-hand side for the square matrices `a`: a vector `b`
/// (rank one less than `a`) becomes one column and comes back a vector.
fn with_matrix_rhs(
    op: &'static str,
    a: &Tensor,
    b: &Tensor,
    f: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let n = check_square(op, a)?;
    let r = a.rank();
    let batch = &a.shape()[..r - 2];
    if b.rank() + 1 == r && b.shape()[..r - 2] == *batch && b.shape()[r - 2] == n {
        return f(&b.try_expand_dims(-1)?)?.try_squeeze(-1);
    }
    if b.rank() == r && b.shape()[..r - 2] == *batch && b.shape()[r - 2] == n {
        return f(b);
    }
    shape_err(
        op,
        format!(
            "a of shape {:?} needs b of shape {:?} + ({n}, k) or ({n},), got {:?}",
            a.shape(),
            batch,
            b.shape()
        ),
    )
}
