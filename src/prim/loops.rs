//! Loops: one node runs a traced body a static number of steps (`scan`, `fori_loop`).
//!
//! The body is traced once, on placeholders; tensors it captures become the node's inputs
//! (after the initial carry and the stacked slices). The node's value is every result packed
//! into one flat buffer — the final carries, then each stacked per-step output — and the
//! leaves the caller sees are slices of it (index maps: no copies). Lowering schedules the
//! body once and records its kernels once per step in the same submit: carries live in
//! buffers of their own, each step's slice of `xs` is copied in and its outputs copied into
//! the packed buffer at their offsets (copies, not kernels). Rules build loops in turn: JVP
//! is a loop of the body's JVP; VJP is a loop that saves the carry entering each step and a
//! reverse loop of the body's VJP (the body's forward recomputed per step, as under
//! `checkpoint`); batching is a loop of the vmapped body.
//!
//! A loop whose results mix dtypes (or are not 4-byte types) is unrolled instead: the body's
//! graph copied once per step, as `jit` replays a trace.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use crate::base::error::{Result, or_panic, transform_err};
use crate::ir::graph::between;
use crate::ir::op::{Fusion, Op};
use crate::ir::tensor::Tensor;
use crate::ir::trace::staged;
use crate::kernel::{BufRef, Kernel, Step};
use crate::prim::Primitive;
use crate::prim::lower::{LowerCx, Lowered};
use crate::transforms::jit::replay;
use crate::transforms::jvp::jvp_flat;
use crate::transforms::vjp::vjp_flat;
use crate::transforms::vmap::vmap_flat;

/// A traced loop body.
pub(crate) struct LoopBody {
    /// The carry's leaves, then one step's slices of `xs`.
    placeholders: Vec<Tensor>,
    carry: usize,
    /// Tensors the body captured, as traced: the node's inputs after `init` and `xs` take
    /// their place.
    consts: Vec<Tensor>,
    /// The new carry's leaves, then the step's outputs.
    outputs: Vec<Tensor>,
    /// The body's nodes that depend on a placeholder, inputs first.
    order: Vec<Tensor>,
    steps: usize,
    reverse: bool,
    /// The body's structure and values (see `body_key`).
    key: String,
}

impl LoopBody {
    fn counts(&self) -> (usize, usize, usize) {
        (
            self.carry,
            self.placeholders.len() - self.carry,
            self.consts.len(),
        )
    }
    /// The body's outputs from `args`: carry, slices, captured tensors.
    fn run(&self, args: &[Tensor]) -> Vec<Tensor> {
        let keys: Vec<Tensor> = self
            .placeholders
            .iter()
            .chain(&self.consts)
            .cloned()
            .collect();
        replay(&keys, &self.outputs, args)
    }
    /// The packed value's pieces: each final carry's shape, then each stacked output's.
    fn pieces(&self) -> Vec<Vec<usize>> {
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

/// Whether moving `n` out of a loop saves work (views and index maps cost nothing).
fn computes(n: &Tensor) -> bool {
    !matches!(n.op().fusion(), Fusion::View | Fusion::IndexMap)
}

/// Stacked per-step values of at most this many bytes are kept to take work out of a loop.
const MOTION_BYTES: usize = 256 << 20;

fn stacked_bytes(ts: &[Tensor], steps: usize) -> usize {
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
            Some(i) => xs[i].reshape([&[steps][..], x.shape()].concat()),
            None => stacked_of.next().cloned().expect("one stack per value"),
        })
        .collect();
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
    let (order, depends) = between(&outputs, &placeholders);
    // What the body captured: inputs of its nodes (and outputs) that depend on no placeholder.
    let captured = order
        .iter()
        .flat_map(|n| n.inputs())
        .chain(outputs.iter().cloned());
    let consts = distinct(captured, |x| !depends.contains(&x.id()));
    let dtype = outputs.first().map(|o| o.dtype());
    let packable = crate::base::policy::policy().loops
        && dtype.is_some_and(|d| d.size() == 4 && outputs.iter().all(|o| o.dtype() == d))
        && placeholders[m..]
            .iter()
            .all(|x| (x.numel() * x.dtype().size()) % 4 == 0);
    let (Some(dtype), true) = (dtype, packable) else {
        return unrolled(&placeholders, &outputs, init, xs, steps, reverse);
    };
    let leaves: Vec<Tensor> = placeholders.iter().chain(&consts).cloned().collect();
    let key = crate::runtime::scheduler::body_key(&order, &leaves, &outputs);
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
fn unpack(packed: &Tensor, pieces: &[Vec<usize>]) -> Result<Vec<Tensor>> {
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
fn concat_many(parts: &[Tensor], axis: isize) -> Result<Tensor> {
    let mut level: Vec<Tensor> = parts.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(8)
            .map(|c| {
                if c.len() == 1 {
                    Ok(c[0].clone())
                } else {
                    crate::prim::movement::try_concat(c, axis)
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
        .map(|c| crate::prim::movement::try_stack(c, 0))
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

/// Byte size of a tensor's values.
fn bytes_of(t: &Tensor) -> u64 {
    (t.numel() * t.dtype().size()) as u64
}

impl Primitive for Loop {
    fn name(&self) -> &'static str {
        "loop"
    }
    fn fusion(&self) -> Fusion {
        Fusion::KernelRoot { epilogue: false }
    }
    fn lower(&self, node: &Tensor, cx: &mut LowerCx) -> Result<Lowered> {
        let b = &self.0;
        let (m, s, _) = b.counts();
        let n = b.steps as u64;
        let ins = node.inputs();
        let packed = cx.out();
        let packed_bytes = bytes_of(node);
        let mut ks: Vec<Kernel> = vec![];
        let copy = |src: &BufRef, dst: &BufRef, whole: u64, step: Step| {
            Kernel::marker(step, Some(src.clone()), dst.clone(), whole)
        };
        // A copy at step `t = stride * j + phase` of a repeat, moving `src_step`/`dst_step`
        // bytes per step (in the loop's direction).
        let at_step =
            |bytes: u64, src_step: u64, dst_step: u64, dst: u64, stride: u64, phase| Step::Copy {
                src: 0,
                dst,
                bytes,
                src_step,
                dst_step,
                stride,
                phase,
                reverse_of: b.reverse.then_some(n),
            };
        let plain = |bytes: u64, dst: u64| Step::Copy {
            src: 0,
            dst,
            bytes,
            src_step: 0,
            dst_step: 0,
            stride: 0,
            phase: 0,
            reverse_of: None,
        };
        // Every input in a buffer (materialized when it is fused elsewhere).
        let mut in_buf = |cx: &mut LowerCx, t: &Tensor| -> Result<BufRef> {
            match cx.buffer_of(t) {
                Some(buf) => Ok(buf),
                None => {
                    let buf = cx.scratch();
                    ks.push(cx.kernel_into(t, buf.clone())?);
                    Ok(buf)
                }
            }
        };
        let mut seeds: HashMap<u64, BufRef> = HashMap::new();
        for (c, t) in b.consts.iter().zip(&ins[m + s..]) {
            let buf = in_buf(cx, t)?;
            seeds.insert(c.id(), buf);
        }
        let xs: Vec<BufRef> = ins[m..m + s]
            .iter()
            .map(|t| in_buf(cx, t))
            .collect::<Result<_>>()?;
        // The carries' own buffers, holding the initial values first.
        let mut carries = vec![];
        for (p, t) in b.placeholders[..m].iter().zip(&ins[..m]) {
            let buf = cx.scratch();
            match cx.buffer_of(t) {
                Some(src) => ks.push(copy(&src, &buf, bytes_of(t), plain(bytes_of(t), 0))),
                None => ks.push(cx.kernel_into(t, buf.clone())?),
            }
            seeds.insert(p.id(), buf.clone());
            carries.push(buf);
        }
        let slices: Vec<BufRef> = b.placeholders[m..]
            .iter()
            .map(|p| {
                let buf = cx.scratch();
                seeds.insert(p.id(), buf.clone());
                buf
            })
            .collect();
        let (body, outs, next) = crate::runtime::scheduler::lower_body(
            &b.order,
            &b.outputs,
            seeds,
            cx.limits,
            cx.policy,
            cx.next_virtual(),
        )?;
        cx.skip_to(next);
        // Ping-pong: a new carry that a body kernel writes into a buffer of its own is written
        // straight into the carry's other buffer, and the next step reads it from there (no
        // copy). Other new carries (passed through, swapped, shared) are copied.
        let written: HashSet<usize> = body
            .iter()
            .flat_map(|k| std::iter::once(&k.out).chain(k.extra_outs.iter().map(|(b, _)| b)))
            .filter_map(BufRef::virtual_id)
            .collect();
        let mut other: Vec<Option<BufRef>> = vec![None; m];
        for j in 0..m {
            let fresh = outs[j].virtual_id().is_some_and(|v| written.contains(&v));
            let shared = outs
                .iter()
                .enumerate()
                .any(|(k, o)| k != j && *o == outs[j]);
            if fresh && !shared {
                other[j] = Some(cx.scratch());
            }
        }
        // Per phase: buffer renames (old virtual -> new) for the body and the copies.
        let pingpong = other.iter().any(Option::is_some);
        let phases: Vec<HashMap<usize, usize>> = (0..if pingpong { 2 } else { 1 })
            .map(|phase| {
                let mut map = HashMap::new();
                for (j, o) in other.iter().enumerate() {
                    let (Some(o), Some(a), Some(v)) = (
                        o.as_ref().and_then(BufRef::virtual_id),
                        carries[j].virtual_id(),
                        outs[j].virtual_id(),
                    ) else {
                        continue;
                    };
                    if phase == 0 {
                        map.insert(v, o);
                    } else {
                        map.insert(a, o);
                        map.insert(v, a);
                    }
                }
                map
            })
            .collect();
        let rename = |map: &HashMap<usize, usize>, b: &BufRef| match b {
            BufRef::Virtual(v) => BufRef::Virtual(*map.get(v).unwrap_or(v)),
            real => real.clone(),
        };
        let stride = phases.len() as u64;
        let mut offsets = vec![];
        let mut at = 0u64;
        for p in &b.pieces() {
            offsets.push(at);
            at += (p.iter().product::<usize>() * node.dtype().size()) as u64;
        }
        // One step in phase `phase`, at step index `stride * j + phase` (or a fixed index
        // outside the repeat, with stride 0).
        let step =
            |ks: &mut Vec<Kernel>, cx: &mut LowerCx, phase: usize, stride: u64, index: u64| {
                let map = &phases[phase];
                for ((p, src), dst) in b.placeholders[m..].iter().zip(&xs).zip(&slices) {
                    let k = bytes_of(p);
                    ks.push(copy(src, dst, k, at_step(k, k, 0, 0, stride, index)));
                }
                for k in &body {
                    let mut k = k.clone();
                    k.inputs = k.inputs.iter().map(|b| rename(map, b)).collect();
                    k.out = rename(map, &k.out);
                    for (b, _) in k.extra_outs.iter_mut() {
                        *b = rename(map, b);
                    }
                    ks.push(k);
                }
                // The step's outputs into the packed value, at their offsets.
                for (k, y) in b.outputs.iter().enumerate().skip(m) {
                    let bytes = bytes_of(y);
                    ks.push(copy(
                        &rename(map, &outs[k]),
                        &packed,
                        packed_bytes,
                        at_step(bytes, 0, bytes, offsets[k], stride, index),
                    ));
                }
                // Copied carries: through a buffer of their own first where the source is another
                // copied carry's buffer, so that no copy reads an overwritten one.
                let copied: Vec<usize> = (0..m).filter(|&j| other[j].is_none()).collect();
                let mut sources = vec![];
                for &j in &copied {
                    let src = rename(map, &outs[j]);
                    let bytes = bytes_of(&b.outputs[j]);
                    if copied.iter().any(|&i| carries[i] == src) {
                        let tmp = cx.scratch();
                        ks.push(copy(&src, &tmp, bytes, plain(bytes, 0)));
                        sources.push(tmp);
                    } else {
                        sources.push(src);
                    }
                }
                for (&j, src) in copied.iter().zip(&sources) {
                    if *src != carries[j] {
                        let bytes = bytes_of(&b.outputs[j]);
                        ks.push(copy(src, &carries[j], bytes, plain(bytes, 0)));
                    }
                }
            };
        let marker = |step: Step| {
            Kernel::marker(
                step,
                None,
                BufRef::Virtual(crate::runtime::buffers::NO_WRITE),
                0,
            )
        };
        let tail = phases.len() == 2 && b.steps % 2 == 1;
        if tail {
            // The repeat and the last step in one block, so that the buffers of both stay
            // alive to its end (the last step writes the repeat's buffers again).
            ks.push(marker(Step::Repeat { times: 1 }));
        }
        ks.push(marker(Step::Repeat {
            times: b.steps / phases.len(),
        }));
        for phase in 0..phases.len() {
            step(&mut ks, cx, phase, stride, phase as u64);
        }
        ks.push(marker(Step::EndRepeat));
        if tail {
            // An odd count: the last step after the pairs, in the first phase.
            step(&mut ks, cx, 0, 0, n - 1);
            ks.push(marker(Step::EndRepeat));
        }
        // The final carries into the packed value: a ping-ponged one is in its other buffer
        // after an odd number of steps.
        for (j, c) in carries.iter().enumerate() {
            let from = match &other[j] {
                Some(o) if b.steps % 2 == 1 => o,
                _ => c,
            };
            let bytes = bytes_of(&b.outputs[j]);
            ks.push(copy(from, &packed, packed_bytes, plain(bytes, offsets[j])));
        }
        Ok(Lowered::Kernels(ks))
    }
    fn jvp(&self, inputs: &[Tensor], out: &Tensor, t: &[Option<Tensor>]) -> Option<Tensor> {
        let b = self.0.clone();
        let (m, s, q) = b.counts();
        if t.iter().all(Option::is_none) || !out.dtype().is_float() {
            return None;
        }
        let r = b.outputs.len() - m;
        let consts: Vec<Tensor> = inputs[m + s..].to_vec();
        let with_x: Vec<usize> = (0..s).filter(|&i| t[m + i].is_some()).collect();
        let const_t: Vec<Option<Tensor>> = (0..q).map(|k| t[m + s + k].clone()).collect();
        let xs_n = with_x.clone();
        let f = move |a: &[Tensor]| -> Vec<Tensor> {
            let (c, rest) = a.split_at(m);
            let (ct, rest) = rest.split_at(m);
            let (x, xt) = rest.split_at(s);
            let primals: Vec<Tensor> = c.iter().chain(x).chain(&consts).cloned().collect();
            let mut tangents: Vec<Option<Tensor>> = ct.iter().cloned().map(Some).collect();
            let mut next_xt = xt.iter();
            for i in 0..s {
                tangents.push(if xs_n.contains(&i) {
                    next_xt.next().cloned()
                } else {
                    None
                });
            }
            tangents.extend(const_t.iter().cloned());
            let (outs, touts) = or_panic(jvp_flat(&|p| b.run(p), &primals, &tangents, true));
            let mut res = outs[..m].to_vec();
            res.extend(touts[..m].iter().cloned());
            res.extend(outs[m..].iter().cloned());
            res.extend(touts[m..].iter().cloned());
            res
        };
        let mut init: Vec<Tensor> = inputs[..m].to_vec();
        init.extend((0..m).map(|j| t[j].clone().unwrap_or_else(|| inputs[j].zeros_like())));
        let mut xs: Vec<Tensor> = inputs[m..m + s].to_vec();
        xs.extend(with_x.iter().filter_map(|&i| t[m + i].clone()));
        let outs = or_panic(loop_flat(&f, &init, &xs, self.0.steps, self.0.reverse));
        let parts: Vec<Tensor> = outs[m..2 * m]
            .iter()
            .chain(&outs[2 * m + r..])
            .map(|x| x.reshape([x.numel()]))
            .collect();
        Some(or_panic(concat_many(&parts, 0)))
    }
    fn vjp(
        &self,
        inputs: &[Tensor],
        out: &Tensor,
        ct: &Tensor,
        needs: &[bool],
    ) -> Vec<Option<Tensor>> {
        let b = self.0.clone();
        let (m, s, q) = b.counts();
        let mut res: Vec<Option<Tensor>> = vec![None; inputs.len()];
        if !needs.iter().any(|n| *n) || !out.dtype().is_float() {
            return res;
        }
        let r = b.outputs.len() - m;
        let (steps, reverse) = (b.steps, b.reverse);
        let consts: Vec<Tensor> = inputs[m + s..].to_vec();
        // The carry entering each step, saved (with the loop's own results).
        let forward = {
            let (b, consts) = (b.clone(), consts.clone());
            move |a: &[Tensor]| -> Vec<Tensor> {
                let args: Vec<Tensor> = a.iter().chain(&consts).cloned().collect();
                let mut o = b.run(&args);
                o.extend(a[..m].iter().cloned());
                o
            }
        };
        let saved = or_panic(loop_flat(
            &forward,
            &inputs[..m],
            &inputs[m..m + s],
            steps,
            reverse,
        ));
        let entering = saved[m + r..].to_vec();
        let cts = or_panic(unpack(ct, &b.pieces()));
        let float = |t: &Tensor| t.dtype().is_float();
        let grad_x: Vec<usize> = (0..s)
            .filter(|&i| needs[m + i] && float(&inputs[m + i]))
            .collect();
        let grad_k: Vec<usize> = (0..q)
            .filter(|&k| needs[m + s + k] && float(&inputs[m + s + k]))
            .collect();
        // The captured tensors' cotangents: stacked per step and summed after the loop (whose
        // last part is then computed for all steps at once, see `sink`), or accumulated in
        // the carry when the stacks would be too large.
        let stack_k = stacked_bytes(&consts, steps) <= MOTION_BYTES;
        let carried: Vec<usize> = if stack_k { vec![] } else { grad_k.clone() };
        let stacked_k: Vec<usize> = if stack_k { grad_k.clone() } else { vec![] };
        let (gx, gk, sk) = (grad_x.clone(), carried.clone(), stacked_k.clone());
        // Backwards over the steps: the carry's cotangent and the captured tensors'
        // accumulated ones in the carry; each step's slice cotangents out.
        let backward = move |a: &[Tensor]| -> Vec<Tensor> {
            let (ct_c, rest) = a.split_at(m);
            let (acc, rest) = rest.split_at(gk.len());
            let (x, rest) = rest.split_at(s);
            let (c, ct_y) = rest.split_at(m);
            let primals: Vec<Tensor> = c.iter().chain(x).chain(&consts).cloned().collect();
            let (_, pb) = vjp_flat(&|p| b.run(p), &primals, true);
            let cts: Vec<Option<Tensor>> = ct_c.iter().chain(ct_y).cloned().map(Some).collect();
            let g = or_panic(pb.call(&cts));
            let mut o: Vec<Tensor> = g[..m].to_vec();
            for (a, &k) in acc.iter().zip(&gk) {
                o.push(a + &g[m + s + k]);
            }
            for &i in &gx {
                o.push(g[m + i].clone());
            }
            for &k in &sk {
                o.push(g[m + s + k].clone());
            }
            o
        };
        let mut init: Vec<Tensor> = cts[..m].to_vec();
        init.extend(carried.iter().map(|&k| inputs[m + s + k].zeros_like()));
        let xs: Vec<Tensor> = inputs[m..m + s]
            .iter()
            .chain(&entering)
            .chain(&cts[m..])
            .cloned()
            .collect();
        let back = or_panic(loop_flat(&backward, &init, &xs, steps, !reverse));
        for j in 0..m {
            if needs[j] {
                res[j] = Some(back[j].clone());
            }
        }
        for (a, &k) in carried.iter().enumerate() {
            res[m + s + k] = Some(back[m + a].clone());
        }
        let at = m + carried.len();
        for (a, &i) in grad_x.iter().enumerate() {
            res[m + i] = Some(back[at + a].clone());
        }
        let at = at + grad_x.len();
        for (a, &k) in stacked_k.iter().enumerate() {
            res[m + s + k] = Some(back[at + a].sum(0isize, false));
        }
        res
    }
    fn batch(
        &self,
        inputs: &[Tensor],
        _: &Tensor,
        batched: &[bool],
        size: usize,
    ) -> Result<Tensor> {
        let b = self.0.clone();
        let (m, s, _) = b.counts();
        let r = b.outputs.len() - m;
        let steps = b.steps;
        // Every carry batched; batched slices with the step axis first.
        let init: Vec<Tensor> = inputs[..m]
            .iter()
            .zip(batched)
            .map(|(x, &bt)| {
                if bt {
                    Ok(x.clone())
                } else {
                    x.try_broadcast_to([&[size][..], x.shape()].concat())
                }
            })
            .collect::<Result<_>>()?;
        let xs: Vec<Tensor> = inputs[m..m + s]
            .iter()
            .zip(&batched[m..])
            .map(|(x, &bt)| {
                if bt {
                    x.try_moveaxis(0, 1)
                } else {
                    Ok(x.clone())
                }
            })
            .collect::<Result<_>>()?;
        let consts: Vec<Tensor> = inputs[m + s..].to_vec();
        let in_axes: Vec<Option<isize>> = (0..inputs.len())
            .map(|k| (k < m || batched[k]).then_some(0))
            .collect();
        let f = move |a: &[Tensor]| -> Vec<Tensor> {
            let args: Vec<Tensor> = a.iter().chain(&consts).cloned().collect();
            or_panic(vmap_flat(
                &|p| b.run(p),
                &args,
                &in_axes,
                &|k| Ok(vec![Some(0); k]),
                Some(size),
            ))
        };
        let outs = loop_flat(&f, &init, &xs, steps, self.0.reverse)?;
        let mut parts = vec![];
        for (k, o) in outs.iter().enumerate() {
            let per = o.numel() / size;
            parts.push(if k < m {
                o.try_reshape([size, per])?
            } else {
                o.try_moveaxis(1, 0)?.try_reshape([size, per])?
            });
        }
        debug_assert_eq!(parts.len(), m + r);
        concat_many(&parts, 1)
    }
}
