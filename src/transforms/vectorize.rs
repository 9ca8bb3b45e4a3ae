//! The public vmap on structured arguments: [`vmap`], [`vmap2`], [`vmap_with`] and their
//! batch-axis options.

use crate::base::error::{Result, or_panic, transform_err};
use crate::transforms::api::flat_fn;
use crate::transforms::vmap::vmap_flat;
use crate::tree::Tree;

/// Batch axes for [`vmap`]: one spec for every argument, or one per positional argument
/// (tuple element), or one per leaf. `None` = not batched.
///
/// ```
/// use wgrad::InAxes;
/// let all: InAxes = 0.into();
/// let per_arg: InAxes = [Some(0), None].into();
/// assert_ne!(all, per_arg);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum InAxes {
    /// The same axis for every leaf.
    All(Option<isize>),
    /// One entry per positional argument (its leaves share it) or per leaf.
    Each(Vec<Option<isize>>),
}

impl From<isize> for InAxes {
    fn from(a: isize) -> Self {
        InAxes::All(Some(a))
    }
}
impl From<i32> for InAxes {
    fn from(a: i32) -> Self {
        InAxes::All(Some(a as isize))
    }
}
impl From<Option<isize>> for InAxes {
    fn from(a: Option<isize>) -> Self {
        InAxes::All(a)
    }
}
impl<const N: usize> From<[Option<isize>; N]> for InAxes {
    fn from(a: [Option<isize>; N]) -> Self {
        InAxes::Each(a.to_vec())
    }
}
impl From<Vec<Option<isize>>> for InAxes {
    fn from(a: Vec<Option<isize>>) -> Self {
        InAxes::Each(a)
    }
}

impl InAxes {
    /// One axis per leaf, expanding per-argument prefixes.
    pub(crate) fn per_leaf(&self, what: &str, counts: &[usize]) -> Result<Vec<Option<isize>>> {
        let leaves: usize = counts.iter().sum();
        match self {
            InAxes::All(a) => Ok(vec![*a; leaves]),
            InAxes::Each(v) if v.len() == counts.len() => Ok(v
                .iter()
                .zip(counts)
                .flat_map(|(a, &n)| std::iter::repeat_n(*a, n))
                .collect()),
            InAxes::Each(v) if v.len() == leaves => Ok(v.clone()),
            InAxes::Each(v) => transform_err(
                "vmap",
                format!(
                    "{what} has {} entries; expected {} (one per argument) or {leaves} (one per leaf)",
                    v.len(),
                    counts.len()
                ),
            ),
        }
    }
}

/// Options of [`vmap_with`] (JAX's `in_axes`, `out_axes`, `axis_size`).
///
/// ```
/// let o = wgrad::VmapOptions { in_axes: 1.into(), ..Default::default() };
/// assert_eq!(o.out_axes, wgrad::InAxes::All(Some(0)));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct VmapOptions {
    /// Batch axis of each argument (default 0 for all).
    pub in_axes: InAxes,
    /// Where the batch axis goes in each output (default 0).
    pub out_axes: InAxes,
    /// The batch size, needed only when no argument is batched.
    pub axis_size: Option<usize>,
}

impl Default for VmapOptions {
    fn default() -> Self {
        VmapOptions {
            in_axes: InAxes::All(Some(0)),
            out_axes: InAxes::All(Some(0)),
            axis_size: None,
        }
    }
}

/// Options from `in_axes` alone (outputs batched along axis 0), so that the fallible
/// [`try_vmap`] takes axes as [`vmap`] does.
impl<T: Into<InAxes>> From<T> for VmapOptions {
    fn from(in_axes: T) -> VmapOptions {
        VmapOptions {
            in_axes: in_axes.into(),
            ..Default::default()
        }
    }
}

/// Vectorizes `f` over a batch axis of its arguments (JAX's `vmap`).
///
/// ```
/// use wgrad::prelude::*;
/// let w = Tensor::from_vec(vec![1.0f32, 2.0], [2]);
/// let dot = |(x, w): &(Tensor, Tensor)| (x * w).sum_all();
/// let xs = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0], [3, 2]);
/// let ys = vmap(dot, [Some(0), None])(&(xs, w));
/// assert_eq!(ys.to_vec::<f32>(), vec![1.0, 2.0, 3.0]);
/// ```
pub fn vmap<A: Tree, O: Tree>(f: impl Fn(&A) -> O, in_axes: impl Into<InAxes>) -> impl Fn(&A) -> O {
    let opts = VmapOptions {
        in_axes: in_axes.into(),
        ..Default::default()
    };
    let v = try_vmap(f, opts);
    move |a: &A| or_panic(v(a))
}

/// [`vmap`] of a function of two arguments taken by reference, so that neither needs to be
/// cloned into a tuple: `in_axes` has one entry per argument (`None`: not batched, shared).
/// Per-example gradients of a parameter struct:
///
/// ```
/// use wgrad::prelude::*;
/// struct P { w: Tensor }
/// wgrad::tree_struct!(P { w });
/// let p = P { w: Tensor::from_vec(vec![1.0f32, 2.0], [2]) };
/// let xs = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 3.0, 2.0, 2.0], [3, 2]);
/// let per_example = vmap2(
///     |p: &P, x: &Tensor| grad(|p: &P| (&p.w * x).sum_all().square())(p),
///     vec![None, Some(0)],
/// )(&p, &xs);
/// assert_eq!(per_example.w.shape(), &[3, 2]); // one gradient per example
/// assert_eq!(per_example.w.to_vec::<f32>(), vec![2.0, 0.0, 0.0, 36.0, 24.0, 24.0]);
/// ```
pub fn vmap2<A: Tree, B: Tree, O: Tree>(
    f: impl Fn(&A, &B) -> O,
    in_axes: impl Into<InAxes>,
) -> impl Fn(&A, &B) -> O {
    let v = vmap(move |(a, b): &(A, B)| f(a, b), in_axes);
    // The tuple holds new handles to the same tensors (no data is copied; the arguments
    // need not be `Clone`).
    move |a: &A, b: &B| v(&(a.rebuild(a.leaves()), b.rebuild(b.leaves())))
}

/// Fallible [`vmap2`].
///
/// ```
/// use wgrad::prelude::*;
/// let v = try_vmap2(|a: &Tensor, b: &Tensor| a + b, VmapOptions::default());
/// assert!(v(&Tensor::ones([3, 2]), &Tensor::ones([4, 2])).is_err());
/// ```
pub fn try_vmap2<A: Tree, B: Tree, O: Tree>(
    f: impl Fn(&A, &B) -> O,
    opts: impl Into<VmapOptions>,
) -> impl Fn(&A, &B) -> Result<O> {
    let v = try_vmap(move |(a, b): &(A, B)| f(a, b), opts);
    move |a: &A, b: &B| v(&(a.rebuild(a.leaves()), b.rebuild(b.leaves())))
}

/// [`vmap`] with all options.
///
/// ```
/// use wgrad::prelude::*;
/// let opts = VmapOptions { in_axes: 1.into(), out_axes: 1.into(), ..Default::default() };
/// let y = vmap_with(|x: &Tensor| x.sum_all().expand_dims(0), opts)(&Tensor::ones([4, 3]));
/// assert_eq!(y.shape(), &[1, 3]);
/// ```
pub fn vmap_with<A: Tree, O: Tree>(f: impl Fn(&A) -> O, opts: VmapOptions) -> impl Fn(&A) -> O {
    let v = try_vmap(f, opts);
    move |a: &A| or_panic(v(a))
}

/// Fallible [`vmap`] and [`vmap_with`]: disagreeing batch sizes or axes out of range are
/// errors. Takes `in_axes` as `vmap` does (`0`, `[Some(0), None]`, …) or all the options.
///
/// ```
/// use wgrad::prelude::*;
/// let v = try_vmap(|(a, b): &(Tensor, Tensor)| a + b, VmapOptions::default());
/// let e = v(&(Tensor::ones([3, 2]), Tensor::ones([4, 2]))).unwrap_err();
/// assert!(e.to_string().contains("batch sizes disagree"));
/// let sums = try_vmap(|x: &Tensor| x.sum_all(), 1)(&Tensor::ones([4, 3])).unwrap();
/// assert_eq!(sums.to_vec::<f32>(), vec![4.0; 3]);
/// ```
pub fn try_vmap<A: Tree, O: Tree>(
    f: impl Fn(&A) -> O,
    opts: impl Into<VmapOptions>,
) -> impl Fn(&A) -> Result<O> {
    let opts: VmapOptions = opts.into();
    move |args: &A| {
        let in_axes = opts.in_axes.per_leaf("in_axes", &args.arg_leaf_counts())?;
        let out = std::cell::RefCell::new(None);
        let flat = flat_fn(&f, args, &out);
        let out_axes = |n: usize| opts.out_axes.per_leaf("out_axes", &[n]);
        let outs = vmap_flat(&flat, &args.leaves(), &in_axes, &out_axes, opts.axis_size)?;
        let o = out.borrow_mut().take().expect("function ran");
        Ok(o.rebuild(outs))
    }
}
