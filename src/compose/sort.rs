//! Sorting on the bitonic network of `prim/sort.rs`: `argsort` (stable), `sort`, `top_k`.

use crate::base::dtype::{DType, norm_axis};
use crate::base::error::{Result, dtype_err, or_panic, shape_err};
use crate::compose::shape::{try_concat, try_stack};
use crate::ir::tensor::Tensor;
use crate::prim::sort::bitonic_network;

/// The longest row the f32 index column numbers exactly.
const MAX_ROW: usize = 1 << 24;

/// The stable ascending argsort of `x` along its last axis (i32).
fn argsort_last(op: &'static str, x: &Tensor) -> Result<Tensor> {
    let r = x.rank();
    let n = x.shape()[r - 1];
    if n > MAX_ROW {
        return shape_err(
            op,
            format!(
                "rows of at most {MAX_ROW} elements, got shape {:?}",
                x.shape()
            ),
        );
    }
    if n <= 1 {
        return Tensor::zeros(x.shape()).try_cast(DType::I32);
    }
    let len = n.next_power_of_two();
    let vals = x.try_cast(DType::F32)?;
    let mut pad_shape = x.shape().to_vec();
    pad_shape[r - 1] = len - n;
    // Padding sorts after everything: NaN with indices past the row's.
    let vals = try_concat(&[vals, Tensor::full(&pad_shape, f32::NAN)], -1)?;
    let mut full = x.shape().to_vec();
    full[r - 1] = len;
    let idx = Tensor::arange(len).try_broadcast_to(&full)?;
    let packed = try_stack(&[vals, idx], -1)?;
    bitonic_network(&packed, len)?
        .try_slice_axis(-2, 0..n)?
        .try_slice_axis(-1, 1..2)?
        .try_squeeze(-1)?
        .try_cast(DType::I32)
}

/// `f` on `x` with `axis` moved last, and the result moved back.
fn along(
    op: &'static str,
    x: &Tensor,
    axis: isize,
    f: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    if !x.dtype().is_float() {
        return dtype_err(
            op,
            format!(
                "expected a float tensor, got {} of shape {:?}",
                x.dtype(),
                x.shape()
            ),
        );
    }
    let a = norm_axis(op, axis, x.rank())?;
    let last = x.rank() as isize - 1;
    let moved = x.try_moveaxis(a as isize, last)?;
    f(&moved)?.try_moveaxis(last, a as isize)
}

impl Tensor {
    /// The indices that sort `self` along `axis` (`jnp.argsort`, stable: equal values keep
    /// their order; NaN last), as i32. A bitonic network: `O(n log² n)` work in `O(log² n)`
    /// launches, any row length up to 2^24.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::from_vec(vec![3.0f32, 1.0, 2.0, 1.0], [4]);
    /// assert_eq!(x.argsort(0).to_vec::<i32>(), vec![1, 3, 2, 0]);
    /// ```
    #[track_caller]
    pub fn argsort(&self, axis: isize) -> Tensor {
        or_panic(self.try_argsort(axis))
    }
    /// Fallible [`Tensor::argsort`]: an error for a bad axis or non-float input.
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([3]).try_argsort(1).is_err());
    /// ```
    pub fn try_argsort(&self, axis: isize) -> Result<Tensor> {
        if self.rank() == 0 {
            return shape_err("argsort", "needs at least one axis, got a scalar");
        }
        along("argsort", self, axis, |x| argsort_last("argsort", x))
    }
    /// `self` sorted ascending along `axis` (`jnp.sort`; NaN last). Differentiable: the
    /// gradient goes back through the permutation.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::from_vec(vec![3.0f32, 1.0, 2.0], [3]);
    /// assert_eq!(x.sort(0).to_vec::<f32>(), vec![1.0, 2.0, 3.0]);
    /// ```
    #[track_caller]
    pub fn sort(&self, axis: isize) -> Tensor {
        or_panic(self.try_sort(axis))
    }
    /// Fallible [`Tensor::sort`].
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([3]).try_sort(-2).is_err());
    /// ```
    pub fn try_sort(&self, axis: isize) -> Result<Tensor> {
        if self.rank() == 0 {
            return shape_err("sort", "needs at least one axis, got a scalar");
        }
        along("sort", self, axis, |x| {
            x.try_take_along_axis(&argsort_last("sort", x)?, -1)
        })
    }
    /// The `k` largest entries along the last axis, descending, and their indices (i32), as
    /// `jax.lax.top_k`: equal entries in index order.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let (v, i) = Tensor::from_vec(vec![1.0f32, 5.0, 3.0, 5.0], [4]).top_k(2);
    /// assert_eq!(v.to_vec::<f32>(), vec![5.0, 5.0]);
    /// assert_eq!(i.to_vec::<i32>(), vec![1, 3]);
    /// ```
    #[track_caller]
    pub fn top_k(&self, k: usize) -> (Tensor, Tensor) {
        or_panic(self.try_top_k(k))
    }
    /// Fallible [`Tensor::top_k`]: an error unless `1 <= k <=` the last axis.
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([3]).try_top_k(4).is_err());
    /// ```
    pub fn try_top_k(&self, k: usize) -> Result<(Tensor, Tensor)> {
        let n = self.shape().last().copied().unwrap_or(0);
        if k == 0 || k > n {
            return shape_err(
                "top_k",
                format!(
                    "k = {k} must be in 1..={n} (the last axis of {:?})",
                    self.shape()
                ),
            );
        }
        if !self.dtype().is_float() {
            return dtype_err(
                "top_k",
                format!("expected a float tensor, got {}", self.dtype()),
            );
        }
        let idx = argsort_last("top_k", &self.try_neg()?)?.try_slice_axis(-1, 0..k)?;
        Ok((self.try_take_along_axis(&idx, -1)?, idx))
    }
}
