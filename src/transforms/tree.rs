//! Structured arguments and results (JAX's pytrees): tensors, tuples, `Vec`s, arrays,
//! `Option`s and user structs, flattened to a list of tensor leaves and rebuilt.

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
/// let g = grad(|p: &Linear| (&p.w * 3.0 + &p.b).sum(None, false))(&p);
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
///     match m.act { Act::Tanh => h.tanh(), Act::Relu => h.relu() }.sum(None, false)
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
