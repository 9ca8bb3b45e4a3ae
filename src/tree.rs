//! Working with trees of tensors (JAX's `jax.tree_util`): map a function over every leaf, zip
//! two trees of the same structure, fold the leaves, name them by path.
//!
//! A tree is anything that implements [`Tree`]: a tensor, tuples, `Vec`s, arrays, `Option`s and
//! structs declared with [`crate::tree_struct!`]. Parameters, gradients and optimizer states are
//! all plain trees. Transforms take and return trees: they flatten them to a list of tensor
//! leaves and rebuild them.
//!
//! ```
//! use wgrad::prelude::*;
//! use wgrad::tree::{tree_map, tree_map2, global_norm};
//!
//! let params = (Tensor::ones([2]), Tensor::from_vec(vec![3.0f32], [1]));
//! let grads = grad(|p: &(Tensor, Tensor)| (&p.0 * &p.1).sum_all())(&params);
//! let stepped = tree_map2(&params, &grads, |p, g| p - g * 0.1);
//! let halved = tree_map(&stepped, |t| t * 0.5);
//! assert_eq!(halved.1.to_vec::<f32>(), vec![1.4]);
//! assert!((global_norm(&grads).item() - 22f32.sqrt()).abs() < 1e-6); // grads: [3, 3] and [2]
//! ```

use crate::base::error::{Result, shape_err};
use crate::ir::tensor::Tensor;

/// A structure of tensors that transforms can take apart and rebuild.
///
/// Implemented for [`Tensor`], tuples of up to six trees, `Vec<T>`, `[T; N]`, `Option<T>` and
/// `()`. For a struct of your own, list its fields with [`crate::tree_struct!`]:
///
/// ```
/// use wgrad::prelude::*;
/// struct Linear { w: Tensor, b: Tensor }
/// wgrad::tree_struct!(Linear { w, b });
///
/// let p = Linear { w: Tensor::ones([2]), b: Tensor::scalar(0.5) };
/// let g = grad(|p: &Linear| (&p.w * 3.0 + &p.b).sum_all())(&p);
/// assert_eq!(g.w.to_vec::<f32>(), vec![3.0, 3.0]);
/// assert_eq!(g.b.item(), 2.0);
/// ```
pub trait Tree: Sized {
    /// Appends the leaves, in a fixed order.
    fn flatten(&self, leaves: &mut Vec<Tensor>);
    /// The same structure with its leaves taken, in order, from `leaves`.
    fn unflatten(&self, leaves: &mut dyn Iterator<Item = Tensor>) -> Self;
    /// How many leaves each top-level positional argument has (for `in_axes` prefixes).
    /// A tuple lists its elements; anything else is one argument.
    fn arg_leaf_counts(&self) -> Vec<usize> {
        vec![self.leaves().len()]
    }
    /// Appends the leaves with their paths (`layers.0.w`), in [`Tree::flatten`]'s order; the
    /// names checkpoints use. The default names the leaves `prefix.0`, `prefix.1`, …;
    /// [`crate::tree_struct!`] names them by field.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let mut v = vec![];
    /// (Tensor::ones([1]), vec![Tensor::ones([1])]).flatten_named("p", &mut v);
    /// assert_eq!(v.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["p.0", "p.1.0"]);
    /// ```
    fn flatten_named(&self, prefix: &str, leaves: &mut Vec<(String, Tensor)>) {
        let mut v = vec![];
        self.flatten(&mut v);
        if let [one] = &v[..] {
            leaves.push((prefix.to_string(), one.clone()));
            return;
        }
        for (k, t) in v.into_iter().enumerate() {
            leaves.push((join_path(prefix, &k.to_string()), t));
        }
    }
    /// The leaves as a `Vec`.
    fn leaves(&self) -> Vec<Tensor> {
        let mut v = vec![];
        self.flatten(&mut v);
        v
    }
    /// The same structure built from `leaves` (which must have the right length).
    fn rebuild(&self, leaves: Vec<Tensor>) -> Self {
        let mut it = leaves.into_iter();
        let out = self.unflatten(&mut it);
        debug_assert!(it.next().is_none(), "tree rebuilt from too many leaves");
        out
    }
}

impl Tree for Tensor {
    fn flatten(&self, leaves: &mut Vec<Tensor>) {
        leaves.push(self.clone());
    }
    fn flatten_named(&self, prefix: &str, leaves: &mut Vec<(String, Tensor)>) {
        leaves.push((prefix.to_string(), self.clone()));
    }
    fn unflatten(&self, leaves: &mut dyn Iterator<Item = Tensor>) -> Self {
        leaves
            .next()
            .expect("tree has fewer leaves than its structure")
    }
}

impl Tree for () {
    fn flatten(&self, _: &mut Vec<Tensor>) {}
    fn unflatten(&self, _: &mut dyn Iterator<Item = Tensor>) -> Self {}
}

impl<T: Tree> Tree for Vec<T> {
    fn flatten(&self, leaves: &mut Vec<Tensor>) {
        self.iter().for_each(|t| t.flatten(leaves));
    }
    fn flatten_named(&self, prefix: &str, leaves: &mut Vec<(String, Tensor)>) {
        for (k, t) in self.iter().enumerate() {
            t.flatten_named(&join_path(prefix, &k.to_string()), leaves);
        }
    }
    fn unflatten(&self, leaves: &mut dyn Iterator<Item = Tensor>) -> Self {
        self.iter().map(|t| t.unflatten(leaves)).collect()
    }
}

impl<T: Tree, const N: usize> Tree for [T; N] {
    fn flatten(&self, leaves: &mut Vec<Tensor>) {
        self.iter().for_each(|t| t.flatten(leaves));
    }
    fn flatten_named(&self, prefix: &str, leaves: &mut Vec<(String, Tensor)>) {
        for (k, t) in self.iter().enumerate() {
            t.flatten_named(&join_path(prefix, &k.to_string()), leaves);
        }
    }
    fn unflatten(&self, leaves: &mut dyn Iterator<Item = Tensor>) -> Self {
        std::array::from_fn(|k| self[k].unflatten(leaves))
    }
}

impl<T: Tree> Tree for Option<T> {
    fn flatten(&self, leaves: &mut Vec<Tensor>) {
        if let Some(t) = self {
            t.flatten(leaves);
        }
    }
    fn flatten_named(&self, prefix: &str, leaves: &mut Vec<(String, Tensor)>) {
        if let Some(t) = self {
            t.flatten_named(prefix, leaves);
        }
    }
    fn unflatten(&self, leaves: &mut dyn Iterator<Item = Tensor>) -> Self {
        self.as_ref().map(|t| t.unflatten(leaves))
    }
}

macro_rules! tuple_tree {
    ($($t:ident $i:tt),+) => {
        impl<$($t: Tree),+> Tree for ($($t,)+) {
            fn flatten(&self, leaves: &mut Vec<Tensor>) {
                $(self.$i.flatten(leaves);)+
            }
            fn unflatten(&self, leaves: &mut dyn Iterator<Item = Tensor>) -> Self {
                ($(self.$i.unflatten(leaves),)+)
            }
            fn arg_leaf_counts(&self) -> Vec<usize> {
                vec![$(self.$i.leaves().len()),+]
            }
            fn flatten_named(&self, prefix: &str, leaves: &mut Vec<(String, Tensor)>) {
                $(self.$i.flatten_named(&join_path(prefix, stringify!($i)), leaves);)+
            }
        }
    };
}
tuple_tree!(A 0);
tuple_tree!(A 0, B 1);
tuple_tree!(A 0, B 1, C 2);
tuple_tree!(A 0, B 1, C 2, D 3);
tuple_tree!(A 0, B 1, C 2, D 3, E 4);
tuple_tree!(A 0, B 1, C 2, D 3, E 4, F 5);

/// Implements [`Tree`] for a struct whose listed fields are all trees (tensors, `Vec`s, other
/// such structs…). Fields after `; static` are carried along, not differentiated: a layer size,
/// an activation choice, a flag (they must be `Clone`).
///
/// ```
/// use wgrad::prelude::*;
/// #[derive(Clone, Copy)]
/// enum Act { Tanh, Relu }
/// struct Mlp { layers: Vec<(Tensor, Tensor)>, act: Act }
/// wgrad::tree_struct!(Mlp { layers; static act });
///
/// let m = Mlp { layers: vec![(Tensor::ones([2, 2]), Tensor::zeros([2]))], act: Act::Relu };
/// assert_eq!(m.leaves().len(), 2);
/// assert_eq!(wgrad::tree::named_leaves(&m)[1].0, "layers.0.1");
/// let g = grad(|m: &Mlp| {
///     let (w, b) = &m.layers[0];
///     let h = Tensor::ones([1, 2]).matmul(w) + b;
///     match m.act { Act::Tanh => h.tanh(), Act::Relu => h.relu() }.sum_all()
/// })(&m);
/// assert!(matches!(g.act, Act::Relu));
/// ```
#[macro_export]
macro_rules! tree_struct {
    ($name:ident { $($field:ident),* $(,)? $(; static $($fixed:ident),* $(,)?)? }) => {
        impl $crate::Tree for $name {
            fn flatten(&self, leaves: &mut Vec<$crate::Tensor>) {
                $($crate::Tree::flatten(&self.$field, leaves);)*
            }
            fn unflatten(&self, leaves: &mut dyn Iterator<Item = $crate::Tensor>) -> Self {
                $name {
                    $($field: $crate::Tree::unflatten(&self.$field, leaves),)*
                    $($($fixed: ::std::clone::Clone::clone(&self.$fixed),)*)?
                }
            }
            fn flatten_named(
                &self,
                prefix: &str,
                leaves: &mut Vec<(String, $crate::Tensor)>,
            ) {
                $($crate::Tree::flatten_named(
                    &self.$field,
                    &$crate::tree::join_path(prefix, stringify!($field)),
                    leaves,
                );)*
            }
        }
    };
}

/// `prefix.name`, or `name` at the top.
///
/// ```
/// assert_eq!(wgrad::tree::join_path("", "w"), "w");
/// assert_eq!(wgrad::tree::join_path("layers.0", "w"), "layers.0.w");
/// ```
pub fn join_path(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

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
        acc + x.cast(crate::DType::F32).square().sum_all()
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
