//! The data of the higher-order primitives, whose `Op` variants live here while their
//! lowering and rules (which call the transforms) live in `crate::control`: a loop's traced
//! body ([`Loop`]) and a function with rules of its own ([`Custom`]).

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use crate::base::error::Result;
use crate::ir::tensor::Tensor;

/// A traced loop body.
pub(crate) struct LoopBody {
    /// The carry's leaves, then one step's slices of `xs`.
    pub(crate) placeholders: Vec<Tensor>,
    pub(crate) carry: usize,
    /// Tensors the body captured, as traced: the node's inputs after `init` and `xs` take
    /// their place.
    pub(crate) consts: Vec<Tensor>,
    /// The new carry's leaves, then the step's outputs.
    pub(crate) outputs: Vec<Tensor>,
    /// The body's nodes that depend on a placeholder, inputs first.
    pub(crate) order: Vec<Tensor>,
    pub(crate) steps: usize,
    pub(crate) reverse: bool,
    /// The body's structure and values (see `body_key`).
    pub(crate) key: String,
}

impl LoopBody {
    pub(crate) fn counts(&self) -> (usize, usize, usize) {
        (
            self.carry,
            self.placeholders.len() - self.carry,
            self.consts.len(),
        )
    }
    /// The packed value's pieces: each final carry's shape, then each stacked output's.
    pub(crate) fn pieces(&self) -> Vec<Vec<usize>> {
        self.outputs
            .iter()
            .enumerate()
            .map(|(k, o)| {
                if k < self.carry {
                    o.shape().to_vec()
                } else {
                    [&[self.steps][..], o.shape()].concat()
                }
            })
            .collect()
    }
}

/// The loop primitive (see the module's documentation).
#[derive(Clone)]
pub(crate) struct Loop(pub(crate) Arc<LoopBody>);

impl fmt::Debug for Loop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "loop[steps={},reverse={},carry={}]{{{}}}",
            b.steps, b.reverse, b.carry, b.key
        )
    }
}

impl PartialEq for Loop {
    fn eq(&self, other: &Loop) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Loop {
    /// Whether this loop's body is `other`'s with outputs added after its own.
    pub(crate) fn prefix_of(&self, other: &Loop) -> bool {
        let (a, b) = (&self.0, &other.0);
        !Arc::ptr_eq(a, b)
            && a.steps == b.steps
            && a.reverse == b.reverse
            && a.carry == b.carry
            && a.outputs.len() < b.outputs.len()
            && b.key.starts_with(&a.key)
    }
    pub(crate) fn describe(&self) -> String {
        format!(
            "loop[steps={}, carry={}, body={} nodes{}]",
            self.0.steps,
            self.0.carry,
            self.0.order.len(),
            if self.0.reverse { ", reverse" } else { "" }
        )
    }
}

/// A traced `while_loop`: the predicate and the step on placeholders of the carry, with the
/// tensors they captured. Its nodes (one per carry leaf, sharing the body) are run on the host
/// by `realize` before the rest of the graph is planned: the number of steps depends on values.
pub(crate) struct WhileBody {
    /// The carry's leaves.
    pub(crate) placeholders: Vec<Tensor>,
    /// Tensors the predicate or the step captured, as traced: the nodes' inputs after the
    /// initial carry.
    pub(crate) consts: Vec<Tensor>,
    /// The predicate (a bool scalar), then the new carry's leaves.
    pub(crate) outputs: Vec<Tensor>,
    /// Steps between two reads of the predicate (see `WhileOptions`).
    pub(crate) check_every: usize,
    /// An error past this many steps.
    pub(crate) max_iterations: usize,
    /// The body's structure and values (see `body_key`): two nodes with the same key and the
    /// same inputs compute the same carry.
    pub(crate) key: String,
    /// Runs the loop on concrete inputs (the initial carry, then the captured tensors) and
    /// returns the final carry's leaves, realized (set by `crate::control`, which sits above
    /// the runtime that calls it).
    pub(crate) run: fn(&WhileBody, &[Tensor]) -> Result<Vec<Tensor>>,
    /// Loops the rules built from this one (a JVP, a batched loop), by what they were built
    /// from, so that the rules of its several leaves share one loop (the last few kept).
    pub(crate) derived: Mutex<Vec<(String, Vec<Tensor>)>>,
}

impl WhileBody {
    /// The number of carry leaves.
    pub(crate) fn carry(&self) -> usize {
        self.placeholders.len()
    }
    /// The loop `build` makes, or the one it made before for the same `key`.
    pub(crate) fn derive(
        &self,
        key: String,
        build: impl FnOnce() -> Result<Vec<Tensor>>,
    ) -> Result<Vec<Tensor>> {
        let memo = self.derived.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, out)) = memo.iter().find(|(k, _)| *k == key) {
            return Ok(out.clone());
        }
        // Not held while `build` traces (it may derive from other loops).
        drop(memo);
        let out = build()?;
        let mut memo = self.derived.lock().unwrap_or_else(|e| e.into_inner());
        if memo.len() >= DERIVED_KEPT {
            memo.remove(0);
        }
        memo.push((key, out.clone()));
        Ok(out)
    }
}

/// Derived loops a loop keeps (a JVP and a batched form, and a few more for nesting).
const DERIVED_KEPT: usize = 4;

/// The `while_loop` primitive's node: leaf `leaf` of the final carry.
#[derive(Clone)]
pub(crate) struct While {
    pub(crate) body: Arc<WhileBody>,
    pub(crate) leaf: usize,
}

impl fmt::Debug for While {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "while[carry={},leaf={}]{{{}}}",
            self.body.carry(),
            self.leaf,
            self.body.key
        )
    }
}

impl PartialEq for While {
    fn eq(&self, other: &While) -> bool {
        Arc::ptr_eq(&self.body, &other.body) && self.leaf == other.leaf
    }
}

impl While {
    /// Whether `other` is a node of the same loop (the same body, or an equal one) over the
    /// same inputs, so one run of the loop gives both their values.
    pub(crate) fn same_loop(&self, node: &Tensor, other: &Tensor) -> bool {
        let crate::ir::op::Op::While(w) = other.op() else {
            return false;
        };
        let (a, b) = (node.inputs(), other.inputs());
        (Arc::ptr_eq(&self.body, &w.body) || self.body.key == w.body.key)
            && a.len() == b.len()
            && a.iter().zip(&b).all(|(x, y)| x.same(y))
    }
}

/// A flat function of tensors (arguments or residuals, then a cotangent or tangents). Asserted
/// unwind-safe, so that tensors stay `UnwindSafe`: the rules only build graph nodes, and a
/// panic in one leaves nothing of wgrad's half-changed.
#[derive(Clone)]
pub(crate) struct FlatFn(Arc<AssertUnwindSafe<FlatBox>>);

type FlatBox = Box<dyn Fn(&[Tensor]) -> Result<Vec<Tensor>> + Send + Sync>;

impl FlatFn {
    /// A function that cannot fail (a user's rule: its own panics are its own).
    pub(crate) fn new(f: impl Fn(&[Tensor]) -> Vec<Tensor> + Send + Sync + 'static) -> FlatFn {
        FlatFn::fallible(move |a| Ok(f(a)))
    }
    /// A function whose errors the rule that calls it returns.
    pub(crate) fn fallible(
        f: impl Fn(&[Tensor]) -> Result<Vec<Tensor>> + Send + Sync + 'static,
    ) -> FlatFn {
        FlatFn(Arc::new(AssertUnwindSafe(Box::new(f))))
    }
    pub(crate) fn call(&self, a: &[Tensor]) -> Result<Vec<Tensor>> {
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
        f.write_str(self.kind())
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
    /// `custom_vjp`, `custom_jvp` or `checkpoint`.
    pub(crate) fn kind(&self) -> &'static str {
        match self.0 {
            Rule::Vjp { .. } => "custom_vjp",
            Rule::Jvp { .. } => "custom_jvp",
            Rule::Remat { .. } => "checkpoint",
        }
    }
    pub(crate) fn args(&self) -> usize {
        match &self.0 {
            Rule::Vjp { args, .. } | Rule::Jvp { args, .. } | Rule::Remat { args, .. } => *args,
        }
    }
}
