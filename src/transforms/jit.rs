//! `jit`: trace a function once per input signature and replay its graph.
//!
//! The first call with a given signature (the tree's leaf count and each leaf's shape and
//! dtype) runs the function on placeholders, transforms included (a `grad` inside runs its
//! transform then), and keeps the resulting graph. Later calls copy that graph with the new
//! arguments in place of the placeholders — no tracing, no transform — and the realize that
//! follows finds its plan in the plan cache, so a jitted training step costs a graph copy, a
//! rebind and a submit.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::base::dtype::DType;
use crate::device::Device;
use crate::ir::tensor::Tensor;
use crate::ir::trace::staged;
use crate::tree::Tree;

/// A traced graph: the placeholders it was built on, its outputs, and the output tree.
struct Traced<O> {
    placeholders: Vec<Tensor>,
    outputs: Vec<Tensor>,
    template: O,
}

/// Signatures kept per jitted function (least recently used dropped past this).
const SIGNATURES: usize = 8;

/// What a trace is kept for: the leaves' shapes and dtypes, and the device of the enclosing
/// `with_device` (constants made while tracing are placed on it, so a trace made inside one
/// device's scope cannot serve another's).
type Signature = (Option<Device>, Vec<(Vec<usize>, DType)>);

/// `f`, traced once per input signature and replayed after (JAX's `jax.jit`).
///
/// What the trace freezes: everything that is not a tensor argument. Scalars, random keys and
/// host reads (`item()`, `to_vec()`) inside `f` keep the values they had on the first call;
/// pass what changes as tensor arguments (a learning rate as `Tensor::scalar(lr)`, a key's
/// draws as a tensor). Tensors the closure captures stay what they are (tensors never change
/// value). A new shape or dtype traces again, as does a call inside another device's
/// [`with_device`](crate::with_device) (8 signatures are kept per function).
/// [`crate::optim`] keeps its step count on the host, so jit the loss and its gradient and
/// call `opt.step` outside.
///
/// ```
/// use wgrad::prelude::*;
/// let step = jit(|(w, x, lr): &(Tensor, Tensor, Tensor)| {
///     let g = grad(|w: &Tensor| (x.matmul(w)).square().mean_all())(w);
///     w - g * lr
/// });
/// let x = Tensor::ones([4, 2]);
/// let mut w = Tensor::from_vec(vec![1.0f32, -1.0], [2, 1]);
/// for k in 0..3 {
///     // The second and third calls copy the traced graph instead of running grad again.
///     w = step(&(w, x.clone(), Tensor::scalar(0.1 / (k + 1) as f32)));
/// }
/// assert_eq!(w.shape(), &[2, 1]);
/// ```
pub fn jit<A: Tree, O: Tree>(f: impl Fn(&A) -> O) -> impl Fn(&A) -> O {
    let cache: RefCell<Vec<(Signature, Traced<O>)>> = RefCell::new(vec![]);
    move |args: &A| {
        let leaves = args.leaves();
        let signature: Signature = (
            crate::device::scoped(),
            leaves
                .iter()
                .map(|t| (t.shape().to_vec(), t.dtype()))
                .collect(),
        );
        // The cache is not borrowed while `f` runs (it may call this function again).
        let hit = {
            let mut c = cache.borrow_mut();
            let k = c.iter().position(|(s, _)| *s == signature);
            k.map(|k| c.remove(k))
        };
        let entry = match hit {
            Some(e) => e,
            None => {
                let placeholders: Vec<Tensor> = leaves.iter().map(Tensor::alias).collect();
                let template = staged(|| f(&args.rebuild(placeholders.clone())));
                let outputs = template.leaves();
                (
                    signature,
                    Traced {
                        placeholders,
                        outputs,
                        template,
                    },
                )
            }
        };
        let out =
            entry
                .1
                .template
                .rebuild(replay(&entry.1.placeholders, &entry.1.outputs, &leaves));
        let mut c = cache.borrow_mut();
        c.push(entry);
        let excess = c.len().saturating_sub(SIGNATURES);
        c.drain(..excess);
        out
    }
}

/// A traced graph's `outputs` recomputed from `args` in place of `placeholders`: every node
/// that depends on a placeholder is copied (same op, copied inputs); the rest is shared.
pub(crate) fn replay(placeholders: &[Tensor], outputs: &[Tensor], args: &[Tensor]) -> Vec<Tensor> {
    let mut copy: HashMap<u64, Option<Tensor>> = HashMap::new();
    for (p, a) in placeholders.iter().zip(args) {
        copy.insert(p.id(), Some(a.alias()));
    }
    // Post-order over the outputs' history; `None` marks a node that does not depend on a
    // placeholder (it is shared as it is).
    let mut stack: Vec<(Tensor, bool)> = outputs.iter().map(|o| (o.clone(), false)).collect();
    while let Some((n, expanded)) = stack.pop() {
        if copy.contains_key(&n.id()) {
            continue;
        }
        let inputs = n.inputs();
        if !expanded {
            stack.push((n.clone(), true));
            for x in inputs {
                if !copy.contains_key(&x.id()) {
                    stack.push((x, false));
                }
            }
            continue;
        }
        let replaced: Vec<Option<Tensor>> = inputs
            .iter()
            .map(|x| copy.get(&x.id()).cloned().flatten())
            .collect();
        let new = if replaced.iter().all(Option::is_none) {
            None
        } else {
            let ins: Vec<Tensor> = inputs
                .iter()
                .zip(replaced)
                .map(|(x, r)| r.unwrap_or_else(|| x.clone()))
                .collect();
            Some(n.with_inputs(ins))
        };
        copy.insert(n.id(), new);
    }
    outputs
        .iter()
        .map(|o| {
            copy.get(&o.id())
                .cloned()
                .flatten()
                .unwrap_or_else(|| o.clone())
        })
        .collect()
}
