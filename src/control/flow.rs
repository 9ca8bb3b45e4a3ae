//! Control flow: [`scan`], [`fori_loop`], [`while_loop`] and [`cond`] (JAX's `lax.scan`,
//! `lax.fori_loop`, `lax.while_loop`, `lax.cond`).
//!
//! How loops run: the body is traced **once**, on placeholders, and becomes one loop node
//! (`prim::loops`): the scheduler plans the body once and records its kernels once per step
//! into the same submit, so a loop of N steps is one realize and one submit whose host work
//! does not grow with N (bar recording N copies of the body's dispatches). Its derivatives
//! and batched forms are loops too: `grad` of a scan is a loop saving each step's carry and a
//! reverse loop, not N copies. Loops whose results mix dtypes are unrolled (the traced
//! graph copied per step), as is every loop under `Policy::loops = false`.

use crate::base::error::{Result, or_panic, transform_err};
use crate::control::build::loop_flat;
use crate::control::while_node::{Limits, trace_while, while_nodes};
use crate::ir::tensor::Tensor;
use crate::ir::trace::is_staged;
use crate::tree::Tree;

/// `jax.lax.scan`: `f(carry, x_t) -> (carry, y_t)` over the leading axis of `xs` (every leaf
/// of `xs` has the same length N), from `init`; returns the final carry and the `y_t`
/// stacked along a new leading axis. With `reverse`, steps run from the last slice to the
/// first (the `y_t` are still stacked in index order). Carries, slices and outputs are trees.
///
/// ```
/// use wgrad::prelude::*;
/// // A running sum and its partial sums.
/// let xs = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [4]);
/// let (total, partial) = scan(|c: &Tensor, x: &Tensor| {
///     let c = c + x;
///     (c.clone(), c)
/// }, &Tensor::scalar(0.0), &xs, false);
/// assert_eq!(total.item(), 10.0);
/// assert_eq!(partial.to_vec::<f32>(), vec![1.0, 3.0, 6.0, 10.0]);
/// ```
#[track_caller]
pub fn scan<C: Tree, X: Tree, Y: Tree>(
    f: impl Fn(&C, &X) -> (C, Y),
    init: &C,
    xs: &X,
    reverse: bool,
) -> (C, Y) {
    or_panic(try_scan(f, init, xs, reverse))
}

/// Fallible [`scan`]: slices of different lengths, no slices, or a body that changes the
/// carry's structure, shapes or dtypes are errors.
///
/// ```
/// use wgrad::prelude::*;
/// let xs = (Tensor::ones([3, 2]), Tensor::ones([4, 2])); // lengths 3 and 4
/// let e = try_scan(|c: &Tensor, (a, b): &(Tensor, Tensor)| (c + a + b, ()),
///                  &Tensor::zeros([2]), &xs, false);
/// assert!(e.is_err());
/// ```
pub fn try_scan<C: Tree, X: Tree, Y: Tree>(
    f: impl Fn(&C, &X) -> (C, Y),
    init: &C,
    xs: &X,
    reverse: bool,
) -> Result<(C, Y)> {
    let carry = init.leaves();
    let slices = xs.leaves();
    let Some(first) = slices.first() else {
        return transform_err(
            "control flow",
            "scan: xs has no leaves (its length is their leading axis)",
        );
    };
    let n = first.shape().first().copied().unwrap_or(0);
    for (k, s) in slices.iter().enumerate() {
        if s.rank() == 0 || s.shape()[0] != n {
            return transform_err(
                "control flow",
                format!(
                    "scan: xs leaf {k} has shape {:?}, not a leading axis of length {n} like leaf 0",
                    s.shape()
                ),
            );
        }
    }
    // The body, flat; its output tree is kept from the one trace.
    let template: std::cell::RefCell<Option<Y>> = std::cell::RefCell::new(None);
    let m = carry.len();
    let flat = |a: &[Tensor]| -> Vec<Tensor> {
        let (c, y) = f(&init.rebuild(a[..m].to_vec()), &xs.rebuild(a[m..].to_vec()));
        let mut out = c.leaves();
        out.extend(y.leaves());
        *template.borrow_mut() = Some(y);
        out
    };
    let mut out = loop_flat(&flat, &carry, &slices, n, reverse)?;
    let ys = out.split_off(m);
    let y = template
        .into_inner()
        .ok_or_else(|| crate::base::error::internal("scan: the body was not traced".into()))?;
    Ok((init.rebuild(out), y.rebuild(ys)))
}

/// `jax.lax.fori_loop` with static bounds: `body(i, carry)` for `i` in `lo..hi` (`i` an i32
/// scalar tensor), from `init`. Reverse-mode differentiable (the bounds are static).
///
/// ```
/// use wgrad::prelude::*;
/// // x -> x^(2^3) by repeated squaring, and its derivative.
/// let f = |x: &Tensor| fori_loop(0, 3, |_i, c: &Tensor| c.square(), x);
/// let x = Tensor::from_vec(vec![1.5f32], [1]);
/// assert!((f(&x).item() - 1.5f32.powi(8)).abs() < 1e-3);
/// let g = grad(|x: &Tensor| f(x).sum_all())(&x).item();
/// assert!((g - 8.0 * 1.5f32.powi(7)).abs() < 1e-2);
/// ```
#[track_caller]
pub fn fori_loop<C: Tree>(lo: i32, hi: i32, body: impl Fn(&Tensor, &C) -> C, init: &C) -> C {
    if hi <= lo {
        return init.rebuild(init.leaves());
    }
    let idx: Vec<i32> = (lo..hi).collect();
    let xs = Tensor::from_slice(&idx, [idx.len()]);
    scan(|c: &C, i: &Tensor| (body(i, c), ()), init, &xs, false).0
}

/// Options of [`while_loop_with`].
///
/// ```
/// let o = wgrad::WhileOptions { check_every: 8, ..Default::default() };
/// assert_eq!(o.max_iterations, 1_000_000);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WhileOptions {
    /// Iterations run between two reads of the predicate on the host (each read waits for the
    /// device). With more than 1, the steps between two reads run as one loop node (its body
    /// scheduled once, one submit) and the steps after the predicate turns false keep the
    /// carry unchanged (a select), so the result is the same; fewer round trips, a little
    /// extra work.
    pub check_every: usize,
    /// An error after this many iterations (a loop that does not end).
    pub max_iterations: usize,
}

impl Default for WhileOptions {
    fn default() -> Self {
        WhileOptions {
            check_every: 1,
            max_iterations: 1_000_000,
        }
    }
}

/// `jax.lax.while_loop`: `body(carry)` while `cond(carry)` (a bool scalar) holds. The number of
/// iterations depends on values: the predicate and the body are traced once, and the loop is a
/// node that `realize` runs first, reading the predicate on the host (once per iteration; see
/// [`while_loop_with`] for fewer reads). It works the same inside `vmap` (one loop while any
/// example's predicate holds; an example whose predicate fails keeps its carry from then on,
/// as in JAX), `jit` (the trip count is read anew at every call) and loop bodies. Forward mode
/// (`jvp`, `jacfwd`) differentiates it; reverse mode is an error, as in JAX (use
/// [`fori_loop`] or [`scan`] with a static count).
///
/// ```
/// use wgrad::prelude::*;
/// // Halve until below 1.
/// let x = while_loop(|c: &Tensor| c.greater(&Tensor::scalar(1.0)), |c: &Tensor| c * 0.5,
///                    &Tensor::scalar(10.0));
/// assert_eq!(x.item(), 0.625);
/// ```
#[track_caller]
pub fn while_loop<C: Tree>(cond: impl Fn(&C) -> Tensor, body: impl Fn(&C) -> C, init: &C) -> C {
    or_panic(while_loop_with(cond, body, init, WhileOptions::default()))
}

/// [`while_loop`] with options, fallible: a predicate that is not a bool scalar or a body that
/// changes the carry's structure is an error here; a loop past `max_iterations` is an error
/// from the realize that runs it (`try_to_vec`, `try_realize`).
///
/// ```
/// use wgrad::prelude::*;
/// let opts = WhileOptions { check_every: 4, ..Default::default() };
/// let x = while_loop_with(|c: &Tensor| c.greater(&Tensor::scalar(1.0)), |c: &Tensor| c * 0.5,
///                         &Tensor::scalar(10.0), opts).unwrap();
/// assert_eq!(x.item(), 0.625); // the same, with a read every 4 steps
/// ```
pub fn while_loop_with<C: Tree>(
    cond: impl Fn(&C) -> Tensor,
    body: impl Fn(&C) -> C,
    init: &C,
    opts: WhileOptions,
) -> Result<C> {
    let carry = init.leaves();
    let limits = Limits {
        check_every: opts.check_every,
        max_iterations: opts.max_iterations,
    };
    let traced = trace_while(
        &|c| Ok(cond(&init.rebuild(c.to_vec()))),
        &|c| Ok(body(&init.rebuild(c.to_vec())).leaves()),
        &carry,
        limits,
    )?;
    Ok(init.rebuild(while_nodes(&traced, &carry)?))
}

/// `jax.lax.cond`: `true_fn(operands)` if `pred` (a bool scalar) holds, else
/// `false_fn(operands)`; both must return trees of the same shapes and dtypes. Outside
/// `vmap`, `jit` and loop bodies (natively) the predicate is read on the host and only the
/// chosen branch runs (and is differentiated), as in JAX. Inside them — where the predicate is a
/// placeholder — and in the browser (no blocking reads there), both branches run and the
/// result is selected, as JAX does under `vmap`:
/// a NaN in the other branch's derivative then reaches the gradient, as with `where`.
///
/// ```
/// use wgrad::prelude::*;
/// let f = |x: &Tensor| cond(&x.sum_all().greater(&Tensor::scalar(0.0)),
///                           |x: &Tensor| x.square(), |x: &Tensor| -x, x);
/// assert_eq!(f(&Tensor::from_vec(vec![2.0f32], [1])).item(), 4.0);
/// assert_eq!(f(&Tensor::from_vec(vec![-2.0f32], [1])).item(), 2.0);
/// // Per example under vmap: both branches, selected.
/// let ys = vmap(f, 0)(&Tensor::from_vec(vec![3.0f32, -1.0], [2, 1]));
/// assert_eq!(ys.to_vec::<f32>(), vec![9.0, 1.0]);
/// ```
#[track_caller]
pub fn cond<A: Tree, O: Tree>(
    pred: &Tensor,
    true_fn: impl Fn(&A) -> O,
    false_fn: impl Fn(&A) -> O,
    operands: &A,
) -> O {
    or_panic(try_cond(pred, true_fn, false_fn, operands))
}

/// Fallible [`cond`]: a predicate that is not a bool scalar, or branches of different
/// structures, shapes or dtypes, are errors.
///
/// ```
/// use wgrad::prelude::*;
/// let e = try_cond(&Tensor::scalar(1.0), |x: &Tensor| x.clone(), |x: &Tensor| x.clone(), &Tensor::ones([2]));
/// assert!(e.is_err()); // f32, not bool
/// ```
pub fn try_cond<A: Tree, O: Tree>(
    pred: &Tensor,
    true_fn: impl Fn(&A) -> O,
    false_fn: impl Fn(&A) -> O,
    operands: &A,
) -> Result<O> {
    if pred.numel() != 1 || pred.dtype() != crate::DType::Bool {
        return transform_err(
            "control flow",
            format!(
                "cond: the predicate must be a bool scalar, got {} of shape {:?}",
                pred.dtype(),
                pred.shape()
            ),
        );
    }
    // In the browser nothing may wait for the device: both branches, selected.
    if !is_staged() && !cfg!(target_arch = "wasm32") {
        return Ok(if pred.try_to_vec::<bool>()?[0] {
            true_fn(operands)
        } else {
            false_fn(operands)
        });
    }
    let (t, f) = (true_fn(operands), false_fn(operands));
    let (tl, fl) = (t.leaves(), f.leaves());
    if tl.len() != fl.len()
        || tl
            .iter()
            .zip(&fl)
            .any(|(a, b)| a.shape() != b.shape() || a.dtype() != b.dtype())
    {
        return transform_err(
            "control flow",
            format!(
                "cond: the branches return different trees: {:?} and {:?}",
                tl.iter().map(|t| t.shape().to_vec()).collect::<Vec<_>>(),
                fl.iter().map(|t| t.shape().to_vec()).collect::<Vec<_>>()
            ),
        );
    }
    let p = pred.try_reshape([])?;
    let out = tl
        .iter()
        .zip(&fl)
        .map(|(a, b)| crate::prim::logic::try_where(&p, a, b))
        .collect::<Result<Vec<_>>>()?;
    Ok(t.rebuild(out))
}
