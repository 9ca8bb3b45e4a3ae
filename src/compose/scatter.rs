//! Scatters and segment reductions on the `scatter_add` primitive (deterministic: every output
//! element sums its contributions in index order, no float atomics): `scatter_add`, `scatter`
//! (set), `segment_sum`, `segment_max`. Their VJPs are gathers with the same indices.

use crate::base::dtype::norm_axis;
use crate::base::error::{Result, or_panic, shape_err};
use crate::compose::indexing::Indices;
use crate::ir::tensor::Tensor;
use crate::prim::index::{Index, index_p};

/// The indices (1-D, checked when on the host) and the scatter of `updates` into zeros of
/// `shape` along `axis`.
fn scattered(
    op: &'static str,
    shape: &[usize],
    indices: Indices,
    updates: &Tensor,
    axis: isize,
) -> Result<(Tensor, usize)> {
    let a = norm_axis(op, axis, shape.len())?;
    let idx = indices.resolve(op, shape[a], shape)?;
    let m = idx.numel();
    let mut want = shape.to_vec();
    want[a] = m;
    if idx.rank() != 1 || updates.shape() != want.as_slice() {
        return shape_err(
            op,
            format!(
                "x of shape {shape:?} and 1-D indices along axis {a} need updates of shape {want:?}, got indices {:?} and updates {:?}",
                idx.shape(),
                updates.shape()
            ),
        );
    }
    if m == 0 {
        return Ok((Tensor::zeros(shape).try_cast(updates.dtype())?, a));
    }
    let mut ishape = vec![1; shape.len()];
    ishape[a] = m;
    let idx = idx.try_reshape(ishape)?.try_broadcast_to(&want)?;
    Ok((
        index_p(
            Index::ScatterAdd {
                axis: a,
                n: shape[a],
            },
            updates,
            &idx,
        )?,
        a,
    ))
}

impl Tensor {
    /// `x.at[(slice(None),) * axis + (indices,)].add(updates)`: `x` plus each slice
    /// `updates[.., j, ..]` (along `axis`) added at position `indices[j]`; repeated indices add
    /// up, in index order (deterministic). `updates` has `x`'s shape with `len(indices)` along
    /// `axis`. Host indices out of range are an error naming the index and the axis; device
    /// indices are wrapped once if negative and clamped (see [`Indices`]).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::zeros([4]);
    /// let u = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [3]);
    /// assert_eq!(x.scatter_add([0, 2, 0], &u, 0).to_vec::<f32>(), vec![4.0, 0.0, 2.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn scatter_add(
        &self,
        indices: impl Into<Indices>,
        updates: &Tensor,
        axis: isize,
    ) -> Tensor {
        or_panic(self.try_scatter_add(indices, updates, axis))
    }
    /// Fallible [`Tensor::scatter_add`]: an error names the op, the shapes, or the index out of
    /// range.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let e = Tensor::zeros([4]).try_scatter_add([4], &Tensor::ones([1]), 0).unwrap_err();
    /// assert!(e.to_string().contains("index 4") && e.to_string().contains("size 4"));
    /// ```
    pub fn try_scatter_add(
        &self,
        indices: impl Into<Indices>,
        updates: &Tensor,
        axis: isize,
    ) -> Result<Tensor> {
        let (s, _) = scattered("scatter_add", self.shape(), indices.into(), updates, axis)?;
        self.try_add(&s)
    }
    /// `x.at[(slice(None),) * axis + (indices,)].set(updates)` for unique indices: the slices
    /// at `indices` replaced by `updates`' (with repeated indices the values would add up).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::from_vec(vec![1.0f32, 1.0, 1.0], [3]);
    /// let u = Tensor::from_vec(vec![5.0f32, 7.0], [2]);
    /// assert_eq!(x.scatter([2, 0], &u, 0).to_vec::<f32>(), vec![7.0, 1.0, 5.0]);
    /// ```
    #[track_caller]
    pub fn scatter(&self, indices: impl Into<Indices>, updates: &Tensor, axis: isize) -> Tensor {
        or_panic(self.try_scatter(indices, updates, axis))
    }
    /// Fallible [`Tensor::scatter`].
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert!(Tensor::zeros([3]).try_scatter([0], &Tensor::ones([2]), 0).is_err());
    /// ```
    pub fn try_scatter(
        &self,
        indices: impl Into<Indices>,
        updates: &Tensor,
        axis: isize,
    ) -> Result<Tensor> {
        let indices = indices.into();
        let (s, _) = scattered("scatter", self.shape(), indices.clone(), updates, axis)?;
        let (hit, _) = scattered(
            "scatter",
            self.shape(),
            indices,
            &updates.ones_like().stop_gradient(),
            axis,
        )?;
        let keep = hit.try_compare("==", &hit.zeros_like())?;
        crate::prim::logic::try_where(&keep, self, &s)
    }
}

/// `jax.ops.segment_sum(x, ids, num_segments)`: row `s` of the result (shape
/// `(num_segments,) + x.shape[1:]`) is the sum of the rows `x[i]` with `ids[i] = s`; empty
/// segments are zero. Ids need not be sorted; host ids out of range are an error.
///
/// ```
/// use wgrad::prelude::*;
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [4]);
/// assert_eq!(wgrad::segment_sum(&x, [1, 0, 1, 1], 3).to_vec::<f32>(), vec![2.0, 8.0, 0.0]);
/// ```
#[track_caller]
pub fn segment_sum(x: &Tensor, ids: impl Into<Indices>, num_segments: usize) -> Tensor {
    or_panic(try_segment_sum(x, ids, num_segments))
}

/// Fallible [`segment_sum`].
///
/// ```
/// use wgrad::prelude::*;
/// assert!(wgrad::try_segment_sum(&Tensor::zeros([2]), [0, 3], 3).is_err());
/// ```
pub fn try_segment_sum(x: &Tensor, ids: impl Into<Indices>, num_segments: usize) -> Result<Tensor> {
    let mut shape = x.shape().to_vec();
    if shape.is_empty() {
        return shape_err("segment_sum", "x must have at least one axis (the rows)");
    }
    shape[0] = num_segments;
    Ok(scattered("segment_sum", &shape, ids.into(), x, 0)?.0)
}

/// `jax.ops.segment_max(x, ids, num_segments)`: the elementwise maximum of the rows of each
/// segment, `-inf` for an empty one (as JAX). Computed densely over (rows × segments), so meant
/// for moderate segment counts; the gradient goes to the maximal rows (split at ties).
///
/// ```
/// use wgrad::prelude::*;
/// let x = Tensor::from_vec(vec![1.0f32, 5.0, 3.0], [3]);
/// let m = wgrad::segment_max(&x, [0, 0, 1], 3).to_vec::<f32>();
/// assert_eq!(m, vec![5.0, 3.0, f32::NEG_INFINITY]);
/// ```
#[track_caller]
pub fn segment_max(x: &Tensor, ids: impl Into<Indices>, num_segments: usize) -> Tensor {
    or_panic(try_segment_max(x, ids, num_segments))
}

/// Fallible [`segment_max`].
///
/// ```
/// use wgrad::prelude::*;
/// assert!(wgrad::try_segment_max(&Tensor::zeros([2]), [0], 3).is_err());
/// ```
pub fn try_segment_max(x: &Tensor, ids: impl Into<Indices>, num_segments: usize) -> Result<Tensor> {
    if x.rank() == 0 {
        return shape_err("segment_max", "x must have at least one axis (the rows)");
    }
    let n = x.shape()[0];
    let ids = ids
        .into()
        .resolve("segment_max", num_segments, &[num_segments])?;
    if ids.shape() != [n] {
        return shape_err(
            "segment_max",
            format!("{n} rows need {n} ids, got ids of shape {:?}", ids.shape()),
        );
    }
    // mask[s, i] = (ids[i] == s), broadcast over the row's other axes.
    let seg = Tensor::arange(num_segments).try_cast(ids.dtype())?;
    let mask = seg
        .try_reshape([num_segments, 1])?
        .try_compare("==", &ids.try_reshape([1, n])?)?;
    let mut mshape = vec![num_segments, n];
    mshape.extend(std::iter::repeat_n(1, x.rank() - 1));
    let mut full = vec![num_segments];
    full.extend_from_slice(x.shape());
    let mask = mask.try_reshape(mshape)?.try_broadcast_to(&full)?;
    let xs = x.try_expand_dims(0)?.try_broadcast_to(&full)?;
    let neg = Tensor::full(&full, f32::NEG_INFINITY).try_cast(x.dtype())?;
    crate::prim::logic::try_where(&mask, &xs, &neg)?.try_max_axes(1)
}
