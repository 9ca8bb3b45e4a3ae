//! Transforms over positional tensor arguments with `argnums`, as in the spec's Python
//! signatures: `f` takes `&[Tensor]` (its positional arguments) and the results come back one
//! per selected argument.

use crate::base::error::{Result, or_panic, transform_err};
use crate::ir::tensor::Tensor;
use crate::transforms::api::{GradOptions, check_scalar};
use crate::transforms::jac::{jacfwd_flat, jacrev_flat};
use crate::transforms::vjp::vjp_flat;

/// Which positional arguments to differentiate: one index, several, or all (`None` in JAX).
///
/// ```
/// use wgrad::Argnums;
/// assert_eq!(Argnums::from(1), Argnums::One(1));
/// assert_eq!(Argnums::from([0, 2]), Argnums::Many(vec![0, 2]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Argnums {
    /// One argument.
    One(usize),
    /// These arguments, in this order.
    Many(Vec<usize>),
    /// Every argument.
    All,
}

impl From<usize> for Argnums {
    fn from(a: usize) -> Self {
        Argnums::One(a)
    }
}
impl<const N: usize> From<[usize; N]> for Argnums {
    fn from(a: [usize; N]) -> Self {
        Argnums::Many(a.to_vec())
    }
}
impl From<Vec<usize>> for Argnums {
    fn from(a: Vec<usize>) -> Self {
        Argnums::Many(a)
    }
}
impl From<Option<Vec<usize>>> for Argnums {
    fn from(a: Option<Vec<usize>>) -> Self {
        a.map_or(Argnums::All, Argnums::Many)
    }
}

impl Argnums {
    fn list(&self) -> Option<Vec<usize>> {
        match self {
            Argnums::One(a) => Some(vec![*a]),
            Argnums::Many(v) => Some(v.clone()),
            Argnums::All => None,
        }
    }
    fn resolve(&self, transform: &'static str, n: usize) -> Result<Vec<usize>> {
        let list = self.list().unwrap_or_else(|| (0..n).collect());
        if let Some(&a) = list.iter().find(|&&a| a >= n) {
            return transform_err(
                transform,
                format!("argnums {a} is out of range for a function of {n} arguments"),
            );
        }
        Ok(list)
    }
}

/// Fallible value and gradients with respect to the `argnums` positional arguments.
///
/// ```
/// use wgrad::prelude::*;
/// let f = |a: &[Tensor]| (&a[0] * &a[1]).sum_all();
/// let vg = try_value_and_grad_argnums(f, 5, GradOptions::default());
/// let e = vg(&[Tensor::ones([1]), Tensor::ones([1])]).unwrap_err();
/// assert!(e.to_string().contains("argnums 5"));
/// ```
pub fn try_value_and_grad_argnums<F: Fn(&[Tensor]) -> Tensor>(
    f: F,
    argnums: impl Into<Argnums>,
    opts: GradOptions,
) -> impl Fn(&[Tensor]) -> Result<(Tensor, Vec<Tensor>)> {
    let argnums = argnums.into();
    move |args: &[Tensor]| {
        let sel = argnums.resolve("grad", args.len())?;
        let g = |x: &[Tensor]| vec![f(x)];
        let (ys, pb) = vjp_flat(&g, args, opts.create_graph);
        check_scalar("grad", &ys[0])?;
        let all = pb.call(&[Some(ys[0].ones_like())])?;
        let grads: Vec<Tensor> = sel.iter().map(|&a| all[a].clone()).collect();
        if !opts.create_graph && opts.realize {
            let mut r = grads.clone();
            r.push(ys[0].clone());
            crate::realize(&r);
        }
        Ok((ys[0].clone(), grads))
    }
}

/// Gradients with respect to the `argnums` positional arguments (one per selected index).
///
/// ```
/// use wgrad::prelude::*;
/// let f = |a: &[Tensor]| (&a[0] * &a[1]).sum_all();
/// let (x, y) = (Tensor::from_vec(vec![2.0f32], [1]), Tensor::from_vec(vec![5.0f32], [1]));
/// let g = grad_argnums(f, 1)(&[x, y]);
/// assert_eq!(g[0].item(), 2.0);
/// ```
pub fn grad_argnums<F: Fn(&[Tensor]) -> Tensor>(
    f: F,
    argnums: impl Into<Argnums>,
) -> impl Fn(&[Tensor]) -> Vec<Tensor> {
    let vg = try_value_and_grad_argnums(f, argnums, GradOptions::default());
    move |a: &[Tensor]| or_panic(vg(a)).1
}

/// Value and gradients with respect to the `argnums` positional arguments.
///
/// ```
/// use wgrad::prelude::*;
/// let f = |a: &[Tensor]| (&a[0] + &a[1]).sum_all();
/// let (v, g) = value_and_grad_argnums(f, Argnums::All)(&[Tensor::ones([2]), Tensor::ones([2])]);
/// assert_eq!((v.item(), g.len()), (4.0, 2));
/// ```
pub fn value_and_grad_argnums<F: Fn(&[Tensor]) -> Tensor>(
    f: F,
    argnums: impl Into<Argnums>,
) -> impl Fn(&[Tensor]) -> (Tensor, Vec<Tensor>) {
    let vg = try_value_and_grad_argnums(f, argnums, GradOptions::default());
    move |a: &[Tensor]| or_panic(vg(a))
}

/// Reverse-mode Jacobians of a function with several outputs: `[output][selected argument]`,
/// each of shape `(*out_shape, *arg_shape)`.
///
/// ```
/// use wgrad::prelude::*;
/// let f = |a: &[Tensor]| vec![&a[0] * &a[1], a[0].sum_all()];
/// let j = jacrev_argnums(f, Argnums::All)(&[Tensor::ones([2]), Tensor::full([2], 3.0)]);
/// assert_eq!(j[0][0].to_vec::<f32>(), vec![3.0, 0.0, 0.0, 3.0]);
/// assert_eq!(j[1][1].to_vec::<f32>(), vec![0.0, 0.0]);
/// ```
pub fn jacrev_argnums<F: Fn(&[Tensor]) -> Vec<Tensor>>(
    f: F,
    argnums: impl Into<Argnums>,
) -> impl Fn(&[Tensor]) -> Vec<Vec<Tensor>> {
    let argnums = argnums.into();
    move |args: &[Tensor]| or_panic(jacrev_flat(&f, args, &argnums.list()))
}

/// Forward-mode Jacobians of a function with several outputs: `[output][selected argument]`.
///
/// ```
/// use wgrad::prelude::*;
/// let f = |a: &[Tensor]| vec![&a[0] * &a[1]];
/// let j = jacfwd_argnums(f, 1)(&[Tensor::full([2], 2.0), Tensor::ones([2])]);
/// assert_eq!(j[0][0].to_vec::<f32>(), vec![2.0, 0.0, 0.0, 2.0]);
/// ```
pub fn jacfwd_argnums<F: Fn(&[Tensor]) -> Vec<Tensor>>(
    f: F,
    argnums: impl Into<Argnums>,
) -> impl Fn(&[Tensor]) -> Vec<Vec<Tensor>> {
    let argnums = argnums.into();
    move |args: &[Tensor]| or_panic(jacfwd_flat(&f, args, &argnums.list()))
}
