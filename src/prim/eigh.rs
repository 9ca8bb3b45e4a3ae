//! The symmetric eigendecomposition (f32, last two axes, batched): cyclic Jacobi sweeps, one
//! workgroup per matrix (`shaders/jacobi.wgsl`), a fixed number of sweeps as separate launches
//! on the output in place (each far below the drivers' loop cap), then a sort. Suited to
//! matrices up to 128 rows. The result is packed as `(..., 2n + 1, n)`: the eigenvalues
//! ascending, the unit eigenvectors as columns, and the working matrix.
//!
//! Rules as JAX's `eigh_jvp`: with `M = Vᵀ dA V`, `dλ = diag(M)` and `dV = V (F ∘ M)`,
//! `F_ij = 1/(λ_j - λ_i)` off the diagonal (0 where eigenvalues coincide, whose eigenvectors
//! have no derivative); the VJP is its transpose, `V (diag(λ̄) + F ∘ (Vᵀ V̄)) Vᵀ`.

use crate::base::dtype::{DType, numel};
use crate::base::error::{Result, shape_err};
use crate::base::host::Host;
use crate::ir::op::{Fusion, Op};
use crate::ir::tensor::Tensor;
use crate::kernel::templates;
use crate::prim::Primitive;
use crate::prim::linalg::{check_square, from_lower};
use crate::prim::lower::{LowerCx, Lowered};

/// Jacobi sweeps run (convergence is quadratic: 6 to 10 reach f32 precision for n ≤ 128).
const SWEEPS: usize = 12;

/// The largest matrix served.
pub(crate) const MAX_EIGH: usize = 128;

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Eigh;

/// The eigenvalues `(..., n)` and eigenvectors `(..., n, n)` of a packed result.
pub(crate) fn parts(packed: &Tensor) -> Result<(Tensor, Tensor)> {
    let n = packed.shape()[packed.rank() - 1];
    let w = packed.try_slice_axis(-2, 0..1)?.try_squeeze(-2)?;
    Ok((w, packed.try_slice_axis(-2, 1..n + 1)?))
}

/// `F_ij = 1/(λ_j - λ_i)` off the diagonal, 0 on it and where eigenvalues coincide.
fn gaps(w: &Tensor) -> Result<Tensor> {
    let d = w.try_expand_dims(-2)?.try_sub(&w.try_expand_dims(-1)?)?;
    let zero = d.try_compare("==", &d.zeros_like())?;
    let safe = crate::prim::logic::try_where(&zero, &d.ones_like(), &d)?;
    crate::prim::logic::try_where(&zero, &d.zeros_like(), &d.ones_like().try_div(&safe)?)
}

impl Primitive for Eigh {
    fn name(&self) -> &'static str {
        "eigh"
    }
    fn fusion(&self) -> Fusion {
        Fusion::KernelRoot { epilogue: false }
    }
    /// Eigenvalues and eigenvectors as the kernel packs them; the working rows hold the
    /// converged working matrix, `diag(λ)`. Eigenvectors are defined up to sign: compare
    /// what depends on them only through sign-free expressions (`V diag(f(λ)) Vᵀ`).
    fn reference(&self, node: &Tensor, x: &[Host]) -> Result<Host> {
        let r = x[0].shape.len();
        let n = x[0].shape[r - 1];
        let mut data = vec![];
        for a in x[0].data.chunks(n * n.max(1)) {
            // The kernel reads the lower triangle: (a + aᵀ)/2 of it mirrored.
            let sym: Vec<f64> = (0..n * n)
                .map(|i| {
                    let (p, q) = (i / n, i % n);
                    a[p.max(q) * n + p.min(q)]
                })
                .collect();
            let (w, v) = crate::base::dense::eigh(&sym, n);
            data.extend(&w);
            data.extend(&v);
            data.extend((0..n * n).map(|i| if i / n == i % n { w[i / n] } else { 0.0 }));
        }
        Ok(Host::new(node.shape(), node.dtype(), data))
    }
    fn lower(&self, node: &Tensor, cx: &mut LowerCx) -> Result<Lowered> {
        let a = &node.inputs()[0];
        let r = a.rank();
        let n = a.shape()[r - 1];
        let mats = numel(&a.shape()[..r - 2]);
        let mut kernels = vec![];
        for mode in 0..=SWEEPS {
            let mut e = cx.kernel();
            e.read_back_output("eigh", node)?;
            let v = e.value_fn(a)?;
            e.push_fn(format!("fn src(i: u32) -> f32 {{\n    return {v}(i);\n}}"));
            e.const_u32("N", n)?;
            e.const_u32("MATS", mats)?;
            e.const_u32("MODE", (mode > 0) as usize + (mode == SWEEPS) as usize)?;
            e.note_inlined(node);
            kernels.push(e.finish(
                &templates::JACOBI,
                "eigh",
                cx.out(),
                DType::F32,
                numel(node.shape()),
                cx.grid(mats * 64, 64)?,
            )?);
        }
        Ok(Lowered::Kernels(kernels))
    }
    fn jvp(&self, _: &[Tensor], y: &Tensor, t: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        let Some(da) = &t[0] else { return Ok(None) };
        let (w, v) = parts(y)?;
        let m = v.try_mt()?.try_matmul(&from_lower(da)?)?.try_matmul(&v)?;
        let n = w.shape()[w.rank() - 1];
        let dw = m.try_mul(Tensor::eye(n))?.try_sum_axes(-1)?;
        let dv = v.try_matmul(&gaps(&w)?.try_mul(&m)?)?;
        // Packed as the result: the eigenvalues' row, V's rows, zeros for the working rows.
        let r = v.rank();
        let rows = |lo: usize, hi: usize| {
            let (mut l, mut h) = (vec![0; r], vec![0; r]);
            l[r - 2] = lo;
            h[r - 2] = hi;
            (l, h)
        };
        let (l0, h0) = rows(0, 2 * n);
        let (l1, h1) = rows(1, n);
        let packed = dw
            .try_expand_dims(-2)?
            .try_pad(l0, h0)?
            .try_add(&dv.try_pad(l1, h1)?)?;
        Ok(Some(packed))
    }
    fn vjp(
        &self,
        _: &[Tensor],
        y: &Tensor,
        ct: &Tensor,
        _: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let (w, v) = parts(y)?;
        let (gw, gv) = parts(ct)?;
        let n = w.shape()[w.rank() - 1];
        let inner = gw
            .try_expand_dims(-1)?
            .try_mul(Tensor::eye(n))?
            .try_add(&gaps(&w)?.try_mul(&v.try_mt()?.try_matmul(&gv)?)?)?;
        let full = v.try_matmul(&inner)?.try_matmul(&v.try_mt()?)?;
        // Onto the lower triangle the kernel reads.
        let g = full.try_tril(0)?.try_add(&full.try_mt()?.try_tril(-1)?)?;
        Ok(vec![Some(g)])
    }
    fn batch(&self, x: &[Tensor], _: &Tensor, _: &[bool], _: usize) -> Result<Tensor> {
        eigh_p(&x[0])
    }
}

/// The eigendecomposition primitive (packed result; `a` read through its lower triangle).
pub(crate) fn eigh_p(a: &Tensor) -> Result<Tensor> {
    let n = check_square("eigh", a)?;
    if n > MAX_EIGH {
        return shape_err(
            "eigh",
            format!(
                "matrices of at most {MAX_EIGH} rows are served, got shape {:?}",
                a.shape()
            ),
        );
    }
    let mut shape = a.shape().to_vec();
    shape[a.rank() - 2] = 2 * n + 1;
    if numel(a.shape()) == 0 {
        return Tensor::zeros(shape).try_cast(DType::F32);
    }
    Tensor::from_op(Op::Eigh(Eigh), vec![a.clone()], shape, DType::F32)
}
