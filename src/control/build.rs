//! Building a loop node: trace the body once on placeholders, move what does not depend on
//! the carry out of the loop (before it, or after it), and make the node — or unroll the body
//! when its results cannot share one packed buffer.

use std::collections::HashSet;
use std::sync::Arc;

use crate::base::error::{Result, transform_err};
use crate::ir::control::{Loop, LoopBody};
use crate::ir::graph::between;
use crate::ir::op::{Fusion, Op};
use crate::ir::tensor::Tensor;
use crate::ir::trace::staged;
use crate::transforms::jit::replay;
use crate::transforms::vmap::vmap_flat;

impl LoopBody {
    /// The body's outputs from `args`: carry, slices, captured tensors.
    pub(crate) fn run(&self, args: &[Tensor]) -> Vec<Tensor> {
        let keys: Vec<Tensor> = self
            .placeholders
            .iter()
            .chain(&self.consts)
            .cloned()
            .collect();
        replay(&keys, &self.outputs, args)
    }
}

/// `f` (flat: carry leaves and one step's slices in; new carry leaves and the step's outputs
/// out) run over the leading axis of `xs` (length `steps`) from `init`, backwards when
/// `reverse`. Returns the final carry's leaves, then each output stacked along a new leading
/// axis (in index order). `f` is traced once.
pub(crate) fn loop_flat(
    f: &dyn Fn(&[Tensor]) -> Vec<Tensor>,
    init: &[Tensor],
    xs: &[Tensor],
    steps: usize,
    reverse: bool,
) -> Result<Vec<Tensor>> {
    let x0: Vec<Tensor> = xs
        .iter()
        .map(|s| {
            if steps > 0 {
                s.try_index(if reverse { steps as isize - 1 } else { 0 })
            } else {
                Tensor::try_full(&s.shape()[1..], 0.0, s.dtype())
            }
        })
        .collect::<Result<_>>()?;
    let placeholders: Vec<Tensor> = init.iter().chain(&x0).map(Tensor::alias).collect();
    let outputs = staged(|| f(&placeholders));
    check_carry("scan", init, &outputs)?;
    let m = init.len();
    if steps == 0 {
        let mut out = init.to_vec();
        for y in &outputs[m..] {
            out.push(Tensor::try_full(
                [&[0][..], y.shape()].concat(),
                0.0,
                y.dtype(),
            )?);
        }
        return Ok(out);
    }
    let traced = Traced {
        placeholders,
        outputs,
        init,
        xs,
        steps,
        reverse,
    };
    if crate::base::policy::policy().loops && steps > 1 {
        if let Some(out) = hoist(&traced)? {
            return Ok(out);
        }
        if let Some(out) = sink(&traced)? {
            return Ok(out);
        }
    }
    build(&traced)
}

/// A traced loop body (placeholders: the carry's, then the slices'), and what it runs over.
struct Traced<'a> {
    placeholders: Vec<Tensor>,
    outputs: Vec<Tensor>,
    init: &'a [Tensor],
    xs: &'a [Tensor],
    steps: usize,
    reverse: bool,
}

/// The tensors of `candidates` that `keep` accepts, each once, in first-seen order.
fn distinct(
    candidates: impl Iterator<Item = Tensor>,
    keep: impl Fn(&Tensor) -> bool,
) -> Vec<Tensor> {
    let mut seen = HashSet::new();
    candidates
        .filter(|x| keep(x) && seen.insert(x.id()))
        .collect()
}

/// `values` (a traced graph over `keys`) for every step at once: vmapped over the leading
/// axis of `stacked`, one stack per key.
fn every_step(
    keys: &[Tensor],
    values: &[Tensor],
    stacked: &[Tensor],
    steps: usize,
) -> Result<Vec<Tensor>> {
    vmap_flat(
        &|a| replay(keys, values, a),
        stacked,
        &vec![Some(0); stacked.len()],
        &|k| Ok(vec![Some(0); k]),
        Some(steps),
    )
}

/// A traced body's nodes that depend on a placeholder (inputs first), and the tensors it
/// captured: inputs of those nodes (and outputs) that depend on no placeholder, each once.
pub(crate) fn captured(outputs: &[Tensor], placeholders: &[Tensor]) -> (Vec<Tensor>, Vec<Tensor>) {
    let (order, depends) = between(outputs, placeholders);
    let reads = order
        .iter()
        .flat_map(|n| n.inputs())
        .chain(outputs.iter().cloned());
    let consts = distinct(reads, |x| !depends.contains(&x.id()));
    (order, consts)
}

/// Whether moving `n` out of a loop saves work (views and index maps cost nothing).
fn computes(n: &Tensor) -> bool {
    !matches!(n.op().fusion(), Fusion::View | Fusion::IndexMap)
}

/// Stacked per-step values of at most this many bytes are kept to take work out of a loop.
pub(crate) const MOTION_BYTES: usize = 256 << 20;

pub(crate) fn stacked_bytes(ts: &[Tensor], steps: usize) -> usize {
    ts.iter()
        .map(|t| t.numel() * t.dtype().size() * steps)
        .sum()
}

/// Loop-invariant code motion for slices: the part of the body that depends on the slices
/// but not on the carry (an RNN's input projection, say) is computed for every step at once
/// before the loop (vmapped over the steps), and the loop reads its results as slices.
fn hoist(t: &Traced) -> Result<Option<Vec<Tensor>>> {
    let (placeholders, outputs) = (&t.placeholders[..], &t.outputs[..]);
    let (init, xs, steps, reverse) = (t.init, t.xs, t.steps, t.reverse);
    let m = init.len();
    let (carry_p, slice_p) = placeholders.split_at(m);
    let (order, depends) = between(outputs, placeholders);
    let (_, on_carry) = between(outputs, carry_p);
    // The slice-only values that carry-dependent nodes (or the outputs) read.
    let slice_only = |x: &Tensor| depends.contains(&x.id()) && !on_carry.contains(&x.id());
    let reads = order
        .iter()
        .filter(|n| on_carry.contains(&n.id()))
        .flat_map(|n| n.inputs())
        .chain(outputs.iter().cloned());
    let frontier = distinct(reads, slice_only);
    let work = order.iter().any(|n| slice_only(n) && computes(n));
    if !work || stacked_bytes(&frontier, steps) > MOTION_BYTES {
        return Ok(None);
    }
    let stacked = every_step(slice_p, &frontier, xs, steps)?;
    let keys: Vec<Tensor> = carry_p.iter().chain(&frontier).cloned().collect();
    let body = |a: &[Tensor]| replay(&keys, outputs, a);
    loop_flat(&body, init, &stacked, steps, reverse).map(Some)
}

/// The converse: the part of the body that only the step's outputs need (not the new carry)
/// is computed after the loop for every step at once (vmapped), from the values it reads,
/// which the loop stacks instead (a slice it reads is `xs` itself).
fn sink(t: &Traced) -> Result<Option<Vec<Tensor>>> {
    let (placeholders, outputs) = (&t.placeholders[..], &t.outputs[..]);
    let (init, xs, steps, reverse) = (t.init, t.xs, t.steps, t.reverse);
    let m = init.len();
    let (order, depends) = between(outputs, placeholders);
    let (carry_order, _) = between(&outputs[..m], placeholders);
    let for_carry: HashSet<u64> = carry_order.iter().map(|t| t.id()).collect();
    let late: HashSet<u64> = order
        .iter()
        .filter(|n| !for_carry.contains(&n.id()))
        .map(|n| n.id())
        .collect();
    if !order.iter().any(|n| late.contains(&n.id()) && computes(n)) {
        return Ok(None);
    }
    // What the late part reads from the loop (or the outputs that are not late).
    let candidates = order
        .iter()
        .filter(|n| late.contains(&n.id()))
        .flat_map(|n| n.inputs())
        .chain(outputs[m..].iter().cloned());
    let reads = distinct(candidates, |x| {
        depends.contains(&x.id()) && !late.contains(&x.id())
    });
    // A slice (or a view of one: a reshape, an alias) is stacked already: `xs` itself.
    let slice_of = |x: &Tensor| {
        let mut cur = x.clone();
        loop {
            if let Some(i) = placeholders[m..].iter().position(|p| p.same(&cur)) {
                return Some(i);
            }
            if cur.op().fusion() != Fusion::View {
                return None;
            }
            cur = cur.inputs().into_iter().next()?;
        }
    };
    let per_step: Vec<Tensor> = reads
        .iter()
        .filter(|x| slice_of(x).is_none())
        .cloned()
        .collect();
    if stacked_bytes(&per_step, steps) > MOTION_BYTES {
        return Ok(None);
    }
    let mut loop_outputs: Vec<Tensor> = outputs[..m].to_vec();
    loop_outputs.extend(per_step.iter().cloned());
    let body = |a: &[Tensor]| replay(placeholders, &loop_outputs, a);
    let inner = loop_flat(&body, init, xs, steps, reverse)?;
    let mut stacked_of = inner[m..].iter();
    let stacked: Vec<Tensor> = reads
        .iter()
        .map(|x| match slice_of(x) {
            Some(i) => xs[i].try_reshape([&[steps][..], x.shape()].concat()),
            None => stacked_of
                .next()
                .cloned()
                .ok_or_else(|| crate::base::error::internal("a sunk value lost its stack".into())),
        })
        .collect::<Result<_>>()?;
    let ys = every_step(&reads, &outputs[m..], &stacked, steps)?;
    let mut out = inner[..m].to_vec();
    out.extend(ys);
    Ok(Some(out))
}

/// The loop node for a traced body (or the body unrolled, where its results cannot share one
/// packed buffer).
fn build(t: &Traced) -> Result<Vec<Tensor>> {
    let (placeholders, outputs) = (t.placeholders.clone(), t.outputs.clone());
    let (init, xs, steps, reverse) = (t.init, t.xs, t.steps, t.reverse);
    let m = init.len();
    let (order, consts) = captured(&outputs, &placeholders);
    let dtype = outputs.first().map(|o| o.dtype());
    // A while_loop in the body runs on the host (see `while_node`): the body is copied per
    // step instead, so each step's loop runs on its own values.
    let host_loop = order.iter().any(|n| matches!(n.op(), Op::While(_)));
    let packable = crate::base::policy::policy().loops
        && !host_loop
        && dtype.is_some_and(|d| d.size() == 4 && outputs.iter().all(|o| o.dtype() == d))
        && placeholders[m..]
            .iter()
            .all(|x| (x.numel() * x.dtype().size()) % 4 == 0);
    let (Some(dtype), true) = (dtype, packable) else {
        return unrolled(&placeholders, &outputs, init, xs, steps, reverse);
    };
    let leaves: Vec<Tensor> = placeholders.iter().chain(&consts).cloned().collect();
    let key = crate::ir::graph::body_key(&order, &leaves, &outputs);
    let body = Arc::new(LoopBody {
        placeholders,
        carry: m,
        consts: consts.clone(),
        outputs,
        order,
        steps,
        reverse,
        key,
    });
    let pieces = body.pieces();
    let total: usize = pieces.iter().map(|p| p.iter().product::<usize>()).sum();
    let inputs: Vec<Tensor> = init.iter().chain(xs).chain(&consts).cloned().collect();
    let node = Tensor::from_op(Op::Loop(Loop(body)), inputs, vec![total], dtype)?;
    unpack(&node, &pieces)
}

/// The pieces of a packed value (flat, in order) with their shapes.
pub(crate) fn unpack(packed: &Tensor, pieces: &[Vec<usize>]) -> Result<Vec<Tensor>> {
    let mut at = 0;
    pieces
        .iter()
        .map(|shape| {
            let len: usize = shape.iter().product();
            at += len;
            packed.try_slice_axis(0, at - len..at)?.try_reshape(shape)
        })
        .collect()
}

/// Tensors concatenated along `axis`, at most 8 per node (each binds a buffer).
pub(crate) fn concat_many(parts: &[Tensor], axis: isize) -> Result<Tensor> {
    let mut level: Vec<Tensor> = parts.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(8)
            .map(|c| {
                if c.len() == 1 {
                    Ok(c[0].clone())
                } else {
                    crate::compose::shape::try_concat(c, axis)
                }
            })
            .collect::<Result<_>>()?;
    }
    Ok(level.remove(0))
}

/// `ys` stacked along a new leading axis as a tree of stacks and concatenations of at most 8.
fn stack_many(ys: &[Tensor]) -> Result<Tensor> {
    let level: Vec<Tensor> = ys
        .chunks(8)
        .map(|c| crate::compose::shape::try_stack(c, 0))
        .collect::<Result<_>>()?;
    concat_many(&level, 0)
}

/// The loop unrolled: the traced body's graph copied once per step (no user code runs).
fn unrolled(
    placeholders: &[Tensor],
    outputs: &[Tensor],
    init: &[Tensor],
    xs: &[Tensor],
    steps: usize,
    reverse: bool,
) -> Result<Vec<Tensor>> {
    let m = init.len();
    let mut c = init.to_vec();
    let mut ys: Vec<Vec<Tensor>> = vec![vec![]; outputs.len() - m];
    let order: Vec<usize> = if reverse {
        (0..steps).rev().collect()
    } else {
        (0..steps).collect()
    };
    for t in order {
        let mut args = c.clone();
        for s in xs {
            args.push(s.try_index(t as isize)?);
        }
        let mut out = replay(placeholders, outputs, &args);
        let y = out.split_off(m);
        c = out;
        for (acc, y) in ys.iter_mut().zip(y) {
            acc.push(y);
        }
    }
    for mut acc in ys {
        if reverse {
            acc.reverse();
        }
        c.push(stack_many(&acc)?);
    }
    Ok(c)
}

/// A body's new carry (the first leaves of `out`) has the initial carry's structure, shapes
/// and dtypes.
pub(crate) fn check_carry(what: &str, init: &[Tensor], out: &[Tensor]) -> Result<()> {
    if out.len() < init.len() {
        return transform_err(
            "control flow",
            format!(
                "{what}: the body returned a carry of {} leaves for an initial carry of {}",
                out.len(),
                init.len()
            ),
        );
    }
    for (k, (a, b)) in init.iter().zip(out).enumerate() {
        if a.shape() != b.shape() || a.dtype() != b.dtype() {
            return transform_err(
                "control flow",
                format!(
                    "{what}: carry leaf {k} went in as {:?} {} and came out as {:?} {} (a carry keeps its shape and dtype)",
                    a.shape(),
                    a.dtype(),
                    b.shape(),
                    b.dtype()
                ),
            );
        }
    }
    Ok(())
}
