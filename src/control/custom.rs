//! Functions with derivative rules of their own: [`custom_vjp`], [`custom_jvp`] and
//! [`checkpoint`] (JAX's `jax.custom_vjp`, `jax.custom_jvp`, `jax.checkpoint`). Each wraps a
//! function of a tree of tensors returning one tensor; the rule is what every transform uses,
//! at any nesting depth, under `vmap` too.
//!
//! The primitive: one node whose value is its first input (the function's output, computed as
//! usual: the node is a view of it, no kernel runs) and whose derivative rules are the user's,
//! or a recomputation. Inputs: `[y, x_0 .. x_n, r_0 .. r_m]`: the output, the function's
//! arguments (flattened tree leaves) and, for `custom_vjp`, the residuals `fwd` saved.
//! Derivatives never flow into `y`'s own graph through this node (its rule replaces them),
//! except where noted.

use std::sync::Arc;

use crate::base::error::{Result, or_panic};
use crate::base::host::Host;
use crate::ir::control::{Custom, FlatFn, Rule};
use crate::ir::op::{Fusion, Op};
use crate::ir::tensor::Tensor;
use crate::prim::Primitive;
use crate::prim::lower::{LowerCx, Lowered};
use crate::transforms::Caught;
use crate::transforms::vjp::vjp_flat;
use crate::transforms::vmap::vmap_flat;
use crate::tree::Tree;

/// A function whose reverse-mode derivative is yours: `fwd(args)` returns the output and the
/// residuals it wants kept (any tree), `bwd(residuals, cotangent)` returns the cotangents of
/// the arguments (a tree like them). The output's value is `fwd`'s. Forward mode (`jvp`,
/// `jacfwd`) differentiates `fwd`'s own computation (JAX refuses forward mode here).
///
/// A numerically stable `log(1 + e^x)`, whose autodiff would give `inf / inf` for large `x`:
///
/// ```
/// use wgrad::prelude::*;
/// let softplus = custom_vjp(
///     |x: &Tensor| {
///         let y = x.relu() + (-x.abs()).exp().log1p();
///         (y, x.sigmoid())                        // keep sigmoid(x) for the backward pass
///     },
///     |s: &Tensor, ct: &Tensor| ct * s,             // d/dx = sigmoid(x)
/// );
/// let x = Tensor::from_vec(vec![-100.0f32, 0.0, 100.0], [3]);
/// let y = softplus(&x).to_vec::<f32>();
/// assert!(y[0] < 1e-40 && (y[1] - 2f32.ln()).abs() < 1e-7 && y[2] == 100.0);
/// let g = grad(|x: &Tensor| softplus(x).sum_all())(&x);
/// assert_eq!(&g.to_vec::<f32>()[1..], &[0.5, 1.0]); // and sigmoid(-100) = 3.8e-44
/// ```
pub fn custom_vjp<A, R, Fwd, Bwd>(fwd: Fwd, bwd: Bwd) -> impl Fn(&A) -> Tensor
where
    A: Tree + Send + Sync + 'static,
    R: Tree + Send + Sync + 'static,
    Fwd: Fn(&A) -> (Tensor, R),
    Bwd: Fn(&R, &Tensor) -> A + Send + Sync + 'static,
{
    let bwd = Arc::new(bwd);
    move |a: &A| {
        let args = a.leaves();
        let (y, res) = fwd(a);
        let residuals = res.leaves();
        let mut outs = vec![y.clone()];
        outs.extend(residuals.iter().cloned());
        or_panic(refuse_closures("custom_vjp", &outs, &args));
        let arg_template = a.rebuild(args.clone());
        let bwd = bwd.clone();
        let flat = move |xs: &[Tensor]| {
            let (rs, ct) = xs.split_at(xs.len() - 1);
            let r = res.rebuild(rs.to_vec());
            let g = bwd(&r, &ct[0]).leaves();
            let want = arg_template.leaves().len();
            if g.len() != want {
                return crate::base::error::transform_err(
                    "custom_vjp",
                    format!(
                        "bwd returned {} cotangents for {want} argument leaves",
                        g.len()
                    ),
                );
            }
            Ok(g)
        };
        let rule = Rule::Vjp {
            args: args.len(),
            bwd: FlatFn::fallible(flat),
        };
        or_panic(custom_node(rule, &y, &args, &residuals))
    }
}

/// A function whose forward-mode derivative is yours: `jvp(primals, tangents)` returns the
/// output's tangent and must be linear in the tangents (a tangent the caller does not vary is
/// zeros). Reverse mode transposes it, so `grad` uses it too; the value is `f`'s.
///
/// A straight-through estimator: `round` forward, the identity's derivative backward.
///
/// ```
/// use wgrad::prelude::*;
/// let ste_round = custom_jvp(|x: &Tensor| x.round(), |_x: &Tensor, t: &Tensor| t.clone());
/// let x = Tensor::from_vec(vec![0.4f32, 1.6], [2]);
/// assert_eq!(ste_round(&x).to_vec::<f32>(), vec![0.0, 2.0]);
/// let g = grad(|x: &Tensor| (ste_round(x) * x).sum_all())(&x);
/// assert_eq!(g.to_vec::<f32>(), vec![0.4, 3.6]); // x + round(x)
/// ```
pub fn custom_jvp<A, F, J>(f: F, jvp: J) -> impl Fn(&A) -> Tensor
where
    A: Tree + Send + Sync + 'static,
    F: Fn(&A) -> Tensor,
    J: Fn(&A, &A) -> Tensor + Send + Sync + 'static,
{
    let jvp = Arc::new(jvp);
    move |a: &A| {
        let args = a.leaves();
        let y = f(a);
        or_panic(refuse_closures(
            "custom_jvp",
            std::slice::from_ref(&y),
            &args,
        ));
        let n = args.len();
        let template = a.rebuild(args.clone());
        let jvp = jvp.clone();
        let flat = move |xs: &[Tensor]| {
            let p = template.rebuild(xs[..n].to_vec());
            let t = template.rebuild(xs[n..].to_vec());
            vec![jvp(&p, &t)]
        };
        let rule = Rule::Jvp {
            args: n,
            jvp: FlatFn::new(flat),
        };
        or_panic(custom_node(rule, &y, &args, &[]))
    }
}

/// `f` with its intermediates recomputed in the backward pass instead of kept
/// (`jax.checkpoint`, "remat"): reverse mode runs `f` again from its arguments, trading
/// compute for memory. Values and derivatives are the same as `f`'s.
///
/// ```
/// use wgrad::prelude::*;
/// let block = checkpoint(|x: &Tensor| x.sin().exp().tanh());
/// let x = Tensor::from_vec(vec![0.3f32, -1.2], [2]);
/// let g1 = grad(|x: &Tensor| block(x).sum_all())(&x).to_vec::<f32>();
/// let g2 = grad(|x: &Tensor| x.sin().exp().tanh().sum_all())(&x).to_vec::<f32>();
/// assert!(g1.iter().zip(&g2).all(|(a, b)| (a - b).abs() < 1e-6));
/// ```
pub fn checkpoint<A, F>(f: F) -> impl Fn(&A) -> Tensor
where
    A: Tree + Send + Sync + 'static,
    F: Fn(&A) -> Tensor + Send + Sync + 'static,
{
    let f = Arc::new(f);
    move |a: &A| {
        let args = a.leaves();
        let y = f(a);
        or_panic(refuse_closures(
            "checkpoint",
            std::slice::from_ref(&y),
            &args,
        ));
        let template = a.rebuild(args.clone());
        let f = f.clone();
        let flat = move |xs: &[Tensor]| vec![f(&template.rebuild(xs.to_vec()))];
        let rule = Rule::Remat {
            args: args.len(),
            f: FlatFn::new(flat),
        };
        or_panic(custom_node(rule, &y, &args, &[]))
    }
}

/// An error when `outs` (a custom function's output and residuals) depend, other than through
/// its `args`, on a tensor an enclosing transform differentiates: the rule would lose that
/// derivative (a silent zero; JAX raises `UnexpectedTracerError`), so the function must take
/// the tensor as an argument.
fn refuse_closures(kind: &'static str, outs: &[Tensor], args: &[Tensor]) -> Result<()> {
    if !crate::ir::trace::differentiating_any() {
        return Ok(());
    }
    let stop: std::collections::HashSet<u64> = args.iter().map(Tensor::id).collect();
    let mut seen = std::collections::HashSet::new();
    let mut stack = outs.to_vec();
    while let Some(n) = stack.pop() {
        if !seen.insert(n.id()) || stop.contains(&n.id()) {
            continue;
        }
        if crate::ir::trace::differentiated_leaf(n.id()) {
            return crate::base::error::transform_err(
                kind,
                format!(
                    "the function closes over a tensor of shape {:?} that an enclosing grad, jvp \
                     or vjp differentiates, whose derivative its rule would lose; pass that \
                     tensor as an argument instead",
                    n.shape()
                ),
            );
        }
        if !n.is_realized() {
            stack.extend(n.inputs());
        }
    }
    Ok(())
}

/// The node `y` with rule `rule` over `args` (and `residuals`).
pub(crate) fn custom_node(
    rule: Rule,
    y: &Tensor,
    args: &[Tensor],
    residuals: &[Tensor],
) -> Result<Tensor> {
    let mut inputs = Vec::with_capacity(1 + args.len() + residuals.len());
    inputs.push(y.clone());
    inputs.extend(args.iter().cloned());
    inputs.extend(residuals.iter().cloned());
    Tensor::from_op(
        Op::Custom(Custom(rule)),
        inputs,
        y.shape().to_vec(),
        y.dtype(),
    )
}

/// `f` run per example over `a` (batched along axis 0 where `in_axes` says), its results
/// batched along axis 0; an error of `f` is returned.
fn per_example(
    f: &FlatFn,
    a: &[Tensor],
    in_axes: &[Option<isize>],
    size: usize,
) -> Result<Vec<Tensor>> {
    let caught = Caught::default();
    let g = caught.wrap(|x| f.call(x));
    caught.check(vmap_flat(
        &g,
        a,
        in_axes,
        &|k| Ok(vec![Some(0); k]),
        Some(size),
    ))
}

/// Zeros where a tangent is absent, so user rules always see tensors.
fn or_zeros(t: &Option<Tensor>, like: &Tensor) -> Tensor {
    t.clone().unwrap_or_else(|| like.zeros_like())
}

impl Primitive for Custom {
    fn name(&self) -> &'static str {
        self.kind()
    }
    fn fusion(&self) -> Fusion {
        Fusion::View
    }
    fn lower(&self, _: &Tensor, cx: &mut LowerCx) -> Result<Lowered> {
        Ok(Lowered::Body(format!("    return {}(i);", cx.arg(0))))
    }
    /// The function's own value (input 0); its rules matter only to the transforms.
    fn reference(&self, _: &Tensor, x: &[Host]) -> Result<Host> {
        Ok(x[0].clone())
    }
    fn jvp(&self, inputs: &[Tensor], _: &Tensor, t: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        let n = self.args();
        match &self.0 {
            // The output's own graph carries the tangent.
            Rule::Vjp { .. } | Rule::Remat { .. } => Ok(t[0].clone()),
            Rule::Jvp { jvp, .. } => {
                if t[1..=n].iter().all(Option::is_none) {
                    return Ok(None);
                }
                let mut a: Vec<Tensor> = inputs[1..=n].to_vec();
                a.extend((1..=n).map(|k| or_zeros(&t[k], &inputs[k])));
                Ok(jvp.call(&a)?.into_iter().next())
            }
        }
    }
    fn vjp(
        &self,
        inputs: &[Tensor],
        _: &Tensor,
        ct: &Tensor,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let n = self.args();
        let mut out: Vec<Option<Tensor>> = vec![None; inputs.len()];
        if !needs[1..=n].iter().any(|b| *b) {
            return Ok(out);
        }
        let args = &inputs[1..=n];
        let grads: Vec<Tensor> = match &self.0 {
            Rule::Vjp { bwd, .. } => {
                let mut a: Vec<Tensor> = inputs[n + 1..].to_vec();
                a.push(ct.clone());
                bwd.call(&a)?
            }
            Rule::Jvp { jvp, .. } => {
                // The tangent map t -> jvp(args, t) is linear: its transpose at ct.
                let jvp = jvp.clone();
                let primals = args.to_vec();
                let caught = Caught::default();
                let f = caught.wrap(move |ts: &[Tensor]| {
                    let mut a = primals.clone();
                    a.extend(ts.iter().cloned());
                    jvp.call(&a)
                });
                let zeros: Vec<Tensor> = args.iter().map(Tensor::zeros_like).collect();
                let (_, pb) = vjp_flat(&f, &zeros, true);
                caught.check(pb.call(&[Some(ct.clone())]))?
            }
            Rule::Remat { f, .. } => {
                // Recompute the function's graph from its arguments, now, and pull back
                // through the fresh copy.
                let f = f.clone();
                let caught = Caught::default();
                let (_, pb) = vjp_flat(&caught.wrap(move |xs: &[Tensor]| f.call(xs)), args, true);
                caught.check(pb.call(&[Some(ct.clone())]))?
            }
        };
        for (k, g) in grads.into_iter().enumerate().take(n) {
            if needs[1 + k] {
                out[1 + k] = Some(g);
            }
        }
        Ok(out)
    }
    fn batch(
        &self,
        inputs: &[Tensor],
        _: &Tensor,
        batched: &[bool],
        size: usize,
    ) -> Result<Tensor> {
        let n = self.args();
        let axes = |flags: &[bool]| -> Vec<Option<isize>> {
            flags.iter().map(|b| b.then_some(0)).collect()
        };
        let y = &inputs[0];
        let rule = match &self.0 {
            Rule::Vjp { args, bwd } => {
                // bwd per example: residuals as batched as they came, the cotangent batched.
                let mut in_axes = axes(&batched[n + 1..]);
                in_axes.push(Some(0));
                let bwd = bwd.clone();
                Rule::Vjp {
                    args: *args,
                    bwd: FlatFn::fallible(move |a: &[Tensor]| per_example(&bwd, a, &in_axes, size)),
                }
            }
            Rule::Jvp { args, jvp } => {
                // Tangents arrive batched or not: broadcast them so that every one is.
                let mut in_axes = axes(&batched[1..=n]);
                in_axes.extend(std::iter::repeat_n(Some(0), n));
                let jvp = jvp.clone();
                let arg_batched: Vec<bool> = batched[1..=n].to_vec();
                let args_n = *args;
                Rule::Jvp {
                    args: *args,
                    jvp: FlatFn::fallible(move |a: &[Tensor]| {
                        let mut a = a.to_vec();
                        for k in 0..args_n {
                            let (x, t) = (&a[k], &a[args_n + k]);
                            let want = if arg_batched[k] {
                                x.shape().to_vec()
                            } else {
                                [&[size][..], x.shape()].concat()
                            };
                            if t.shape() != &want[..] {
                                a[args_n + k] = t.try_broadcast_to(&want)?;
                            }
                        }
                        per_example(&jvp, &a, &in_axes, size)
                    }),
                }
            }
            Rule::Remat { args, f } => {
                let in_axes = axes(&batched[1..=n]);
                let f = f.clone();
                Rule::Remat {
                    args: *args,
                    f: FlatFn::fallible(move |a: &[Tensor]| per_example(&f, a, &in_axes, size)),
                }
            }
        };
        // Every input batched (an unbatched residual or argument is broadcast), so the
        // rules above see what they expect.
        let mut bin = Vec::with_capacity(inputs.len());
        for (x, b) in inputs.iter().zip(batched) {
            if *b {
                bin.push(x.clone());
            } else if std::ptr::eq(x, y) {
                bin.push(x.try_broadcast_to([&[size][..], x.shape()].concat())?);
            } else {
                bin.push(x.clone());
            }
        }
        let y_b = bin[0].clone();
        custom_node(rule, &y_b, &bin[1..=n], &bin[n + 1..])
    }
}
