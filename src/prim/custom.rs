//! Functions with rules of their own (JAX's `custom_vjp`, `custom_jvp`, `checkpoint`): one
//! node whose value is its first input (the function's output, computed as usual: the node is a
//! view of it, no kernel runs) and whose derivative rules are the user's, or a recomputation.
//!
//! Inputs: `[y, x_0 .. x_n, r_0 .. r_m]`: the output, the function's arguments (flattened
//! tree leaves) and, for `custom_vjp`, the residuals `fwd` saved. Derivatives never flow into
//! `y`'s own graph through this node (its rule replaces them), except where noted.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use crate::base::error::{Result, or_panic};
use crate::ir::op::{Fusion, Op};
use crate::ir::tensor::Tensor;
use crate::prim::Primitive;
use crate::prim::lower::{LowerCx, Lowered};
use crate::transforms::vjp::vjp_flat;
use crate::transforms::vmap::vmap_flat;

/// A flat function of tensors (arguments or residuals, then a cotangent or tangents). Asserted
/// unwind-safe, so that tensors stay `UnwindSafe`: the rules only build graph nodes, and a
/// panic in one leaves nothing of wgrad's half-changed.
#[derive(Clone)]
pub(crate) struct FlatFn(Arc<AssertUnwindSafe<FlatBox>>);

type FlatBox = Box<dyn Fn(&[Tensor]) -> Vec<Tensor> + Send + Sync>;

impl FlatFn {
    pub(crate) fn new(f: impl Fn(&[Tensor]) -> Vec<Tensor> + Send + Sync + 'static) -> FlatFn {
        FlatFn(Arc::new(AssertUnwindSafe(Box::new(f))))
    }
    fn call(&self, a: &[Tensor]) -> Vec<Tensor> {
        (self.0.0)(a)
    }
    fn ptr(&self) -> *const u8 {
        Arc::as_ptr(&self.0) as *const u8
    }
}

/// What the node's derivative is.
#[derive(Clone)]
pub(crate) enum Rule {
    /// `bwd(residuals ++ [cotangent])` gives one cotangent per argument. Forward mode
    /// differentiates the function's own graph (JAX refuses instead).
    Vjp { args: usize, bwd: FlatFn },
    /// `jvp(args ++ tangents)` gives the output tangent (linear in the tangents); reverse mode
    /// transposes it.
    Jvp { args: usize, jvp: FlatFn },
    /// `f(args)` is recomputed in the backward pass instead of keeping its intermediates.
    Remat { args: usize, f: FlatFn },
}

#[derive(Clone)]
pub(crate) struct Custom(pub(crate) Rule);

impl fmt::Debug for Custom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl PartialEq for Custom {
    fn eq(&self, other: &Custom) -> bool {
        let ptr = |r: &Rule| match r {
            Rule::Vjp { bwd, .. } => bwd.ptr(),
            Rule::Jvp { jvp, .. } => jvp.ptr(),
            Rule::Remat { f, .. } => f.ptr(),
        };
        std::ptr::eq(ptr(&self.0), ptr(&other.0))
    }
}

impl Custom {
    fn args(&self) -> usize {
        match &self.0 {
            Rule::Vjp { args, .. } | Rule::Jvp { args, .. } | Rule::Remat { args, .. } => *args,
        }
    }
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

/// Zeros where a tangent is absent, so user rules always see tensors.
fn or_zeros(t: &Option<Tensor>, like: &Tensor) -> Tensor {
    t.clone().unwrap_or_else(|| like.zeros_like())
}

impl Primitive for Custom {
    fn name(&self) -> &'static str {
        match self.0 {
            Rule::Vjp { .. } => "custom_vjp",
            Rule::Jvp { .. } => "custom_jvp",
            Rule::Remat { .. } => "checkpoint",
        }
    }
    fn fusion(&self) -> Fusion {
        Fusion::View
    }
    fn lower(&self, _: &Tensor, cx: &mut LowerCx) -> Result<Lowered> {
        Ok(Lowered::Body(format!("    return {}(i);", cx.arg(0))))
    }
    fn jvp(&self, inputs: &[Tensor], _: &Tensor, t: &[Option<Tensor>]) -> Option<Tensor> {
        let n = self.args();
        match &self.0 {
            // The output's own graph carries the tangent.
            Rule::Vjp { .. } | Rule::Remat { .. } => t[0].clone(),
            Rule::Jvp { jvp, .. } => {
                if t[1..=n].iter().all(Option::is_none) {
                    return None;
                }
                let mut a: Vec<Tensor> = inputs[1..=n].to_vec();
                a.extend((1..=n).map(|k| or_zeros(&t[k], &inputs[k])));
                jvp.call(&a).into_iter().next()
            }
        }
    }
    fn vjp(
        &self,
        inputs: &[Tensor],
        _: &Tensor,
        ct: &Tensor,
        needs: &[bool],
    ) -> Vec<Option<Tensor>> {
        let n = self.args();
        let mut out: Vec<Option<Tensor>> = vec![None; inputs.len()];
        if !needs[1..=n].iter().any(|b| *b) {
            return out;
        }
        let args = &inputs[1..=n];
        let grads: Vec<Tensor> = match &self.0 {
            Rule::Vjp { bwd, .. } => {
                let mut a: Vec<Tensor> = inputs[n + 1..].to_vec();
                a.push(ct.clone());
                bwd.call(&a)
            }
            Rule::Jvp { jvp, .. } => {
                // The tangent map t -> jvp(args, t) is linear: its transpose at ct.
                let jvp = jvp.clone();
                let primals = args.to_vec();
                let f = move |ts: &[Tensor]| {
                    let mut a = primals.clone();
                    a.extend(ts.iter().cloned());
                    jvp.call(&a)
                };
                let zeros: Vec<Tensor> = args.iter().map(Tensor::zeros_like).collect();
                let (_, pb) = vjp_flat(&f, &zeros, true);
                or_panic(pb.call(&[Some(ct.clone())]))
            }
            Rule::Remat { f, .. } => {
                // Recompute the function's graph from its arguments, now, and pull back
                // through the fresh copy.
                let f = f.clone();
                let (_, pb) = vjp_flat(&move |xs: &[Tensor]| f.call(xs), args, true);
                or_panic(pb.call(&[Some(ct.clone())]))
            }
        };
        for (k, g) in grads.into_iter().enumerate().take(n) {
            if needs[1 + k] {
                out[1 + k] = Some(g);
            }
        }
        out
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
                    bwd: FlatFn::new(move |a: &[Tensor]| {
                        or_panic(vmap_flat(
                            &|x| bwd.call(x),
                            a,
                            &in_axes,
                            &|k| Ok(vec![Some(0); k]),
                            Some(size),
                        ))
                    }),
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
                    jvp: FlatFn::new(move |a: &[Tensor]| {
                        let mut a = a.to_vec();
                        for k in 0..args_n {
                            let (x, t) = (&a[k], &a[args_n + k]);
                            let want = if arg_batched[k] {
                                x.shape().to_vec()
                            } else {
                                [&[size][..], x.shape()].concat()
                            };
                            if t.shape() != &want[..] {
                                a[args_n + k] = t.broadcast_to(&want);
                            }
                        }
                        or_panic(vmap_flat(
                            &|x| jvp.call(x),
                            &a,
                            &in_axes,
                            &|k| Ok(vec![Some(0); k]),
                            Some(size),
                        ))
                    }),
                }
            }
            Rule::Remat { args, f } => {
                let in_axes = axes(&batched[1..=n]);
                let f = f.clone();
                Rule::Remat {
                    args: *args,
                    f: FlatFn::new(move |a: &[Tensor]| {
                        or_panic(vmap_flat(
                            &|x| f.call(x),
                            a,
                            &in_axes,
                            &|k| Ok(vec![Some(0); k]),
                            Some(size),
                        ))
                    }),
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
                bin.push(x.broadcast_to([&[size][..], x.shape()].concat()));
            } else {
                bin.push(x.clone());
            }
        }
        let y_b = bin[0].clone();
        custom_node(rule, &y_b, &bin[1..=n], &bin[n + 1..])
    }
}
