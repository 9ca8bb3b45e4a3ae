//! `while_loop` as a primitive: the predicate and the step are traced once, on placeholders of
//! the carry, and each leaf of the final carry is a node over the initial carry and the
//! captured tensors, lazy like every other node. The number of steps depends on values, so no
//! kernel computes the node: `realize` runs the loop on the host first ([`run_while`]: the
//! predicate read every `check_every` steps), then plans the rest of the graph with its result
//! as an input. The same node serves outside transforms and inside `vmap`, `jit` and loop
//! bodies, where values are placeholders.
//!
//! Rules build loops in turn. Batching is JAX's: one loop over the whole batch while any
//! example's predicate holds, each example's carry kept as it is once its own predicate
//! fails. JVP is a loop over the carry and its tangent. Reverse mode is refused (the number of
//! steps is not static), as in JAX.

use std::collections::HashMap;
use std::sync::Arc;

use crate::base::dtype::DType;
use crate::base::error::{Result, internal, transform_err};
use crate::base::host::Host;
use crate::control::build::{captured, check_carry, loop_flat};
use crate::ir::control::{While, WhileBody};
use crate::ir::op::{Fusion, Op};
use crate::ir::tensor::Tensor;
use crate::ir::trace::staged;
use crate::prim::logic::{Compare, compare};
use crate::prim::lower::{LowerCx, Lowered};
use crate::prim::{Primitive, with_batch};
use crate::transforms::Caught;
use crate::transforms::jit::replay;
use crate::transforms::jvp::jvp_flat;
use crate::transforms::vmap::vmap_flat;

/// How often the predicate is read and when to give up (see `WhileOptions`).
#[derive(Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) check_every: usize,
    pub(crate) max_iterations: usize,
}

/// Traces `cond` and `body` (flat: the carry's leaves in; a bool scalar, and the new carry's
/// leaves, out) on placeholders of `init`.
pub(crate) fn trace_while(
    cond: &dyn Fn(&[Tensor]) -> Result<Tensor>,
    body: &dyn Fn(&[Tensor]) -> Result<Vec<Tensor>>,
    init: &[Tensor],
    limits: Limits,
) -> Result<Arc<WhileBody>> {
    let placeholders: Vec<Tensor> = init.iter().map(Tensor::alias).collect();
    let (pred, next) =
        staged(|| -> Result<_> { Ok((cond(&placeholders)?, body(&placeholders)?)) })?;
    if pred.numel() != 1 || pred.dtype() != DType::Bool {
        return transform_err(
            "control flow",
            format!(
                "while_loop: cond must return a bool scalar, got {} of shape {:?}",
                pred.dtype(),
                pred.shape()
            ),
        );
    }
    check_carry("while_loop", init, &next)?;
    if next.len() != init.len() {
        return transform_err(
            "control flow",
            format!(
                "while_loop: the body returned a carry of {} leaves for an initial carry of {}",
                next.len(),
                init.len()
            ),
        );
    }
    let mut outputs = vec![pred.try_reshape([])?];
    outputs.extend(next);
    // What the predicate and the step captured become the nodes' inputs.
    let (order, consts) = captured(&outputs, &placeholders);
    let leaves: Vec<Tensor> = placeholders.iter().chain(&consts).cloned().collect();
    let key = crate::ir::graph::body_key(&order, &leaves, &outputs);
    Ok(Arc::new(WhileBody {
        placeholders,
        consts,
        outputs,
        check_every: limits.check_every.max(1),
        max_iterations: limits.max_iterations,
        key,
        run: run_while,
        derived: Default::default(),
    }))
}

/// The loop's nodes over `init` and the captured tensors: one per leaf of the final carry.
pub(crate) fn while_nodes(body: &Arc<WhileBody>, init: &[Tensor]) -> Result<Vec<Tensor>> {
    let inputs: Vec<Tensor> = init.iter().chain(&body.consts).cloned().collect();
    init.iter()
        .enumerate()
        .map(|(leaf, x)| {
            let op = Op::While(While {
                body: body.clone(),
                leaf,
            });
            Tensor::from_op(op, inputs.clone(), x.shape().to_vec(), x.dtype())
        })
        .collect()
}

/// [`trace_while`], then [`while_nodes`].
pub(crate) fn while_flat(
    cond: &dyn Fn(&[Tensor]) -> Result<Tensor>,
    body: &dyn Fn(&[Tensor]) -> Result<Vec<Tensor>>,
    init: &[Tensor],
    limits: Limits,
) -> Result<Vec<Tensor>> {
    while_nodes(&trace_while(cond, body, init, limits)?, init)
}

impl WhileBody {
    fn limits(&self) -> Limits {
        Limits {
            check_every: self.check_every,
            max_iterations: self.max_iterations,
        }
    }
    /// The traced outputs `outs` (some of `self.outputs`) for the carry `c` and captured `k`.
    fn call(&self, c: &[Tensor], k: &[Tensor], outs: std::ops::Range<usize>) -> Vec<Tensor> {
        let keys: Vec<Tensor> = self
            .placeholders
            .iter()
            .chain(&self.consts)
            .cloned()
            .collect();
        let args: Vec<Tensor> = c.iter().chain(k).cloned().collect();
        replay(&keys, &self.outputs[outs], &args)
    }
    fn pred(&self, c: &[Tensor], k: &[Tensor]) -> Tensor {
        self.call(c, k, 0..1).remove(0)
    }
    fn step(&self, c: &[Tensor], k: &[Tensor]) -> Vec<Tensor> {
        self.call(c, k, 1..self.outputs.len())
    }
}

/// Runs the loop on `inputs` (the initial carry, then the captured tensors): the predicate is
/// read on the host every `check_every` steps; between two reads the steps run as one loop
/// node whose steps past the end keep the carry as it is (a select), so the result does not
/// depend on `check_every`. Returns the final carry, realized.
pub(crate) fn run_while(b: &WhileBody, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
    let m = b.carry();
    let (init, k) = inputs.split_at(m);
    let every = b.check_every.max(1);
    let mut c = init.to_vec();
    crate::runtime::read::try_realize(&c)?;
    let mut done = 0usize;
    loop {
        if !b.pred(&c, k).try_to_vec::<bool>()?[0] {
            return Ok(c);
        }
        c = if every == 1 {
            b.step(&c, k)
        } else {
            let guarded = |a: &[Tensor]| -> Vec<Tensor> {
                let go = b.pred(a, k);
                b.step(a, k)
                    .iter()
                    .zip(a)
                    .map(|(s, old)| crate::prim::logic::where_(&go, s, old))
                    .collect()
            };
            loop_flat(&guarded, &c, &[], every, false)?
        };
        crate::runtime::read::try_realize(&c)?;
        done += every;
        if done > b.max_iterations {
            return still_running(b);
        }
    }
}

/// The error of a loop past `WhileOptions::max_iterations` (on the device or in the reference).
fn still_running<T>(b: &WhileBody) -> Result<T> {
    transform_err(
        "control flow",
        format!(
            "while_loop: still running after {} iterations (WhileOptions::max_iterations)",
            b.max_iterations
        ),
    )
}

/// The nodes' ids, as a key.
fn ids(ts: &[Tensor]) -> String {
    ts.iter().map(|t| t.id().to_string() + ",").collect()
}

/// The ids of the tensors present (`_` for none), as a key.
fn ids_of(ts: &[Option<Tensor>]) -> String {
    ts.iter()
        .map(|t| t.as_ref().map_or("_".into(), |t| t.id().to_string()) + ",")
        .collect()
}

/// Whether any element of the bool vector `p` holds, as a bool scalar.
fn any(p: &Tensor) -> Result<Tensor> {
    let most = p.try_cast(DType::F32)?.try_max_all()?;
    compare(Compare::Greater, &most, &Tensor::scalar(0.0))
}

impl Primitive for While {
    fn name(&self) -> &'static str {
        "while_loop"
    }
    fn fusion(&self) -> Fusion {
        Fusion::KernelRoot { epilogue: false }
    }
    fn lower(&self, _: &Tensor, _: &mut LowerCx) -> Result<Lowered> {
        Err(internal(
            "a while_loop node reached lowering (realize runs it on the host first)".into(),
        ))
    }
    /// The loop on the host, with the reference's values of the predicate and the step.
    fn reference(&self, node: &Tensor, x: &[Host]) -> Result<Host> {
        let b = &self.body;
        let m = b.carry();
        let mut carry: Vec<Host> = x[..m].to_vec();
        for _ in 0..=b.max_iterations {
            let mut bound = HashMap::new();
            for (p, v) in b.placeholders.iter().zip(&carry) {
                bound.insert(p.id(), v.clone());
            }
            for (p, v) in b.consts.iter().zip(&x[m..]) {
                bound.insert(p.id(), v.clone());
            }
            let mut outs = crate::runtime::reference::evaluate(&b.outputs, &bound)?;
            if outs[0].data[0] == 0.0 {
                let v = &carry[self.leaf];
                return Ok(Host::new(node.shape(), node.dtype(), v.data.clone()));
            }
            carry = outs.split_off(1);
        }
        still_running(b)
    }
    /// A loop over the carry and the tangents of its float leaves (the predicate reads the
    /// carry only); the output's tangent is the final tangent of its leaf.
    fn jvp(&self, inputs: &[Tensor], out: &Tensor, t: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        let b = self.body.clone();
        let m = b.carry();
        if !out.dtype().is_float() || t.iter().all(Option::is_none) {
            return Ok(None);
        }
        let float: Vec<usize> = (0..m).filter(|&j| inputs[j].dtype().is_float()).collect();
        let consts: Vec<Tensor> = inputs[m..].to_vec();
        let const_t: Vec<Option<Tensor>> = t[m..].to_vec();
        let mut init: Vec<Tensor> = inputs[..m].to_vec();
        for &j in &float {
            init.push(t[j].clone().unwrap_or_else(|| inputs[j].zeros_like()));
        }
        let cond = |a: &[Tensor]| Ok(b.pred(&a[..m], &consts));
        let body = |a: &[Tensor]| -> Result<Vec<Tensor>> {
            let (c, tc) = a.split_at(m);
            let primals: Vec<Tensor> = c.iter().chain(&consts).cloned().collect();
            let mut tangents: Vec<Option<Tensor>> = (0..m)
                .map(|j| float.iter().position(|&f| f == j).map(|p| tc[p].clone()))
                .collect();
            tangents.extend(const_t.iter().cloned());
            let (outs, touts) = jvp_flat(&|p| b.step(&p[..m], &p[m..]), &primals, &tangents, true)?;
            let mut next = outs;
            next.extend(float.iter().map(|&j| touts[j].clone()));
            Ok(next)
        };
        let key = format!("jvp {} {}", ids(inputs), ids_of(t));
        let outs = b.derive(key, || while_flat(&cond, &body, &init, b.limits()))?;
        let at = float
            .iter()
            .position(|&f| f == self.leaf)
            .ok_or_else(|| internal("while_loop: the tangent of an integer leaf".into()))?;
        Ok(Some(outs[m + at].clone()))
    }
    fn vjp(&self, _: &[Tensor], _: &Tensor, _: &Tensor, _: &[bool]) -> Result<Vec<Option<Tensor>>> {
        transform_err(
            "vjp",
            "while_loop: reverse-mode differentiation is not supported (the number of \
             iterations depends on values, as in JAX); use fori_loop or scan with a static \
             count, or forward mode (jvp, jacfwd)",
        )
    }
    /// One loop over the batch while any example's predicate holds; an example whose own
    /// predicate fails keeps its carry from then on (JAX's batching of `while_loop`).
    fn batch(
        &self,
        inputs: &[Tensor],
        _: &Tensor,
        batched: &[bool],
        size: usize,
    ) -> Result<Tensor> {
        let b = self.body.clone();
        let m = b.carry();
        let init: Vec<Tensor> = (0..m)
            .map(|j| with_batch(&inputs[j], batched[j], size))
            .collect::<Result<_>>()?;
        let consts: Vec<Tensor> = inputs[m..].to_vec();
        let in_axes: Vec<Option<isize>> = (0..inputs.len())
            .map(|k| (k < m || batched[k]).then_some(0))
            .collect();
        // Each example's predicate: a bool vector.
        let preds = |a: &[Tensor]| -> Result<Tensor> {
            let args: Vec<Tensor> = a.iter().chain(&consts).cloned().collect();
            let f = |p: &[Tensor]| vec![b.pred(&p[..m], &p[m..])];
            let mut v = vmap_flat(&f, &args, &in_axes, &|k| Ok(vec![Some(0); k]), Some(size))?;
            Ok(v.remove(0))
        };
        let cond = |a: &[Tensor]| any(&preds(a)?);
        let caught = Caught::default();
        let body = |a: &[Tensor]| -> Result<Vec<Tensor>> {
            let go = preds(a)?;
            let args: Vec<Tensor> = a.iter().chain(&consts).cloned().collect();
            let f = caught.wrap(|p: &[Tensor]| Ok(b.step(&p[..m], &p[m..])));
            let next = caught.check(vmap_flat(
                &f,
                &args,
                &in_axes,
                &|k| Ok(vec![Some(0); k]),
                Some(size),
            ))?;
            next.iter()
                .zip(a)
                .map(|(n, old)| {
                    let mut shape = vec![size];
                    shape.extend(std::iter::repeat_n(1, n.rank() - 1));
                    crate::prim::logic::try_where(&go.try_reshape(shape)?, n, old)
                })
                .collect()
        };
        let key = format!("batch {size} {} {batched:?}", ids(inputs));
        let outs = b.derive(key, || while_flat(&cond, &body, &init, b.limits()))?;
        Ok(outs[self.leaf].clone())
    }
}
