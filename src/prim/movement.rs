//! Movement primitives: reshape, expand (broadcast of size-1 axes), transpose, slice, pad,
//! concat and flip. None has an arithmetic kernel of its own: each is an index map that the code
//! generator fuses into whichever kernel reads it (see `shaders/elementwise.wgsl`); a target
//! that is only a movement of a buffer is computed by that same gather kernel. All are linear,
//! so each JVP is the op itself applied to the tangent and each VJP its transpose.

use crate::base::dtype::{DType, norm_axis, numel};
use crate::base::error::{Result, axis_err, or_panic, shape_err};
use crate::ir::op::{Fusion, Op};
use crate::ir::tensor::Tensor;
use crate::kernel::wgsl::{compose, decompose, literal};
use crate::prim::Primitive;
use crate::prim::lower::{LowerCx, Lowered};
use crate::prim::with_batch;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Movement {
    Reshape,
    /// Same rank; axes of size 1 repeated to the node's shape.
    Expand,
    Transpose(Vec<usize>),
    /// Start per axis; the stop is start + the node's shape.
    Slice(Vec<usize>),
    /// Zeros before each axis; the node's shape says how many after.
    Pad(Vec<usize>),
    Concat(usize),
    /// Reverses these axes.
    Flip(Vec<usize>),
}

impl Movement {
    pub(crate) fn describe(&self) -> String {
        match self {
            Movement::Transpose(p) => format!("transpose[perm={p:?}]"),
            Movement::Slice(s) => format!("slice[start={s:?}]"),
            Movement::Pad(l) => format!("pad[lo={l:?}]"),
            Movement::Concat(a) => format!("concat[axis={a}]"),
            Movement::Flip(a) => format!("flip[axes={a:?}]"),
            other => other.name().into(),
        }
    }
    fn apply(&self, x: &[Tensor], shape: &[usize]) -> Tensor {
        or_panic(match self {
            Movement::Reshape => reshape_p(&x[0], shape),
            Movement::Expand => expand_p(&x[0], shape),
            Movement::Transpose(p) => transpose_p(&x[0], p),
            Movement::Slice(s) => slice_p(&x[0], s, shape),
            Movement::Pad(lo) => pad_p(&x[0], lo, shape),
            Movement::Concat(a) => concat_p(x, *a),
            Movement::Flip(axes) => flip_p(&x[0], axes),
        })
    }
}

fn shifted(v: &[usize], first: usize) -> Vec<usize> {
    std::iter::once(first).chain(v.iter().copied()).collect()
}

impl Primitive for Movement {
    fn name(&self) -> &'static str {
        match self {
            Movement::Reshape => "reshape",
            Movement::Expand => "broadcast_to",
            Movement::Transpose(_) => "transpose",
            Movement::Slice(_) => "slice",
            Movement::Pad(_) => "pad",
            Movement::Concat(_) => "concat",
            Movement::Flip(_) => "flip",
        }
    }
    fn jvp(&self, x: &[Tensor], y: &Tensor, t: &[Option<Tensor>]) -> Option<Tensor> {
        if t.iter().all(|t| t.is_none()) {
            return None;
        }
        let ts: Vec<Tensor> = t
            .iter()
            .zip(x)
            .map(|(t, x)| t.clone().unwrap_or_else(|| x.zeros_like()))
            .collect();
        Some(self.apply(&ts, y.shape()))
    }
    fn vjp(&self, x: &[Tensor], y: &Tensor, ct: &Tensor, needs: &[bool]) -> Vec<Option<Tensor>> {
        let in_shape = x[0].shape();
        match self {
            Movement::Reshape => vec![Some(ct.reshape(in_shape))],
            Movement::Expand => {
                let axes: Vec<isize> = (0..in_shape.len())
                    .filter(|&k| in_shape[k] != y.shape()[k])
                    .map(|k| k as isize)
                    .collect();
                vec![Some(ct.sum(axes, true))]
            }
            Movement::Transpose(p) => {
                let mut inv = vec![0; p.len()];
                for (k, &pk) in p.iter().enumerate() {
                    inv[pk] = k;
                }
                vec![Some(or_panic(transpose_p(ct, &inv)))]
            }
            Movement::Slice(start) => {
                let hi: Vec<usize> = (0..in_shape.len())
                    .map(|k| in_shape[k] - start[k] - y.shape()[k])
                    .collect();
                vec![Some(or_panic(pad_lo_hi(ct, start, &hi)))]
            }
            Movement::Pad(lo) => vec![Some(or_panic(slice_p(ct, lo, in_shape)))],
            Movement::Flip(axes) => vec![Some(or_panic(flip_p(ct, axes)))],
            Movement::Concat(axis) => {
                let mut off = 0;
                x.iter()
                    .zip(needs)
                    .map(|(xi, &need)| {
                        let mut start = vec![0; xi.rank()];
                        start[*axis] = off;
                        off += xi.shape()[*axis];
                        need.then(|| or_panic(slice_p(ct, &start, xi.shape())))
                    })
                    .collect()
            }
        }
    }
    fn batch(&self, x: &[Tensor], y: &Tensor, batched: &[bool], size: usize) -> Result<Tensor> {
        let shape = shifted(y.shape(), size);
        match self {
            Movement::Reshape => reshape_p(&x[0], &shape),
            Movement::Expand => expand_p(&x[0], &shape),
            Movement::Transpose(p) => {
                let perm: Vec<usize> = std::iter::once(0).chain(p.iter().map(|k| k + 1)).collect();
                transpose_p(&x[0], &perm)
            }
            Movement::Slice(s) => slice_p(&x[0], &shifted(s, 0), &shape),
            Movement::Pad(lo) => pad_p(&x[0], &shifted(lo, 0), &shape),
            Movement::Flip(axes) => flip_p(&x[0], &axes.iter().map(|a| a + 1).collect::<Vec<_>>()),
            Movement::Concat(a) => {
                let xs = x
                    .iter()
                    .zip(batched)
                    .map(|(t, &b)| with_batch(t, b, size))
                    .collect::<Result<Vec<Tensor>>>()?;
                concat_p(&xs, a + 1)
            }
        }
    }
    fn fusion(&self) -> Fusion {
        match self {
            Movement::Reshape => Fusion::View,
            // A concat reads several operands: computed once, not in every consumer.
            Movement::Concat(_) => Fusion::Inline,
            _ => Fusion::IndexMap,
        }
    }
    fn lower(&self, node: &Tensor, cx: &mut LowerCx) -> Result<Lowered> {
        let a: Vec<String> = (0..node.inputs().len())
            .map(|k| cx.arg(k).to_string())
            .collect();
        Ok(Lowered::Body(self.body(node, &a)))
    }
}

impl Movement {
    /// The node function's body: the output index mapped to the operands' indices.
    fn body(&self, node: &Tensor, a: &[String]) -> String {
        let out = node.shape();
        let inputs = node.inputs();
        let in_shape = inputs[0].shape();
        let d = |k: usize| format!("d{k}");
        let idx: Vec<String> = (0..out.len()).map(d).collect();
        let split = decompose(out, "i", "d");
        match self {
            Movement::Reshape => format!("    return {}(i);", a[0]),
            Movement::Expand => format!("{split}    return {}({});", a[0], compose(&idx, in_shape)),
            Movement::Transpose(p) => {
                let mut src = vec![String::new(); p.len()];
                for (k, &pk) in p.iter().enumerate() {
                    src[pk] = d(k);
                }
                format!("{split}    return {}({});", a[0], compose(&src, in_shape))
            }
            Movement::Slice(start) => {
                let src: Vec<String> = (0..out.len())
                    .map(|k| format!("d{k} + {}u", start[k]))
                    .collect();
                format!("{split}    return {}({});", a[0], compose(&src, in_shape))
            }
            Movement::Pad(lo) => {
                let mut s = split;
                for k in 0..out.len() {
                    if out[k] != in_shape[k] {
                        s += &format!(
                            "    if (d{k} < {}u || d{k} >= {}u) {{ return {}; }}\n",
                            lo[k],
                            lo[k] + in_shape[k],
                            literal(0.0, node.dtype())
                        );
                    }
                }
                let src: Vec<String> = (0..out.len())
                    .map(|k| format!("d{k} - {}u", lo[k]))
                    .collect();
                s + &format!("    return {}({});", a[0], compose(&src, in_shape))
            }
            Movement::Flip(axes) => {
                let src: Vec<String> = (0..out.len())
                    .map(|k| {
                        if axes.contains(&k) {
                            format!("{}u - d{k}", out[k].saturating_sub(1))
                        } else {
                            d(k)
                        }
                    })
                    .collect();
                format!("{split}    return {}({});", a[0], compose(&src, in_shape))
            }
            Movement::Concat(axis) => {
                let mut s = split;
                let mut off = 0;
                for (k, xk) in inputs.iter().enumerate() {
                    let mut src = idx.clone();
                    src[*axis] = format!("d{axis} - {off}u");
                    off += xk.shape()[*axis];
                    let call = format!("{}({})", a[k], compose(&src, xk.shape()));
                    if k + 1 == inputs.len() {
                        s += &format!("    return {call};");
                    } else {
                        s += &format!("    if (d{axis} < {off}u) {{ return {call}; }}\n");
                    }
                }
                s
            }
        }
    }
}

fn node(m: Movement, x: Vec<Tensor>, shape: Vec<usize>, dtype: DType) -> Result<Tensor> {
    Tensor::from_op(Op::Movement(m), x, shape, dtype)
}

pub(crate) fn reshape_p(x: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if numel(shape) != x.numel() {
        return shape_err(
            "reshape",
            format!(
                "cannot reshape {:?} ({} elements) to {shape:?} ({} elements)",
                x.shape(),
                x.numel(),
                numel(shape)
            ),
        );
    }
    if shape == x.shape() {
        return Ok(x.clone());
    }
    node(
        Movement::Reshape,
        vec![x.clone()],
        shape.to_vec(),
        x.dtype(),
    )
}

pub(crate) fn expand_p(x: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if shape == x.shape() {
        return Ok(x.clone());
    }
    let ok =
        shape.len() == x.rank() && x.shape().iter().zip(shape).all(|(&a, &b)| a == b || a == 1);
    if !ok {
        return shape_err(
            "broadcast_to",
            format!("cannot broadcast {:?} to {shape:?}", x.shape()),
        );
    }
    node(Movement::Expand, vec![x.clone()], shape.to_vec(), x.dtype())
}

pub(crate) fn transpose_p(x: &Tensor, perm: &[usize]) -> Result<Tensor> {
    let mut seen = vec![false; x.rank()];
    let valid = perm.len() == x.rank()
        && perm
            .iter()
            .all(|&p| p < x.rank() && !std::mem::replace(&mut seen[p], true));
    if !valid {
        return axis_err(
            "transpose",
            format!(
                "{perm:?} is not a permutation of the axes of {:?}",
                x.shape()
            ),
        );
    }
    if perm.iter().enumerate().all(|(k, &p)| k == p) {
        return Ok(x.clone());
    }
    let shape = perm.iter().map(|&p| x.shape()[p]).collect();
    node(
        Movement::Transpose(perm.to_vec()),
        vec![x.clone()],
        shape,
        x.dtype(),
    )
}

pub(crate) fn slice_p(x: &Tensor, start: &[usize], shape: &[usize]) -> Result<Tensor> {
    if shape == x.shape() {
        return Ok(x.clone());
    }
    node(
        Movement::Slice(start.to_vec()),
        vec![x.clone()],
        shape.to_vec(),
        x.dtype(),
    )
}

pub(crate) fn pad_p(x: &Tensor, lo: &[usize], shape: &[usize]) -> Result<Tensor> {
    if shape == x.shape() {
        return Ok(x.clone());
    }
    node(
        Movement::Pad(lo.to_vec()),
        vec![x.clone()],
        shape.to_vec(),
        x.dtype(),
    )
}

fn pad_lo_hi(x: &Tensor, lo: &[usize], hi: &[usize]) -> Result<Tensor> {
    if lo.len() != x.rank() || hi.len() != x.rank() {
        return shape_err(
            "pad",
            format!(
                "padding lo {lo:?}, hi {hi:?} does not match the rank of {:?}",
                x.shape()
            ),
        );
    }
    let shape: Vec<usize> = (0..x.rank())
        .map(|k| lo[k] + x.shape()[k] + hi[k])
        .collect();
    pad_p(x, lo, &shape)
}

pub(crate) fn flip_p(x: &Tensor, axes: &[usize]) -> Result<Tensor> {
    let axes: Vec<usize> = axes.iter().copied().filter(|&a| x.shape()[a] > 1).collect();
    if axes.is_empty() {
        return Ok(x.clone());
    }
    node(
        Movement::Flip(axes),
        vec![x.clone()],
        x.shape().to_vec(),
        x.dtype(),
    )
}

pub(crate) fn concat_p(xs: &[Tensor], axis: usize) -> Result<Tensor> {
    if xs.len() == 1 {
        return Ok(xs[0].clone());
    }
    let mut shape = xs[0].shape().to_vec();
    shape[axis] = xs.iter().map(|x| x.shape()[axis]).sum();
    node(Movement::Concat(axis), xs.to_vec(), shape, xs[0].dtype())
}

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
