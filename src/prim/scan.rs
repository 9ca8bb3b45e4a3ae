//! Scans: inclusive cumulative sums, products, maxima and log-sum-exps along the last axis.
//! The primitive scans rows of at most [`SCAN_BLOCK`] elements, one invocation per row
//! (`shaders/scan.wgsl`); the public `cumsum`, `cumprod`, `cummax`, `cummin` and
//! `logcumsumexp` scan any axis of any length work-efficiently on top of it: blocks are
//! scanned in parallel, their totals are scanned (recursively), and each block combines the
//! total of the blocks before it. O(n) work, about log_64(n) levels of kernels, and partial
//! results that stay short (blocks of 64), which also keeps rounding error low.
//!
//! Rules: a sum's transpose is the reversed sum; a maximum's derivative follows the position
//! of the running maximum (a gather); products and log-sum-exps use the row's weights
//! `∂y_i/∂x_j` (`j <= i`), at most 64 × 64 per row, built with the scans themselves — a
//! product's without dividing, so zeros are exact.

use crate::base::dtype::{DType, norm_axis, numel};
use crate::base::error::{Result, dtype_err, or_panic, shape_err};
use crate::base::host::Host;
use crate::ir::op::{Fusion, Op};
use crate::ir::tensor::Tensor;
use crate::kernel::templates;
use crate::kernel::wgsl::store_expr;
use crate::prim::Primitive;
use crate::prim::index::{Index, index_p};
use crate::prim::lower::{LowerCx, Lowered};

/// The longest row the primitive scans in one invocation.
pub(crate) const SCAN_BLOCK: usize = 64;

/// The combining operation of a scan.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum ScanOp {
    Sum,
    Prod,
    Max,
    LogAddExp,
}

impl ScanOp {
    /// WGSL of `combine(a, b)` for accumulators of `acc`.
    fn combine(self, acc: DType) -> &'static str {
        match (self, acc) {
            (ScanOp::Sum, _) => "a + b",
            (ScanOp::Prod, _) => "a * b",
            (ScanOp::Max, DType::F32) => "wg_max(a, b)",
            (ScanOp::Max, _) => "max(a, b)",
            (ScanOp::LogAddExp, _) => "wg_logaddexp(a, b)",
        }
    }
    /// WGSL of the identity for accumulators of `acc`.
    fn identity(self, acc: DType) -> String {
        match (self, acc) {
            (ScanOp::Sum, _) => "Acc(0)".into(),
            (ScanOp::Prod, _) => "Acc(1)".into(),
            (ScanOp::Max, DType::I32) => "-2147483647i - 1i".into(),
            (ScanOp::Max, DType::U32) => "0u".into(),
            (ScanOp::Max | ScanOp::LogAddExp, _) => "-wg_inf(0.0)".into(),
        }
    }
    /// The identity as a host value (for padding the blocks' totals).
    fn identity_value(self) -> f32 {
        match self {
            ScanOp::Sum => 0.0,
            ScanOp::Prod => 1.0,
            ScanOp::Max | ScanOp::LogAddExp => f32::NEG_INFINITY,
        }
    }
    /// `a ⊕ b` on tensors (broadcasting).
    fn apply(self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        match self {
            ScanOp::Sum => a.try_add(b),
            ScanOp::Prod => a.try_mul(b),
            ScanOp::Max => a.try_maximum(b),
            ScanOp::LogAddExp => a.try_logaddexp(b),
        }
    }
}

/// Inclusive scan along the last axis (rows of at most [`SCAN_BLOCK`]).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Scan {
    pub op: ScanOp,
}

/// `W[..., i, j] = ∂y_i/∂x_j` of a product or log-sum-exp scan of `x` (rows ≤ 64), zero for
/// `j > i`.
fn weights(op: ScanOp, x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let r = x.rank();
    let l = x.shape()[r - 1];
    let lower = Tensor::ones([l, l])
        .try_tril(0)?
        .try_compare(">", &Tensor::scalar(0.5))?;
    let zeros = || -> Result<Tensor> {
        let mut s = x.shape().to_vec();
        s.push(l);
        Tensor::zeros(s).try_cast(x.dtype())
    };
    match op {
        ScanOp::LogAddExp => {
            // exp(x_j - y_i) <= 1 for j <= i: no overflow.
            let d = x.try_expand_dims(-2)?.try_sub(&y.try_expand_dims(-1)?)?;
            crate::prim::logic::try_where(&lower, &d.try_exp()?, &zeros()?)
        }
        _ => {
            // Row j of z is x with x_j replaced by 1: its scan at i is Π_{k <= i, k != j} x_k.
            let eye = Tensor::eye(l).try_compare(">", &Tensor::scalar(0.5))?;
            let xs = x.try_expand_dims(-2)?.try_broadcast_to(zeros()?.shape())?;
            let z = crate::prim::logic::try_where(&eye, &xs.ones_like(), &xs)?;
            let c = scan_p(ScanOp::Prod, &z)?.try_mt()?; // [.., i, j]
            crate::prim::logic::try_where(&lower, &c, &zeros()?)
        }
    }
}

/// The position of the running maximum of each prefix (i32), for cummax's rules.
fn argmax_positions(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let l = x.shape()[x.rank() - 1];
    let at = Tensor::arange(l).try_broadcast_to(x.shape())?;
    let none = at.ones_like().try_neg()?;
    let hit = x.try_compare("==", y)?;
    let marks = crate::prim::logic::try_where(&hit, &at, &none)?.stop_gradient();
    scan_p(ScanOp::Max, &marks)?
        .try_maximum(Tensor::scalar(0.0))?
        .try_cast(DType::I32)
}

impl Primitive for Scan {
    fn name(&self) -> &'static str {
        match self.op {
            ScanOp::Sum => "cumsum",
            ScanOp::Prod => "cumprod",
            ScanOp::Max => "cummax",
            ScanOp::LogAddExp => "logcumsumexp",
        }
    }
    fn fusion(&self) -> Fusion {
        Fusion::KernelRoot { epilogue: false }
    }
    fn reference(&self, node: &Tensor, x: &[Host]) -> Result<Host> {
        use crate::prim::binary::BinaryOp;
        let l = *node.shape().last().unwrap_or(&1);
        let f = |a: f64, b: f64| match self.op {
            ScanOp::Sum => a + b,
            ScanOp::Prod => a * b,
            ScanOp::Max => BinaryOp::Maximum.eval(a, b, false),
            ScanOp::LogAddExp => BinaryOp::LogAddExp.eval(a, b, false),
        };
        let mut data = x[0].data.clone();
        for row in data.chunks_mut(l.max(1)) {
            for k in 1..row.len() {
                row[k] = f(row[k - 1], row[k]);
            }
        }
        Ok(Host::new(node.shape(), node.dtype(), data))
    }
    fn lower(&self, node: &Tensor, cx: &mut LowerCx) -> Result<Lowered> {
        let x = &node.inputs()[0];
        let l = *x.shape().last().unwrap_or(&1);
        let rows = numel(x.shape()) / l.max(1);
        let acc = if node.dtype() == DType::F16 {
            DType::F32
        } else {
            node.dtype()
        };
        let mut e = cx.kernel();
        let v = e.value_fn(x)?;
        e.const_u32("ROWS", rows)?;
        e.const_u32("L", l)?;
        e.alias("Acc", acc.wgsl());
        e.push_fn(format!(
            "fn src(row: u32, k: u32) -> Acc {{\n    return Acc({v}(row * L + k));\n}}"
        ));
        e.push_fn(format!(
            "fn identity() -> Acc {{\n    return {};\n}}",
            self.op.identity(acc)
        ));
        e.push_fn(format!(
            "fn combine(a: Acc, b: Acc) -> Acc {{\n    return {};\n}}",
            self.op.combine(acc)
        ));
        e.push_fn(format!(
            "fn finish(acc: Acc) -> {} {{\n    return {};\n}}",
            node.dtype().wgsl_storage(),
            store_expr(&format!("{}(acc)", node.dtype().wgsl()), node.dtype())
        ));
        e.note_inlined(node);
        let groups = cx.grid(rows, 64)?;
        Ok(Lowered::Kernels(vec![e.finish(
            &templates::SCAN,
            self.name(),
            cx.out(),
            node.dtype(),
            numel(node.shape()),
            groups,
        )?]))
    }
    fn jvp(&self, x: &[Tensor], y: &Tensor, t: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        let Some(t) = t[0].as_ref() else {
            return Ok(None);
        };
        Ok(Some(match self.op {
            ScanOp::Sum => scan_p(ScanOp::Sum, t)?,
            ScanOp::Max => {
                let last = t.rank() - 1;
                index_p(
                    Index::Gather { axis: last },
                    t,
                    &argmax_positions(&x[0], y)?,
                )?
            }
            op => weights(op, &x[0], y)?
                .try_mul(&t.try_expand_dims(-2)?)?
                .try_sum_axes(-1)?,
        }))
    }
    fn vjp(
        &self,
        x: &[Tensor],
        y: &Tensor,
        ct: &Tensor,
        _: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let last = ct.rank() - 1;
        Ok(vec![Some(match self.op {
            ScanOp::Sum => {
                // The transpose of a prefix sum is a suffix sum: reverse, scan, reverse.
                let rev = crate::prim::movement::flip_p(ct, &[last])?;
                let scanned = scan_p(ScanOp::Sum, &rev)?;
                crate::prim::movement::flip_p(&scanned, &[last])?
            }
            ScanOp::Max => {
                let n = ct.shape()[last];
                let at = argmax_positions(&x[0], y)?;
                index_p(Index::ScatterAdd { axis: last, n }, ct, &at)?
            }
            op => weights(op, &x[0], y)?
                .try_mul(&ct.try_expand_dims(-1)?)?
                .try_sum_axes(-2)?,
        })])
    }
    fn batch(&self, x: &[Tensor], _: &Tensor, _: &[bool], _: usize) -> Result<Tensor> {
        scan_p(self.op, &x[0])
    }
}

pub(crate) fn scan_p(op: ScanOp, x: &Tensor) -> Result<Tensor> {
    let name = Scan { op }.name();
    let ok = match op {
        ScanOp::LogAddExp => x.dtype().is_float(),
        _ => matches!(x.dtype(), DType::F32 | DType::F16 | DType::I32 | DType::U32),
    };
    if !ok {
        return dtype_err(
            name,
            format!("not defined for {} (shape {:?})", x.dtype(), x.shape()),
        );
    }
    if x.rank() == 0 || x.shape()[x.rank() - 1] > SCAN_BLOCK {
        return shape_err(
            name,
            format!(
                "the primitive scans rows of at most {SCAN_BLOCK}, got {:?}",
                x.shape()
            ),
        );
    }
    Tensor::from_op(
        Op::Scan(Scan { op }),
        vec![x.clone()],
        x.shape().to_vec(),
        x.dtype(),
    )
}

/// Inclusive scan along the last axis, any length.
fn scan_last(op: ScanOp, x: &Tensor) -> Result<Tensor> {
    let r = x.rank();
    let l = x.shape()[r - 1];
    if l <= SCAN_BLOCK {
        return scan_p(op, x);
    }
    let blocks = l.div_ceil(SCAN_BLOCK);
    let mut hi = vec![0; r];
    hi[r - 1] = blocks * SCAN_BLOCK - l;
    let mut split = x.shape()[..r - 1].to_vec();
    split.extend([blocks, SCAN_BLOCK]);
    // The padding comes after the real elements, so it changes none of their prefixes.
    let local = scan_p(op, &x.try_pad(vec![0; r], hi)?.try_reshape(&split)?)?;
    // Each block's total, and the combination of the totals of the blocks before it.
    let totals = local
        .try_slice_axis(-1, SCAN_BLOCK - 1..SCAN_BLOCK)?
        .try_squeeze(-1)?;
    let inclusive = scan_last(op, &totals)?;
    let mut lo = vec![0; r];
    lo[r - 1] = 1;
    let shifted = inclusive
        .try_pad(lo, vec![0; r])?
        .try_slice_axis(-1, 0..blocks)?;
    // The first block has nothing before it: the identity.
    let first = Tensor::arange(blocks).try_compare("<", &Tensor::scalar(0.5))?;
    let identity = Tensor::full(shifted.shape(), op.identity_value()).try_cast(x.dtype())?;
    let before = crate::prim::logic::try_where(&first, &identity, &shifted)?;
    let y = op.apply(&local, &before.try_expand_dims(-1)?)?;
    let mut flat = x.shape().to_vec();
    flat[r - 1] = blocks * SCAN_BLOCK;
    y.try_reshape(flat)?.try_slice_axis(-1, 0..l)
}

/// The scan along `axis` of `x`.
fn scan_axis(op: ScanOp, x: &Tensor, axis: isize) -> Result<Tensor> {
    let name = Scan { op }.name();
    let a = norm_axis(name, axis, x.rank())?;
    if x.shape()[a] == 0 {
        return Ok(x.clone());
    }
    let last = x.rank() - 1;
    let moved = x.try_moveaxis(a as isize, last as isize)?;
    scan_last(op, &moved)?.try_moveaxis(last as isize, a as isize)
}

impl Tensor {
    /// Inclusive cumulative sum along `axis` (negative counts from the end), as `jnp.cumsum`.
    /// Work-efficient at any length: blocks of 64 are scanned in parallel and their totals
    /// scanned again.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]);
    /// assert_eq!(x.cumsum(1).to_vec::<f32>(), vec![1.0, 3.0, 3.0, 7.0]);
    /// assert_eq!(x.cumsum(0).to_vec::<f32>(), vec![1.0, 2.0, 4.0, 6.0]);
    /// ```
    #[track_caller]
    pub fn cumsum(&self, axis: isize) -> Tensor {
        or_panic(self.try_cumsum(axis))
    }
    /// Fallible [`Tensor::cumsum`].
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([2]).try_cumsum(1).is_err());
    /// ```
    pub fn try_cumsum(&self, axis: isize) -> Result<Tensor> {
        scan_axis(ScanOp::Sum, self, axis)
    }
    /// Inclusive cumulative product along `axis` (`jnp.cumprod`); exact derivatives with zeros
    /// in the row (no division).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [4]);
    /// assert_eq!(x.cumprod(0).to_vec::<f32>(), vec![1.0, 2.0, 6.0, 24.0]);
    /// ```
    #[track_caller]
    pub fn cumprod(&self, axis: isize) -> Tensor {
        or_panic(self.try_cumprod(axis))
    }
    /// Fallible [`Tensor::cumprod`].
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([2]).try_cumprod(1).is_err());
    /// ```
    pub fn try_cumprod(&self, axis: isize) -> Result<Tensor> {
        scan_axis(ScanOp::Prod, self, axis)
    }
    /// Inclusive running maximum along `axis` (`jax.lax.cummax`; NaN propagates). The
    /// derivative follows the position of the running maximum.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::from_vec(vec![1.0f32, 3.0, 2.0, 5.0], [4]);
    /// assert_eq!(x.cummax(0).to_vec::<f32>(), vec![1.0, 3.0, 3.0, 5.0]);
    /// ```
    #[track_caller]
    pub fn cummax(&self, axis: isize) -> Tensor {
        or_panic(self.try_cummax(axis))
    }
    /// Fallible [`Tensor::cummax`].
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([2]).try_cummax(2).is_err());
    /// ```
    pub fn try_cummax(&self, axis: isize) -> Result<Tensor> {
        scan_axis(ScanOp::Max, self, axis)
    }
    /// Inclusive running minimum along `axis` (`jax.lax.cummin`), as `-cummax(-x)`.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::from_vec(vec![3.0f32, 1.0, 2.0], [3]);
    /// assert_eq!(x.cummin(0).to_vec::<f32>(), vec![3.0, 1.0, 1.0]);
    /// ```
    #[track_caller]
    pub fn cummin(&self, axis: isize) -> Tensor {
        or_panic(self.try_cummin(axis))
    }
    /// Fallible [`Tensor::cummin`].
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([2]).try_cummin(2).is_err());
    /// ```
    pub fn try_cummin(&self, axis: isize) -> Result<Tensor> {
        scan_axis(ScanOp::Max, &self.try_neg()?, axis)?.try_neg()
    }
    /// `y_i = log Σ_{j <= i} e^{x_j}` along `axis` (`jax.lax.cumlogsumexp`), without overflow.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::from_vec(vec![0.0f32, 0.0, 1000.0], [3]);
    /// let y = x.logcumsumexp(0).to_vec::<f32>();
    /// assert!((y[1] - 2f32.ln()).abs() < 1e-6 && (y[2] - 1000.0).abs() < 1e-3);
    /// ```
    #[track_caller]
    pub fn logcumsumexp(&self, axis: isize) -> Tensor {
        or_panic(self.try_logcumsumexp(axis))
    }
    /// Fallible [`Tensor::logcumsumexp`]: an error for non-float input or a bad axis.
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([2]).try_logcumsumexp(1).is_err());
    /// ```
    pub fn try_logcumsumexp(&self, axis: isize) -> Result<Tensor> {
        scan_axis(ScanOp::LogAddExp, self, axis)
    }
}
