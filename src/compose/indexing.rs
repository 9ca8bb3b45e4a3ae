//! Indexing built on the `gather`/`scatter_add` primitives: `take`, `take_along_axis`,
//! `one_hot`, `argmax`, `argmin`.

use crate::base::dtype::{DType, norm_axis};
use crate::base::error::{Result, dtype_err, or_panic, shape_err};
use crate::ir::tensor::Tensor;
use crate::prim::index::{Index, index_p};

/// Integer indices: a tensor of `i32` or `u32` on the device (labels and edge lists are data),
/// or a list known on the host.
///
/// Host indices are checked against the axis they index: an out-of-range index is an error
/// naming the op, the index and the shape; negative ones count from the end, as in NumPy.
/// Device indices cannot be checked without a round trip: a negative index is wrapped once
/// (as NumPy), and anything still out of range is clamped to the nearest valid index (as
/// JAX's gather does); `one_hot` gives an all-zero row for them (as `jax.nn.one_hot`).
///
/// ```
/// use wgrad::prelude::*;
/// let x = Tensor::from_vec(vec![10.0f32, 20.0, 30.0], [3]);
/// assert_eq!(x.take([2, 0], 0).to_vec::<f32>(), vec![30.0, 10.0]);
/// assert_eq!(x.take(&Tensor::from_slice(&[1i32, 1], [2]), 0).to_vec::<f32>(), vec![20.0, 20.0]);
/// assert!(x.try_take([3], 0).is_err());
/// ```
#[derive(Clone, Debug)]
pub enum Indices {
    /// An integer tensor (any shape).
    Tensor(Tensor),
    /// A 1-D list from the host.
    Host(Vec<i64>),
}

impl From<&Tensor> for Indices {
    fn from(t: &Tensor) -> Self {
        Indices::Tensor(t.clone())
    }
}
impl From<Tensor> for Indices {
    fn from(t: Tensor) -> Self {
        Indices::Tensor(t)
    }
}
macro_rules! host_indices {
    ($($t:ty),*) => {$(
        impl From<&[$t]> for Indices {
            fn from(v: &[$t]) -> Self {
                Indices::Host(v.iter().map(|&i| i as i64).collect())
            }
        }
        impl From<Vec<$t>> for Indices {
            fn from(v: Vec<$t>) -> Self {
                Indices::Host(v.into_iter().map(|i| i as i64).collect())
            }
        }
        impl<const N: usize> From<[$t; N]> for Indices {
            fn from(v: [$t; N]) -> Self {
                Indices::Host(v.iter().map(|&i| i as i64).collect())
            }
        }
    )*};
}
host_indices!(i32, i64, usize, u32);

impl Indices {
    /// The indices as an integer tensor, host ones checked against `n` (the indexed axis'
    /// length, in `shape`).
    pub(crate) fn resolve(self, op: &'static str, n: usize, shape: &[usize]) -> Result<Tensor> {
        match self {
            Indices::Tensor(t) => {
                if !matches!(t.dtype(), DType::I32 | DType::U32) {
                    return dtype_err(
                        op,
                        format!(
                            "indices must be i32 or u32, got {} of shape {:?}",
                            t.dtype(),
                            t.shape()
                        ),
                    );
                }
                Ok(t)
            }
            Indices::Host(v) => {
                let n = n as i64;
                let mut out = Vec::with_capacity(v.len());
                for &i in &v {
                    if i < -n || i >= n || n > i32::MAX as i64 {
                        return shape_err(
                            op,
                            format!(
                                "index {i} is out of range for an axis of size {n} (shape {shape:?})"
                            ),
                        );
                    }
                    out.push(if i < 0 { i + n } else { i } as i32);
                }
                Tensor::try_from_slice(&out, [out.len()])
            }
        }
    }
}

impl Tensor {
    /// `jnp.take(x, indices, axis)`: the elements at `indices` along `axis`; the result has
    /// shape `x.shape[..axis] + indices.shape + x.shape[axis+1..]`. Indices repeat freely (the
    /// gradient adds up). See [`Indices`] for out-of-range indices.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let table = Tensor::arange(6).reshape([3, 2]); // an embedding table, 3 rows
    /// let rows = table.take(&Tensor::from_slice(&[2i32, 0, 2], [3]), 0);
    /// assert_eq!(rows.to_vec::<f32>(), vec![4.0, 5.0, 0.0, 1.0, 4.0, 5.0]);
    /// let g = grad(|t: &Tensor| t.take([2, 0, 2], 0).sum_all())(&table);
    /// assert_eq!(g.to_vec::<f32>(), vec![1.0, 1.0, 0.0, 0.0, 2.0, 2.0]);
    /// ```
    #[track_caller]
    pub fn take(&self, indices: impl Into<Indices>, axis: isize) -> Tensor {
        or_panic(self.try_take(indices, axis))
    }
    /// Fallible [`Tensor::take`].
    ///
    /// ```
    /// let e = wgrad::Tensor::zeros([2, 3]).try_take([5], 1).unwrap_err();
    /// assert!(e.to_string().contains("take") && e.to_string().contains("[2, 3]"));
    /// ```
    pub fn try_take(&self, indices: impl Into<Indices>, axis: isize) -> Result<Tensor> {
        let a = norm_axis("take", axis, self.rank())?;
        let shape = self.shape();
        let n = shape[a];
        let idx = indices.into().resolve("take", n, shape)?;
        if idx.rank() == 0 {
            return self
                .try_take(idx.try_reshape([1])?, axis)?
                .try_squeeze(a as isize);
        }
        let (before, after, ishape) = (&shape[..a], &shape[a + 1..], idx.shape());
        // x: [A.., n, 1.., C..] broadcast over the index axes after the first; the indices:
        // [1.., I.., 1..] broadcast over x's other axes. Both broadcasts fuse into the gather.
        let mut xs = before.to_vec();
        xs.push(n);
        xs.extend(std::iter::repeat_n(1, ishape.len() - 1));
        xs.extend_from_slice(after);
        let mut xb = before.to_vec();
        xb.push(n);
        xb.extend_from_slice(&ishape[1..]);
        xb.extend_from_slice(after);
        let mut is: Vec<usize> = vec![1; before.len()];
        is.extend_from_slice(ishape);
        is.extend(std::iter::repeat_n(1, after.len()));
        let mut out = before.to_vec();
        out.extend_from_slice(ishape);
        out.extend_from_slice(after);
        let x2 = self.try_reshape(xs)?.try_broadcast_to(xb)?;
        let i2 = idx.try_reshape(is)?.try_broadcast_to(out)?;
        index_p(Index::Gather { axis: a }, &x2, &i2)
    }
    /// `jnp.take_along_axis(x, indices, axis)`: `indices` has `x`'s rank; along `axis` it
    /// says which element to take, the other axes broadcast against `x`'s. The classic use:
    /// the log-probability of each example's label.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let logp = Tensor::from_vec(vec![-0.1f32, -2.0, -3.0, -0.5], [2, 2]);
    /// let labels = Tensor::from_slice(&[0i32, 1], [2, 1]);
    /// let picked = logp.take_along_axis(&labels, 1);
    /// assert_eq!(picked.to_vec::<f32>(), vec![-0.1, -0.5]);
    /// ```
    #[track_caller]
    pub fn take_along_axis(&self, indices: impl Into<Indices>, axis: isize) -> Tensor {
        or_panic(self.try_take_along_axis(indices, axis))
    }
    /// Fallible [`Tensor::take_along_axis`].
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let i = Tensor::from_slice(&[0i32, 1], [2]);
    /// assert!(Tensor::zeros([2, 2]).try_take_along_axis(&i, 1).is_err()); // rank 1 vs 2
    /// ```
    pub fn try_take_along_axis(&self, indices: impl Into<Indices>, axis: isize) -> Result<Tensor> {
        let a = norm_axis("take_along_axis", axis, self.rank())?;
        let n = self.shape()[a];
        let idx = indices.into().resolve("take_along_axis", n, self.shape())?;
        if idx.rank() != self.rank() {
            return shape_err(
                "take_along_axis",
                format!(
                    "indices {:?} must have the rank of the operand {:?}",
                    idx.shape(),
                    self.shape()
                ),
            );
        }
        let mut xs = self.shape().to_vec();
        let mut is = idx.shape().to_vec();
        xs[a] = 1;
        is[a] = 1;
        let common = crate::base::dtype::broadcast_shapes("take_along_axis", &xs, &is)?;
        let (mut xb, mut ib) = (common.clone(), common);
        xb[a] = n;
        ib[a] = idx.shape()[a];
        let x2 = self.try_broadcast_to(xb)?;
        let i2 = idx.try_broadcast_to(ib)?;
        index_p(Index::Gather { axis: a }, &x2, &i2)
    }
    /// The index (`i32`) of the largest element along `axis`, which is removed; the first
    /// one at ties.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::from_vec(vec![1.0f32, 5.0, 3.0, 9.0, 2.0, 9.0], [2, 3]);
    /// assert_eq!(x.argmax(-1).to_vec::<i32>(), vec![1, 0]);
    /// ```
    #[track_caller]
    pub fn argmax(&self, axis: isize) -> Tensor {
        or_panic(self.try_argmax(axis))
    }
    /// Fallible [`Tensor::argmax`].
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([2, 0]).try_argmax(1).is_err());
    /// ```
    pub fn try_argmax(&self, axis: isize) -> Result<Tensor> {
        arg_extreme("argmax", self, axis, true)
    }
    /// The index (`i32`) of the smallest element along `axis`, which is removed; the first
    /// one at ties.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::from_vec(vec![1.0f32, 5.0, 3.0, 0.0], [2, 2]);
    /// assert_eq!(x.argmin(0).to_vec::<i32>(), vec![0, 1]);
    /// ```
    #[track_caller]
    pub fn argmin(&self, axis: isize) -> Tensor {
        or_panic(self.try_argmin(axis))
    }
    /// Fallible [`Tensor::argmin`].
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([2]).try_argmin(2).is_err());
    /// ```
    pub fn try_argmin(&self, axis: isize) -> Result<Tensor> {
        arg_extreme("argmin", self, axis, false)
    }
}

/// The first index of the max (or min) along `axis`: the largest of `-index` over the
/// positions that attain it.
fn arg_extreme(op: &'static str, x: &Tensor, axis: isize, largest: bool) -> Result<Tensor> {
    let a = norm_axis(op, axis, x.rank())?;
    let n = x.shape()[a];
    if n == 0 {
        return shape_err(op, format!("axis {axis} of shape {:?} is empty", x.shape()));
    }
    if x.dtype() == DType::Bool {
        return dtype_err(
            op,
            format!("cast the bool tensor of shape {:?} first", x.shape()),
        );
    }
    let x = x.stop_gradient();
    let m = if largest {
        x.try_max_keepdim(a as isize)?
    } else {
        x.try_min_keepdim(a as isize)?
    };
    let hit = x.equal(&m);
    let minus_index = -Tensor::iota(x.shape(), a, DType::I32)?;
    let none = Tensor::try_full([], -(n as f64), DType::I32)?;
    let first =
        crate::prim::logic::try_where(&hit, &minus_index, &none)?.try_max_axes(a as isize)?;
    Ok(-first)
}

/// `jax.nn.one_hot`: a float tensor of shape `indices.shape + [num]`, 1 at each index, 0
/// elsewhere.
///
/// ```
/// use wgrad::prelude::*;
/// let y = one_hot([2, 0], 3);
/// assert_eq!(y.to_vec::<f32>(), vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
/// ```
#[track_caller]
pub fn one_hot(indices: impl Into<Indices>, num: usize) -> Tensor {
    or_panic(try_one_hot(indices, num))
}

/// Fallible [`one_hot`]: host indices must lie in `0..num` (negative ones count from the end).
///
/// ```
/// use wgrad::prelude::*;
/// assert!(try_one_hot([3], 3).is_err());
/// ```
pub fn try_one_hot(indices: impl Into<Indices>, num: usize) -> Result<Tensor> {
    let idx = indices.into().resolve("one_hot", num, &[num])?;
    let classes = Tensor::iota([num], 0, idx.dtype())?;
    Ok(idx.try_expand_dims(-1)?.equal(&classes).cast(DType::F32))
}
