//! Working with trees of tensors (JAX's `jax.tree_util`): map a function over every leaf, zip
//! two trees of the same structure, fold the leaves, name them by path.
//!
//! A tree is anything that implements [`Tree`]: a tensor, tuples, `Vec`s, arrays, `Option`s and
//! structs declared with [`crate::tree_struct!`]. Parameters, gradients and optimizer states are
//! all plain trees.
//!
//! ```
//! use wgrad::prelude::*;
//! use wgrad::tree::{tree_map, tree_map2, global_norm};
//!
//! let params = (Tensor::ones([2]), Tensor::from_vec(vec![3.0f32], [1]));
//! let grads = grad(|p: &(Tensor, Tensor)| (&p.0 * &p.1).sum(None, false))(&params);
//! let stepped = tree_map2(&params, &grads, |p, g| p - g * 0.1);
//! let halved = tree_map(&stepped, |t| t * 0.5);
//! assert_eq!(halved.1.to_vec::<f32>(), vec![1.4]);
//! assert!((global_norm(&grads).item() - 22f32.sqrt()).abs() < 1e-6); // grads: [3, 3] and [2]
//! ```

use crate::base::error::{Result, shape_err};
use crate::ir::tensor::Tensor;
pub use crate::transforms::tree::{Tree, join_path};

/// The same tree with `f` applied to every leaf.
///
/// ```
/// use wgrad::prelude::*;
/// let t = vec![Tensor::ones([2]), Tensor::zeros([3])];
/// let doubled = wgrad::tree::tree_map(&t, |x| x * 2.0);
/// assert_eq!(doubled[0].to_vec::<f32>(), vec![2.0, 2.0]);
/// ```
pub fn tree_map<T: Tree>(tree: &T, mut f: impl FnMut(&Tensor) -> Tensor) -> T {
    let leaves = tree.leaves().iter().map(&mut f).collect();
    tree.rebuild(leaves)
}

/// A tree of `a`'s structure whose leaves are `f(a_leaf, b_leaf)`; panics when the trees have
/// different numbers of leaves ([`try_tree_map2`] returns the error).
///
/// ```
/// use wgrad::prelude::*;
/// let p = (Tensor::ones([2]), Tensor::scalar(1.0));
/// let g = (Tensor::ones([2]), Tensor::scalar(4.0));
/// let q = wgrad::tree::tree_map2(&p, &g, |p, g| p - g * 0.5);
/// assert_eq!(q.1.item(), -1.0);
/// ```
#[track_caller]
pub fn tree_map2<T: Tree>(a: &T, b: &T, f: impl FnMut(&Tensor, &Tensor) -> Tensor) -> T {
    try_tree_map2(a, b, f).unwrap_or_else(|e| panic!("{e}"))
}

/// Fallible [`tree_map2`]: trees with different numbers of leaves are an error (and `f` is
/// not called).
///
/// ```
/// use wgrad::prelude::*;
/// let a = vec![Tensor::ones([2])];
/// let b = vec![Tensor::ones([2]), Tensor::ones([2])];
/// let e = wgrad::tree::try_tree_map2(&a, &b, |x, y| x + y).unwrap_err();
/// assert!(e.to_string().contains("1 leaves and 2"));
/// ```
pub fn try_tree_map2<T: Tree>(
    a: &T,
    b: &T,
    mut f: impl FnMut(&Tensor, &Tensor) -> Tensor,
) -> Result<T> {
    let (la, lb) = (a.leaves(), b.leaves());
    if la.len() != lb.len() {
        return shape_err(
            "tree_map2",
            format!("the trees have {} leaves and {}", la.len(), lb.len()),
        );
    }
    let out = la.iter().zip(&lb).map(|(x, y)| f(x, y)).collect();
    Ok(a.rebuild(out))
}

/// The leaves in order (the same as [`Tree::leaves`]).
///
/// ```
/// use wgrad::prelude::*;
/// let t = (Tensor::ones([2]), vec![Tensor::zeros([1]); 3]);
/// assert_eq!(wgrad::tree::tree_leaves(&t).len(), 4);
/// ```
pub fn tree_leaves<T: Tree>(tree: &T) -> Vec<Tensor> {
    tree.leaves()
}

/// The leaves with their paths: struct fields by name, `Vec`/array/tuple elements by index,
/// joined with dots (`layers.0.w`); the names checkpoints use.
///
/// ```
/// use wgrad::prelude::*;
/// struct Linear { w: Tensor, b: Tensor }
/// wgrad::tree_struct!(Linear { w, b });
/// let layers = vec![Linear { w: Tensor::ones([2, 2]), b: Tensor::zeros([2]) }];
/// let names: Vec<String> = wgrad::tree::named_leaves(&layers).into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["0.w", "0.b"]);
/// ```
pub fn named_leaves<T: Tree>(tree: &T) -> Vec<(String, Tensor)> {
    let mut v = vec![];
    tree.flatten_named("", &mut v);
    v
}

/// Folds the leaves in order: `f(f(init, leaf0), leaf1)…`.
///
/// ```
/// use wgrad::prelude::*;
/// let t = (Tensor::ones([2]), Tensor::ones([3, 2]));
/// let count = wgrad::tree::tree_reduce(&t, 0, |n, x| n + x.numel());
/// assert_eq!(count, 8);
/// ```
pub fn tree_reduce<T: Tree, A>(tree: &T, init: A, f: impl FnMut(A, &Tensor) -> A) -> A {
    tree.leaves().iter().fold(init, f)
}

/// The square root of the sum of squares of every element of every leaf (a lazy scalar; 0 for
/// a tree without leaves): the norm that gradient clipping uses.
///
/// ```
/// use wgrad::prelude::*;
/// let t = (Tensor::from_vec(vec![3.0f32], [1]), Tensor::from_vec(vec![4.0f32], [1]));
/// assert_eq!(wgrad::tree::global_norm(&t).item(), 5.0);
/// ```
pub fn global_norm<T: Tree>(tree: &T) -> Tensor {
    tree_reduce(tree, Tensor::scalar(0.0), |acc, x| {
        acc + x.cast(crate::DType::F32).square().sum(None, false)
    })
    .sqrt()
}

/// The same tree with every leaf replaced by zeros of its shape and dtype.
///
/// ```
/// use wgrad::prelude::*;
/// let z = wgrad::tree::zeros_like(&(Tensor::ones([2]), Tensor::ones([1])));
/// assert_eq!(z.0.to_vec::<f32>(), vec![0.0, 0.0]);
/// ```
pub fn zeros_like<T: Tree>(tree: &T) -> T {
    tree_map(tree, Tensor::zeros_like)
}

/// How many elements the leaves hold together (parameter counts).
///
/// ```
/// use wgrad::prelude::*;
/// assert_eq!(wgrad::tree::size(&(Tensor::ones([3, 4]), Tensor::ones([4]))), 16);
/// ```
pub fn size<T: Tree>(tree: &T) -> usize {
    tree_reduce(tree, 0, |n, x| n + x.numel())
}

/// Any tree, seen only through its leaves (an object-safe view of [`Tree`], so that trees of
/// different types can be passed together to [`realize`]).
///
/// ```
/// use wgrad::prelude::*;
/// use wgrad::tree::Leaves;
/// let trees: [&dyn Leaves; 2] = [&Tensor::ones([2]), &(Tensor::ones([1]), Tensor::ones([3]))];
/// assert_eq!(trees.iter().map(|t| t.leaf_tensors().len()).sum::<usize>(), 3);
/// ```
pub trait Leaves {
    /// The leaves in order.
    fn leaf_tensors(&self) -> Vec<Tensor>;
}

impl<T: Tree> Leaves for T {
    fn leaf_tensors(&self) -> Vec<Tensor> {
        self.leaves()
    }
}

/// Realizes every leaf of several trees together: one schedule, one submit (the parameters
/// and the optimizer state after a step, say).
///
/// ```
/// use wgrad::prelude::*;
/// let params = (Tensor::ones([2]).exp(), Tensor::ones([3]).sin());
/// let state = vec![Tensor::zeros([2]) + 1.0];
/// let before = wgrad::counters();
/// wgrad::tree::realize(&[&params, &state]);
/// assert_eq!(wgrad::counters().since(&before).submits, 1);
/// assert!(params.0.is_realized() && state[0].is_realized());
/// ```
pub fn realize(trees: &[&dyn Leaves]) {
    crate::runtime::read::realize(
        &trees
            .iter()
            .flat_map(|t| t.leaf_tensors())
            .collect::<Vec<_>>(),
    );
}

/// Fallible [`realize`].
///
/// ```
/// use wgrad::prelude::*;
/// assert!(wgrad::tree::try_realize(&[&Tensor::ones([2]).exp()]).is_ok());
/// ```
pub fn try_realize(trees: &[&dyn Leaves]) -> Result<()> {
    crate::runtime::read::try_realize(
        &trees
            .iter()
            .flat_map(|t| t.leaf_tensors())
            .collect::<Vec<_>>(),
    )
}
