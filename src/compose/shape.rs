//! Shape operations on the tensor API: reshape, broadcast, transpose, `mt`, `moveaxis`,
//! `expand_dims`, `squeeze`, flip, slices, indexing, pad, `concat` and `stack`, with their
//! checks and axis conventions, each made of the movement primitives (`prim::movement`).

use crate::base::dtype::norm_axis;
use crate::base::error::{Result, or_panic, shape_err};
use crate::ir::tensor::Tensor;
use crate::prim::movement::{
    concat_p, expand_p, flip_p, pad_lo_hi, reshape_p, slice_p, transpose_p,
};

impl Tensor {
    /// The same elements in a new shape (row-major order; the element count must match).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert_eq!(Tensor::arange(6).reshape([2, 3]).shape(), &[2, 3]);
    /// ```
    #[track_caller]
    pub fn reshape(&self, shape: impl AsRef<[usize]>) -> Tensor {
        or_panic(self.try_reshape(shape))
    }
    /// Fallible [`Tensor::reshape`].
    ///
    /// ```
    /// assert!(wgrad::Tensor::arange(6).try_reshape([4]).is_err());
    /// ```
    pub fn try_reshape(&self, shape: impl AsRef<[usize]>) -> Result<Tensor> {
        reshape_p(self, shape.as_ref())
    }
    /// NumPy `broadcast_to`: prepends axes and repeats axes of size 1.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let b = Tensor::from_vec(vec![1.0f32, 2.0], [2]).broadcast_to([3, 2]);
    /// assert_eq!(b.to_vec::<f32>(), vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
    /// ```
    #[track_caller]
    pub fn broadcast_to(&self, shape: impl AsRef<[usize]>) -> Tensor {
        or_panic(self.try_broadcast_to(shape))
    }
    /// Fallible [`Tensor::broadcast_to`].
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([3]).try_broadcast_to([2]).is_err());
    /// ```
    pub fn try_broadcast_to(&self, shape: impl AsRef<[usize]>) -> Result<Tensor> {
        let shape = shape.as_ref();
        if shape.len() < self.rank() {
            return shape_err(
                "broadcast_to",
                format!("cannot broadcast {:?} to {shape:?}", self.shape()),
            );
        }
        let mut padded = vec![1; shape.len() - self.rank()];
        padded.extend_from_slice(self.shape());
        let ok = padded.iter().zip(shape).all(|(&a, &b)| a == b || a == 1);
        if !ok {
            return shape_err(
                "broadcast_to",
                format!("cannot broadcast {:?} to {shape:?}", self.shape()),
            );
        }
        expand_p(&reshape_p(self, &padded)?, shape)
    }
    /// Permutes the axes: axis `k` of the result is axis `perm[k]` of `self`.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert_eq!(Tensor::zeros([2, 3, 4]).transpose([2, 0, 1]).shape(), &[4, 2, 3]);
    /// ```
    #[track_caller]
    pub fn transpose(&self, perm: impl AsRef<[usize]>) -> Tensor {
        or_panic(self.try_transpose(perm))
    }
    /// Fallible [`Tensor::transpose`].
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([2, 3]).try_transpose([0, 0]).is_err());
    /// ```
    pub fn try_transpose(&self, perm: impl AsRef<[usize]>) -> Result<Tensor> {
        transpose_p(self, perm.as_ref())
    }
    /// Swaps the last two axes (matrix transpose, batched).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert_eq!(Tensor::zeros([5, 2, 3]).mt().shape(), &[5, 3, 2]);
    /// ```
    #[track_caller]
    pub fn mt(&self) -> Tensor {
        or_panic(self.try_mt())
    }
    /// Fallible [`Tensor::mt`]: needs rank >= 2.
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([3]).try_mt().is_err());
    /// ```
    pub fn try_mt(&self) -> Result<Tensor> {
        let r = self.rank();
        if r < 2 {
            return shape_err(
                "mt",
                format!("needs rank >= 2, got shape {:?}", self.shape()),
            );
        }
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(r - 2, r - 1);
        transpose_p(self, &perm)
    }
    /// Moves axis `from` to position `to` (negative axes count from the end).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert_eq!(Tensor::zeros([2, 3, 4]).moveaxis(0, -1).shape(), &[3, 4, 2]);
    /// ```
    #[track_caller]
    pub fn moveaxis(&self, from: isize, to: isize) -> Tensor {
        or_panic(self.try_moveaxis(from, to))
    }
    /// Fallible [`Tensor::moveaxis`].
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([2]).try_moveaxis(0, 3).is_err());
    /// ```
    pub fn try_moveaxis(&self, from: isize, to: isize) -> Result<Tensor> {
        let f = norm_axis("moveaxis", from, self.rank())?;
        let t = norm_axis("moveaxis", to, self.rank())?;
        let mut perm: Vec<usize> = (0..self.rank()).filter(|&k| k != f).collect();
        perm.insert(t, f);
        transpose_p(self, &perm)
    }
    /// Inserts an axis of size 1 at position `axis` of the result (`-1`: a new last axis).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert_eq!(Tensor::zeros([3]).expand_dims(0).shape(), &[1, 3]);
    /// assert_eq!(Tensor::zeros([3]).expand_dims(-1).shape(), &[3, 1]);
    /// ```
    #[track_caller]
    pub fn expand_dims(&self, axis: isize) -> Tensor {
        or_panic(self.try_expand_dims(axis))
    }
    /// Fallible [`Tensor::expand_dims`].
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([3]).try_expand_dims(3).is_err());
    /// ```
    pub fn try_expand_dims(&self, axis: isize) -> Result<Tensor> {
        let a = norm_axis("expand_dims", axis, self.rank() + 1)?;
        let mut shape = self.shape().to_vec();
        shape.insert(a, 1);
        reshape_p(self, &shape)
    }
    /// Removes axes of size 1: one axis, a list (`[0, -1]`), or all of them (`None`).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert_eq!(Tensor::zeros([3, 1]).squeeze(-1).shape(), &[3]);
    /// assert_eq!(Tensor::zeros([1, 3, 1]).squeeze([0, -1]).shape(), &[3]);
    /// assert_eq!(Tensor::zeros([1, 3, 1]).squeeze(None).shape(), &[3]);
    /// ```
    #[track_caller]
    pub fn squeeze(&self, axes: impl Into<crate::Axes>) -> Tensor {
        or_panic(self.try_squeeze(axes))
    }
    /// Fallible [`Tensor::squeeze`]: each listed axis must have size 1.
    ///
    /// ```
    /// let e = wgrad::Tensor::zeros([3, 2]).try_squeeze(1).unwrap_err();
    /// assert!(e.to_string().contains("squeeze") && e.to_string().contains("[3, 2]"));
    /// ```
    pub fn try_squeeze(&self, axes: impl Into<crate::Axes>) -> Result<Tensor> {
        let axes = match axes.into() {
            crate::Axes::All => (0..self.rank()).filter(|&a| self.shape()[a] == 1).collect(),
            list => list.resolve("squeeze", self.shape())?,
        };
        if let Some(&a) = axes.iter().find(|&&a| self.shape()[a] != 1) {
            return shape_err(
                "squeeze",
                format!(
                    "axis {a} of shape {:?} has size {}, not 1",
                    self.shape(),
                    self.shape()[a]
                ),
            );
        }
        let shape: Vec<usize> = (0..self.rank())
            .filter(|a| !axes.contains(a))
            .map(|a| self.shape()[a])
            .collect();
        reshape_p(self, &shape)
    }
    /// Reverses the order of elements along `axes` (as `jnp.flip`; `None`: every axis).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::arange(6).reshape([2, 3]);
    /// assert_eq!(x.flip(-1).to_vec::<f32>(), vec![2.0, 1.0, 0.0, 5.0, 4.0, 3.0]);
    /// assert_eq!(x.flip(None).to_vec::<f32>(), vec![5.0, 4.0, 3.0, 2.0, 1.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn flip(&self, axes: impl Into<crate::Axes>) -> Tensor {
        or_panic(self.try_flip(axes))
    }
    /// Fallible [`Tensor::flip`].
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([2]).try_flip(1).is_err());
    /// ```
    pub fn try_flip(&self, axes: impl Into<crate::Axes>) -> Result<Tensor> {
        let axes = axes.into().resolve("flip", self.shape())?;
        flip_p(self, &axes)
    }
    /// The elements `start..stop` along one axis (negative axes count from the end); the
    /// other axes are kept whole.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::arange(6).reshape([2, 3]);
    /// assert_eq!(x.slice_axis(-1, 1..3).to_vec::<f32>(), vec![1.0, 2.0, 4.0, 5.0]);
    /// ```
    #[track_caller]
    pub fn slice_axis(&self, axis: isize, range: std::ops::Range<usize>) -> Tensor {
        or_panic(self.try_slice_axis(axis, range))
    }
    /// Fallible [`Tensor::slice_axis`]: the range must lie within the axis.
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([2, 3]).try_slice_axis(1, 2..4).is_err());
    /// ```
    pub fn try_slice_axis(&self, axis: isize, range: std::ops::Range<usize>) -> Result<Tensor> {
        let a = norm_axis("slice_axis", axis, self.rank())?;
        if range.start > range.end || range.end > self.shape()[a] {
            return shape_err(
                "slice_axis",
                format!(
                    "range {range:?} does not fit axis {axis} of shape {:?}",
                    self.shape()
                ),
            );
        }
        let mut start = vec![0; self.rank()];
        let mut stop = self.shape().to_vec();
        start[a] = range.start;
        stop[a] = range.end;
        self.try_slice(start, stop)
    }
    /// `x[i]`: element `i` along the first axis, which is removed (negative `i` counts from
    /// the end, as in Python).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::arange(6).reshape([3, 2]);
    /// assert_eq!(x.index(1).to_vec::<f32>(), vec![2.0, 3.0]);
    /// assert_eq!(x.index(-1).to_vec::<f32>(), vec![4.0, 5.0]);
    /// ```
    #[track_caller]
    pub fn index(&self, i: isize) -> Tensor {
        or_panic(self.try_index(i))
    }
    /// Fallible [`Tensor::index`]: an error names the index and the shape.
    ///
    /// ```
    /// let e = wgrad::Tensor::zeros([3, 2]).try_index(3).unwrap_err();
    /// assert!(e.to_string().contains("index 3") && e.to_string().contains("[3, 2]"));
    /// ```
    pub fn try_index(&self, i: isize) -> Result<Tensor> {
        let n = self.shape().first().copied().unwrap_or(0) as isize;
        if self.rank() == 0 || i < -n || i >= n {
            return shape_err(
                "index",
                format!("index {i} is out of range for shape {:?}", self.shape()),
            );
        }
        let i = if i < 0 { i + n } else { i } as usize;
        self.try_slice_axis(0, i..i + 1)?.try_squeeze(0)
    }
    /// The block `start[k]..stop[k]` on every axis (step 1).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let s = Tensor::arange(5).slice([1], [3]);
    /// assert_eq!(s.to_vec::<f32>(), vec![1.0, 2.0]);
    /// ```
    #[track_caller]
    pub fn slice(&self, start: impl AsRef<[usize]>, stop: impl AsRef<[usize]>) -> Tensor {
        or_panic(self.try_slice(start, stop))
    }
    /// Fallible [`Tensor::slice`]: bounds must satisfy `start <= stop <= size` on every axis.
    ///
    /// ```
    /// assert!(wgrad::Tensor::arange(5).try_slice([2], [9]).is_err());
    /// ```
    pub fn try_slice(
        &self,
        start: impl AsRef<[usize]>,
        stop: impl AsRef<[usize]>,
    ) -> Result<Tensor> {
        let (start, stop) = (start.as_ref(), stop.as_ref());
        let ok = start.len() == self.rank()
            && stop.len() == self.rank()
            && (0..self.rank()).all(|k| start[k] <= stop[k] && stop[k] <= self.shape()[k]);
        if !ok {
            return shape_err(
                "slice",
                format!(
                    "start {start:?} and stop {stop:?} do not fit shape {:?}",
                    self.shape()
                ),
            );
        }
        let shape: Vec<usize> = (0..self.rank()).map(|k| stop[k] - start[k]).collect();
        slice_p(self, start, &shape)
    }
    /// Pads with zeros: `lo[k]` before and `hi[k]` after axis `k`.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let p = Tensor::ones([1]).pad([1], [2]);
    /// assert_eq!(p.to_vec::<f32>(), vec![0.0, 1.0, 0.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn pad(&self, lo: impl AsRef<[usize]>, hi: impl AsRef<[usize]>) -> Tensor {
        or_panic(self.try_pad(lo, hi))
    }
    /// Fallible [`Tensor::pad`]: one width per axis on each side.
    ///
    /// ```
    /// assert!(wgrad::Tensor::ones([2, 2]).try_pad([1], [1]).is_err());
    /// ```
    pub fn try_pad(&self, lo: impl AsRef<[usize]>, hi: impl AsRef<[usize]>) -> Result<Tensor> {
        pad_lo_hi(self, lo.as_ref(), hi.as_ref())
    }
}

/// Joins tensors along an existing axis (negative counts from the end).
///
/// ```
/// use wgrad::prelude::*;
/// let c = concat(&[Tensor::zeros([2, 1]), Tensor::ones([2, 2])], -1);
/// assert_eq!(c.to_vec::<f32>(), vec![0.0, 1.0, 1.0, 0.0, 1.0, 1.0]);
/// ```
#[track_caller]
pub fn concat(xs: &[Tensor], axis: isize) -> Tensor {
    or_panic(try_concat(xs, axis))
}

/// Joins tensors of one shape along a new axis at position `axis` of the result (as
/// `jnp.stack`; `-1`: a new last axis).
///
/// ```
/// use wgrad::prelude::*;
/// let s = stack(&[Tensor::zeros([2]), Tensor::ones([2])], -1);
/// assert_eq!(s.shape(), &[2, 2]);
/// assert_eq!(s.to_vec::<f32>(), vec![0.0, 1.0, 0.0, 1.0]);
/// ```
#[track_caller]
pub fn stack(xs: &[Tensor], axis: isize) -> Tensor {
    or_panic(try_stack(xs, axis))
}

/// Fallible [`stack`]: every tensor must have the same shape.
///
/// ```
/// use wgrad::prelude::*;
/// let e = try_stack(&[Tensor::zeros([2]), Tensor::zeros([3])], 0).unwrap_err();
/// assert!(e.to_string().contains("stack") && e.to_string().contains("[3]"));
/// ```
pub fn try_stack(xs: &[Tensor], axis: isize) -> Result<Tensor> {
    let Some(first) = xs.first() else {
        return shape_err("stack", "needs at least one tensor");
    };
    if let Some(x) = xs.iter().find(|x| x.shape() != first.shape()) {
        return shape_err(
            "stack",
            format!(
                "tensors must have one shape, got {:?} and {:?}",
                first.shape(),
                x.shape()
            ),
        );
    }
    let a = norm_axis("stack", axis, first.rank() + 1)?;
    let parts = xs
        .iter()
        .map(|x| x.try_expand_dims(a as isize))
        .collect::<Result<Vec<_>>>()?;
    try_concat(&parts, a as isize)
}

/// Fallible [`concat()`]: shapes must agree on every axis but `axis`.
///
/// ```
/// use wgrad::prelude::*;
/// let e = try_concat(&[Tensor::zeros([2, 1]), Tensor::zeros([3, 1])], 1).unwrap_err();
/// assert!(e.to_string().contains("concat"));
/// ```
pub fn try_concat(xs: &[Tensor], axis: isize) -> Result<Tensor> {
    let Some(first) = xs.first() else {
        return shape_err("concat", "needs at least one tensor");
    };
    let a = norm_axis("concat", axis, first.rank())?;
    for x in xs {
        let same = x.rank() == first.rank()
            && (0..x.rank()).all(|k| k == a || x.shape()[k] == first.shape()[k]);
        if !same {
            let shapes: Vec<&[usize]> = xs.iter().map(|x| x.shape()).collect();
            return shape_err(
                "concat",
                format!("shapes {shapes:?} differ off axis {axis}"),
            );
        }
    }
    let dtype = first.dtype();
    if xs.iter().any(|x| x.dtype() != dtype) {
        return crate::base::error::dtype_err("concat", "all tensors must have the same dtype");
    }
    // Few operands per kernel: concat of many is a tree of small concats.
    if xs.len() > 4 {
        let parts: Vec<Tensor> = xs
            .chunks(4)
            .map(|c| concat_p(c, a))
            .collect::<Result<_>>()?;
        return try_concat(&parts, a as isize);
    }
    concat_p(xs, a)
}
