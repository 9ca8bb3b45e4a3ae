//! Functions with derivative rules of their own: [`custom_vjp`], [`custom_jvp`] and
//! [`checkpoint`] (JAX's `jax.custom_vjp`, `jax.custom_jvp`, `jax.checkpoint`). Each wraps a
//! function of a tree of tensors returning one tensor; the rule is what every transform uses,
//! at any nesting depth, under `vmap` too.

use std::sync::Arc;

use crate::base::error::or_panic;
use crate::ir::tensor::Tensor;
use crate::prim::custom::{FlatFn, Rule, custom_node};
use crate::transforms::tree::Tree;

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
/// let g = grad(|x: &Tensor| softplus(x).sum(None, false))(&x);
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
        let arg_template = a.rebuild(args.clone());
        let bwd = bwd.clone();
        let flat = move |xs: &[Tensor]| {
            let (rs, ct) = xs.split_at(xs.len() - 1);
            let r = res.rebuild(rs.to_vec());
            let g = bwd(&r, &ct[0]).leaves();
            assert_eq!(
                g.len(),
                arg_template.leaves().len(),
                "custom_vjp: bwd returned {} cotangents for {} argument leaves",
                g.len(),
                arg_template.leaves().len()
            );
            g
        };
        let rule = Rule::Vjp {
            args: args.len(),
            bwd: FlatFn::new(flat),
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
/// let g = grad(|x: &Tensor| (ste_round(x) * x).sum(None, false))(&x);
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
/// let g1 = grad(|x: &Tensor| block(x).sum(None, false))(&x).to_vec::<f32>();
/// let g2 = grad(|x: &Tensor| x.sin().exp().tanh().sum(None, false))(&x).to_vec::<f32>();
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
