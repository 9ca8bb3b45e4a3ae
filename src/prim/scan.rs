//! Scans: `cumsum`, the inclusive cumulative sum along the last axis. The primitive scans rows
//! of at most [`SCAN_BLOCK`] elements, one invocation per row (`shaders/scan.wgsl`); the public
//! `cumsum` scans any axis of any length work-efficiently on top of it: blocks are scanned in
//! parallel, their totals are scanned (recursively), and each block adds the total of the
//! blocks before it. O(n) work, about log_64(n) levels of kernels, and sums that stay short
//! (blocks of 64), which also keeps rounding error low.

use crate::base::dtype::{DType, norm_axis, numel};
use crate::base::error::{Result, dtype_err, or_panic, shape_err};
use crate::ir::op::{Fusion, Op};
use crate::ir::tensor::Tensor;
use crate::kernel::templates;
use crate::kernel::wgsl::store_expr;
use crate::prim::Primitive;
use crate::prim::lower::{LowerCx, Lowered};

/// The longest row the primitive scans in one invocation.
pub(crate) const SCAN_BLOCK: usize = 64;

/// Inclusive cumulative sum along the last axis (rows of at most [`SCAN_BLOCK`]).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Cumsum;

impl Primitive for Cumsum {
    fn name(&self) -> &'static str {
        "cumsum"
    }
    fn fusion(&self) -> Fusion {
        Fusion::KernelRoot { epilogue: false }
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
            "fn finish(acc: Acc) -> {} {{\n    return {};\n}}",
            node.dtype().wgsl_storage(),
            store_expr(&format!("{}(acc)", node.dtype().wgsl()), node.dtype())
        ));
        e.note_inlined(node);
        let groups = cx.grid(rows, 64)?;
        Ok(Lowered::Kernels(vec![e.finish(
            &templates::SCAN,
            "cumsum",
            cx.out(),
            node.dtype(),
            numel(node.shape()),
            groups,
        )?]))
    }
    fn jvp(&self, _: &[Tensor], _: &Tensor, t: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        t[0].as_ref().map(cumsum_p).transpose()
    }
    fn vjp(
        &self,
        _: &[Tensor],
        _: &Tensor,
        ct: &Tensor,
        _: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        // The transpose of a prefix sum is a suffix sum: reverse, scan, reverse.
        let last = ct.rank() - 1;
        let rev = crate::prim::movement::flip_p(ct, &[last])?;
        let scanned = cumsum_p(&rev)?;
        Ok(vec![Some(crate::prim::movement::flip_p(
            &scanned,
            &[last],
        )?)])
    }
    fn batch(&self, x: &[Tensor], _: &Tensor, _: &[bool], _: usize) -> Result<Tensor> {
        cumsum_p(&x[0])
    }
}

pub(crate) fn cumsum_p(x: &Tensor) -> Result<Tensor> {
    if !matches!(x.dtype(), DType::F32 | DType::F16 | DType::I32 | DType::U32) {
        return dtype_err(
            "cumsum",
            format!("not defined for {} (shape {:?})", x.dtype(), x.shape()),
        );
    }
    if x.rank() == 0 || x.shape()[x.rank() - 1] > SCAN_BLOCK {
        return shape_err(
            "cumsum",
            format!(
                "the primitive scans rows of at most {SCAN_BLOCK}, got {:?}",
                x.shape()
            ),
        );
    }
    Tensor::from_op(
        Op::Cumsum(Cumsum),
        vec![x.clone()],
        x.shape().to_vec(),
        x.dtype(),
    )
}

/// Inclusive cumulative sum along the last axis, any length.
fn cumsum_last(x: &Tensor) -> Result<Tensor> {
    let r = x.rank();
    let l = x.shape()[r - 1];
    if l <= SCAN_BLOCK {
        return cumsum_p(x);
    }
    let blocks = l.div_ceil(SCAN_BLOCK);
    let mut hi = vec![0; r];
    hi[r - 1] = blocks * SCAN_BLOCK - l;
    let mut split = x.shape()[..r - 1].to_vec();
    split.extend([blocks, SCAN_BLOCK]);
    let local = cumsum_p(&x.try_pad(vec![0; r], hi)?.try_reshape(&split)?)?;
    // Each block's total, and the sum of the totals of the blocks before it.
    let totals = local
        .try_slice_axis(-1, SCAN_BLOCK - 1..SCAN_BLOCK)?
        .try_squeeze(-1)?;
    let inclusive = cumsum_last(&totals)?;
    let mut lo = vec![0; r];
    lo[r - 1] = 1;
    let before = inclusive
        .try_pad(lo, vec![0; r])?
        .try_slice_axis(-1, 0..blocks)?;
    let y = local + before.try_expand_dims(-1)?;
    let mut flat = x.shape().to_vec();
    flat[r - 1] = blocks * SCAN_BLOCK;
    y.try_reshape(flat)?.try_slice_axis(-1, 0..l)
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
        let a = norm_axis("cumsum", axis, self.rank())?;
        if self.shape()[a] == 0 {
            return Ok(self.clone());
        }
        let last = self.rank() - 1;
        let moved = self.try_moveaxis(a as isize, last as isize)?;
        cumsum_last(&moved)?.try_moveaxis(last as isize, a as isize)
    }
}
