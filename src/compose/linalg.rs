//! The public linear algebra (`wgrad::linalg`): matrices in the last two axes, any leading axes
//! a batch, JAX's semantics. Built on the Cholesky and triangular-solve primitives; every
//! function is differentiable to any order and batches under `vmap`.

use crate::base::error::{Result, or_panic, shape_err};
use crate::ir::tensor::Tensor;
use crate::prim::linalg::{check_square, cholesky_p, trisolve_p};

/// The lower Cholesky factor `L` of a symmetric positive-definite matrix, `L Lᵀ = a`, with a
/// positive diagonal (`jnp.linalg.cholesky`). Like JAX it works with `(a + aᵀ)/2`, so its
/// derivative is symmetric; a matrix that is not positive definite gives NaN everywhere (as
/// JAX), never an error. One workgroup per matrix: best for batches of matrices up to a few
/// hundred rows.
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
    check_square("cholesky", a)?;
    let sym = a.try_add(&a.try_mt()?)?.try_mul(&Tensor::scalar(0.5))?;
    cholesky_p(&sym)
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
    let n = a.shape()[a.rank() - 1];
    let diag = l.try_mul(&Tensor::eye(n))?.try_sum_axes(-1)?;
    diag.try_log()?
        .try_sum_axes(-1)?
        .try_mul(&Tensor::scalar(2.0))
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
