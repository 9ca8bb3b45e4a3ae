//! Linear-algebra primitives on the last two axes, batched over the leading ones: the lower
//! Cholesky factor and triangular solves (f32). Kernels: one workgroup per matrix for the
//! factorization (`shaders/cholesky.wgsl`), one invocation per (matrix, right-hand side) for
//! the solve (`shaders/trisolve.wgsl`) — suited to batches of small and medium systems.
//! Rules as JAX's `lax/linalg.py`, written with these two primitives, so they differentiate
//! again: Cholesky's JVP is `L·Φ(L⁻¹ dA L⁻ᵀ)` (Φ: the lower triangle, half the diagonal), a
//! solve's `A⁻¹(dB − dA·X)`.

use crate::base::dtype::{DType, numel};
use crate::base::error::{Result, dtype_err, shape_err};
use crate::base::host::Host;
use crate::ir::op::{Fusion, Op};
use crate::ir::tensor::Tensor;
use crate::kernel::{Kernel, templates};
use crate::prim::Primitive;
use crate::prim::lower::{LowerCx, Lowered};
use crate::prim::with_batch;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Linalg {
    /// The lower Cholesky factor of a symmetric matrix, of which only the lower triangle is
    /// read; NaN everywhere when it is not positive definite (as JAX).
    Cholesky,
    /// `X` with `A X = B` for a triangular `A`, of which only the `lower` (or upper) triangle,
    /// diagonal included, is read.
    TriSolve { lower: bool },
    /// LU with partial pivoting, packed as `(..., n, n + 3)`: L (unit diagonal implied) and U in
    /// the first `n` columns, then the permutation, its inverse, and its sign in row 0 (see
    /// `shaders/lu.wgsl`).
    Lu,
}

/// Φ of Cholesky's rules: the strictly lower triangle and half the diagonal.
fn phi(p: &Tensor) -> Result<Tensor> {
    let n = p.shape()[p.rank() - 1];
    let diag = p.try_mul(Tensor::eye(n))?;
    p.try_tril(-1)?.try_add(&diag.try_mul(Tensor::scalar(0.5))?)
}

/// The triangle a solve reads.
fn triangle(x: &Tensor, lower: bool) -> Result<Tensor> {
    if lower { x.try_tril(0) } else { x.try_triu(0) }
}

/// The symmetric matrix that a Cholesky kernel sees in `x`: its lower triangle, mirrored.
pub(crate) fn from_lower(x: &Tensor) -> Result<Tensor> {
    x.try_tril(0)?.try_add(&x.try_tril(-1)?.try_mt()?)
}

/// Matrices factored by one invocation each (below, a workgroup per matrix would idle).
const SMALL: usize = 32;

/// Loop trips one invocation may spend in one launch: software drivers stop an invocation's
/// loops after 65,535 iterations in all, and a wrong factor would be silent.
const TRIP_BUDGET: u64 = 32_768;

/// `0..n` split into consecutive ranges whose summed `cost` stays within [`TRIP_BUDGET`] (a
/// single step over it gets a range of its own).
fn chunks(n: usize, cost: impl Fn(usize) -> u64) -> Vec<(usize, usize)> {
    let mut out = vec![];
    let (mut lo, mut spent) = (0, 0);
    for j in 0..n {
        let c = cost(j);
        if j > lo && spent + c > TRIP_BUDGET {
            out.push((lo, j));
            (lo, spent) = (j, 0);
        }
        spent += c;
    }
    out.push((lo, n));
    out
}

impl Linalg {
    /// The launch that does columns (steps) `lo..hi` of the factorization (solve).
    fn kernel(&self, node: &Tensor, cx: &mut LowerCx, lo: usize, hi: usize) -> Result<Kernel> {
        let a = &node.inputs()[0];
        let r = a.rank();
        let n = a.shape()[r - 1];
        let mats = numel(&a.shape()[..r - 2]);
        let mut e = cx.kernel();
        e.read_back_output(self.name(), node)?;
        e.const_u32("N", n)?;
        e.const_u32("MATS", mats)?;
        let (template, groups) = match self {
            Linalg::Cholesky | Linalg::Lu => {
                let v = e.value_fn(a)?;
                e.push_fn(format!("fn src(i: u32) -> f32 {{\n    return {v}(i);\n}}"));
                e.const_u32("J0", lo)?;
                e.const_u32("J1", hi)?;
                if *self == Linalg::Lu {
                    e.const_u32("W", n + 3)?;
                    (&templates::LU, cx.grid(mats * 64, 64)?)
                } else if n <= SMALL {
                    (&templates::CHOLESKY_SMALL, cx.grid(mats, 64)?)
                } else {
                    (&templates::CHOLESKY, cx.grid(mats * 64, 64)?)
                }
            }
            Linalg::TriSolve { lower } => {
                let b = &node.inputs()[1];
                let k = b.shape()[r - 1];
                let va = e.value_fn(a)?;
                let vb = e.value_fn(b)?;
                e.push_fn(format!(
                    "fn src_a(i: u32) -> f32 {{\n    return {va}(i);\n}}"
                ));
                e.push_fn(format!(
                    "fn src_b(i: u32) -> f32 {{\n    return {vb}(i);\n}}"
                ));
                e.const_u32("K", k)?;
                e.const_u32("LOWER", *lower as usize)?;
                e.const_u32("S0", lo)?;
                e.const_u32("S1", hi)?;
                (&templates::TRISOLVE, cx.grid(mats * k, 64)?)
            }
        };
        e.note_inlined(node);
        e.finish(
            template,
            self.name(),
            cx.out(),
            node.dtype(),
            numel(node.shape()),
            groups,
        )
    }
}

impl Primitive for Linalg {
    fn name(&self) -> &'static str {
        match self {
            Linalg::Cholesky => "cholesky",
            Linalg::TriSolve { .. } => "triangular_solve",
            Linalg::Lu => "lu",
        }
    }
    fn fusion(&self) -> Fusion {
        Fusion::KernelRoot { epilogue: false }
    }
    fn reference(&self, node: &Tensor, x: &[Host]) -> Result<Host> {
        use crate::base::dense;
        let r = x[0].shape.len();
        let n = x[0].shape[r - 1];
        let mats = x[0].data.chunks(n * n.max(1));
        let mut data = vec![];
        match self {
            Linalg::Cholesky => {
                for a in mats {
                    data.extend(dense::cholesky(a, n).unwrap_or_else(|| vec![f64::NAN; n * n]));
                }
            }
            Linalg::TriSolve { lower } => {
                let k = node.shape()[r - 1];
                for (a, b) in mats.zip(x[1].data.chunks(n * k)) {
                    data.extend(dense::trisolve(a, b, n, k, *lower));
                }
            }
            Linalg::Lu => mats.for_each(|a| data.extend(dense::lu_packed(a, n))),
        }
        Ok(Host::new(node.shape(), node.dtype(), data))
    }
    fn lower(&self, node: &Tensor, cx: &mut LowerCx) -> Result<Lowered> {
        let a = &node.inputs()[0];
        let r = a.rank();
        let n = a.shape()[r - 1];
        let rows = (n as u64).div_ceil(64);
        // Each launch does a range of columns (of steps, for a solve) whose loop trips per
        // invocation stay within the budget.
        let ranges = match self {
            // Small matrices: one invocation each, the whole factorization in one launch.
            Linalg::Cholesky if n <= SMALL => vec![(0, n)],
            Linalg::Cholesky => chunks(n, |j| rows * (j as u64 + 2)),
            Linalg::Lu => chunks(n, |j| 2 * n as u64 + rows * (n - j) as u64),
            Linalg::TriSolve { .. } => chunks(n, |s| s as u64 + 1),
        };
        let mut kernels = vec![];
        for (lo, hi) in ranges {
            kernels.push(self.kernel(node, cx, lo, hi)?);
        }
        Ok(Lowered::Kernels(kernels))
    }
    fn jvp(&self, x: &[Tensor], y: &Tensor, t: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        match self {
            Linalg::Cholesky => {
                let Some(da) = &t[0] else { return Ok(None) };
                let da = from_lower(da)?;
                let left = trisolve_p(y, &da, true)?;
                let p = trisolve_p(y, &left.try_mt()?, true)?;
                Ok(Some(y.try_matmul(&phi(&p)?)?))
            }
            Linalg::TriSolve { lower } => {
                let mut rhs = t[1].clone();
                if let Some(da) = &t[0] {
                    let prod = triangle(da, *lower)?.try_matmul(y)?;
                    rhs = Some(match rhs {
                        Some(db) => db.try_sub(&prod)?,
                        None => prod.neg(),
                    });
                }
                rhs.map(|r| trisolve_p(&x[0], &r, *lower)).transpose()
            }
            Linalg::Lu => {
                let Some(da) = &t[0] else { return Ok(None) };
                let f = LuParts::of(y)?;
                // X = L⁻¹ (P dA) U⁻¹; dL = L tril(X, -1), dU = triu(X) U.
                let pda = f.permute_rows(da, &f.perm)?;
                let x1 = trisolve_p(&f.l, &pda, true)?;
                let xm = trisolve_p(&f.u.try_mt()?, &x1.try_mt()?, true)?.try_mt()?;
                let dl = f.l.try_matmul(&xm.try_tril(-1)?)?;
                let du = xm.try_triu(0)?.try_matmul(&f.u)?;
                f.pack(&dl.try_tril(-1)?.try_add(&du.try_triu(0)?)?)
                    .map(Some)
            }
        }
    }
    fn vjp(
        &self,
        x: &[Tensor],
        y: &Tensor,
        ct: &Tensor,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        match self {
            Linalg::Cholesky => {
                // The JVP's steps transposed: Lᵀ·ct, Φ, then L⁻ᵀ (·) L⁻¹, then onto the lower
                // triangle the kernel reads.
                let lt = y.try_mt()?;
                let p = phi(&lt.try_matmul(ct)?)?;
                let z = trisolve_p(&lt, &p, false)?;
                let m = trisolve_p(&lt, &z.try_mt()?, false)?.try_mt()?;
                let g = m.try_tril(0)?.try_add(&m.try_mt()?.try_tril(-1)?)?;
                Ok(vec![Some(g)])
            }
            Linalg::TriSolve { lower } => {
                let gb = trisolve_p(&x[0].try_mt()?, ct, !lower)?;
                let ga = if needs[0] {
                    Some(triangle(&gb.try_matmul(&y.try_mt()?)?, *lower)?.neg())
                } else {
                    None
                };
                Ok(vec![ga, needs[1].then_some(gb)])
            }
            Linalg::Lu => {
                // The JVP's steps transposed.
                let f = LuParts::of(y)?;
                let n = f.l.shape()[f.l.rank() - 1];
                let g = ct.try_slice_axis(-1, 0..n)?;
                let xbar =
                    f.l.try_mt()?
                        .try_matmul(&g.try_tril(-1)?)?
                        .try_tril(-1)?
                        .try_add(&g.try_triu(0)?.try_matmul(&f.u.try_mt()?)?.try_triu(0)?)?;
                let z = trisolve_p(&f.l.try_mt()?, &xbar, false)?;
                let m = trisolve_p(&f.u, &z.try_mt()?, false)?.try_mt()?;
                Ok(vec![Some(f.permute_rows(&m, &f.inverse)?)])
            }
        }
    }
    fn batch(&self, x: &[Tensor], _: &Tensor, batched: &[bool], size: usize) -> Result<Tensor> {
        match self {
            Linalg::Cholesky => cholesky_p(&x[0]),
            Linalg::Lu => lu_p(&x[0]),
            Linalg::TriSolve { lower } => {
                let a = with_batch(&x[0], batched[0], size)?;
                let b = with_batch(&x[1], batched[1], size)?;
                trisolve_p(&a, &b, *lower)
            }
        }
    }
}

/// Checks that `a` is an f32 stack of square matrices, for `op`.
pub(crate) fn check_square(op: &'static str, a: &Tensor) -> Result<usize> {
    if a.dtype() != DType::F32 {
        return dtype_err(
            op,
            format!(
                "expected f32 matrices, got {} of shape {:?}",
                a.dtype(),
                a.shape()
            ),
        );
    }
    let r = a.rank();
    if r < 2 || a.shape()[r - 1] != a.shape()[r - 2] {
        return shape_err(
            op,
            format!(
                "expected square matrices in the last two axes, got shape {:?}",
                a.shape()
            ),
        );
    }
    Ok(a.shape()[r - 1])
}

/// The Cholesky primitive (`a` read through its lower triangle).
pub(crate) fn cholesky_p(a: &Tensor) -> Result<Tensor> {
    check_square("cholesky", a)?;
    if numel(a.shape()) == 0 {
        return Ok(a.zeros_like());
    }
    Tensor::from_op(
        Op::Linalg(Linalg::Cholesky),
        vec![a.clone()],
        a.shape().to_vec(),
        DType::F32,
    )
}

/// The triangular-solve primitive: `a` of shape `(..., n, n)`, `b` of `(..., n, k)`.
pub(crate) fn trisolve_p(a: &Tensor, b: &Tensor, lower: bool) -> Result<Tensor> {
    let n = check_square("triangular_solve", a)?;
    let r = a.rank();
    if b.dtype() != DType::F32
        || b.rank() != r
        || b.shape()[..r - 2] != a.shape()[..r - 2]
        || b.shape()[r - 2] != n
    {
        return shape_err(
            "triangular_solve",
            format!(
                "a of shape {:?} needs b of shape (..., {n}, k) with the same batch axes, got {} of shape {:?}",
                a.shape(),
                b.dtype(),
                b.shape()
            ),
        );
    }
    if numel(b.shape()) == 0 {
        return Ok(b.zeros_like());
    }
    Tensor::from_op(
        Op::Linalg(Linalg::TriSolve { lower }),
        vec![a.clone(), b.clone()],
        b.shape().to_vec(),
        DType::F32,
    )
}

/// The parts of a packed LU result.
pub(crate) struct LuParts {
    /// L with its unit diagonal.
    pub l: Tensor,
    /// U.
    pub u: Tensor,
    /// Row `i` of `P A` is row `perm[i]` of `A` (i32, shape `(..., n)`).
    pub perm: Tensor,
    /// The inverse permutation (i32).
    pub inverse: Tensor,
    /// The permutation's sign, ±1 (shape: the batch shape).
    pub sign: Tensor,
}

impl LuParts {
    pub(crate) fn of(packed: &Tensor) -> Result<LuParts> {
        let n = packed.shape()[packed.rank() - 2];
        let lu = packed.try_slice_axis(-1, 0..n)?;
        let index = |k: usize| -> Result<Tensor> {
            packed
                .try_slice_axis(-1, n + k..n + k + 1)?
                .try_squeeze(-1)?
                .try_cast(DType::I32)
        };
        let sign = packed
            .try_slice_axis(-1, n + 2..n + 3)?
            .try_slice_axis(-2, 0..1)?
            .try_squeeze(-1)?
            .try_squeeze(-1)?;
        Ok(LuParts {
            l: lu.try_tril(-1)?.try_add(Tensor::eye(n))?,
            u: lu.try_triu(0)?,
            perm: index(0)?,
            inverse: index(1)?,
            sign: sign.stop_gradient(),
        })
    }
    /// Row `i` of the result is row `perm[i]` of `x` (for each matrix of the batch).
    pub(crate) fn permute_rows(&self, x: &Tensor, perm: &Tensor) -> Result<Tensor> {
        let idx = perm.try_expand_dims(-1)?.try_broadcast_to(x.shape())?;
        x.try_take_along_axis(&idx, -2)
    }
    /// `lu` (shape `(..., n, n)`) as a packed result with zero index columns (a tangent).
    fn pack(&self, lu: &Tensor) -> Result<Tensor> {
        let r = lu.rank();
        let mut hi = vec![0; r];
        hi[r - 1] = 3;
        lu.try_pad(vec![0; r], hi)
    }
}

/// The LU primitive (packed result, see [`Linalg::Lu`]).
pub(crate) fn lu_p(a: &Tensor) -> Result<Tensor> {
    let n = check_square("lu", a)?;
    let mut shape = a.shape().to_vec();
    shape[a.rank() - 1] = n + 3;
    if numel(a.shape()) == 0 {
        return Tensor::zeros(shape).try_cast(DType::F32);
    }
    Tensor::from_op(Op::Linalg(Linalg::Lu), vec![a.clone()], shape, DType::F32)
}
