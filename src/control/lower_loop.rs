//! Lowering a loop node: its inputs into buffers, the body scheduled once, and the body's
//! kernels recorded once per step inside a repeated block, with the copies that move each
//! step's slices in and its outputs into the packed value.

use std::collections::{HashMap, HashSet};

use crate::base::error::Result;
use crate::ir::control::LoopBody;
use crate::ir::tensor::Tensor;
use crate::kernel::{BufRef, Kernel, Step};
use crate::prim::lower::{LowerCx, Lowered};

/// The kernels of loop node `node` with body `b`, into `cx`'s output (the packed value).
pub(crate) fn lower_loop(b: &LoopBody, node: &Tensor, cx: &mut LowerCx) -> Result<Lowered> {
    let m = b.counts().0;
    let mut ks: Vec<Kernel> = vec![];
    let inputs = bind_inputs(b, &node.inputs(), cx, &mut ks)?;
    let (body, outs, next) = crate::schedule::lower::lower_body(
        &b.order,
        &b.outputs,
        inputs.seeds,
        cx.limits,
        cx.policy,
        cx.next_virtual(),
    )?;
    cx.skip_to(next);
    let other = pingpong_buffers(&body, &outs, m, cx);
    let phases = phase_renames(&other, &inputs.carries, &outs);
    let mut offsets = vec![];
    let mut at = 0u64;
    for p in &b.pieces() {
        offsets.push(at);
        at += (p.iter().product::<usize>() * node.dtype().size()) as u64;
    }
    let lowering = Steps {
        b,
        m,
        packed: cx.out(),
        packed_bytes: bytes_of(node),
        xs: inputs.xs,
        slices: inputs.slices,
        carries: inputs.carries,
        body,
        outs,
        other,
        phases,
        offsets,
    };
    lowering.record(&mut ks, cx);
    Ok(Lowered::Kernels(ks))
}

/// The loop's buffers before the body runs: what the body's placeholders and captured tensors
/// read (`seeds`), the stacked `xs`, the carries' own buffers (holding the initial values) and
/// one step's slices.
struct Inputs {
    seeds: HashMap<u64, BufRef>,
    xs: Vec<BufRef>,
    carries: Vec<BufRef>,
    slices: Vec<BufRef>,
}

/// Every input in a buffer (materialized when it is fused elsewhere), the carries copied into
/// buffers of their own; the kernels and copies that takes go to `ks`.
fn bind_inputs(
    b: &LoopBody,
    ins: &[Tensor],
    cx: &mut LowerCx,
    ks: &mut Vec<Kernel>,
) -> Result<Inputs> {
    let (m, s, _) = b.counts();
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
    Ok(Inputs {
        seeds,
        xs,
        carries,
        slices,
    })
}

/// Ping-pong: a new carry that a body kernel writes into a buffer of its own is written
/// straight into the carry's other buffer (returned here), and the next step reads it from
/// there (no copy). Other new carries (passed through, swapped, shared) are copied (`None`).
fn pingpong_buffers(
    body: &[Kernel],
    outs: &[BufRef],
    m: usize,
    cx: &mut LowerCx,
) -> Vec<Option<BufRef>> {
    let written: HashSet<usize> = body
        .iter()
        .flat_map(|k| std::iter::once(&k.out).chain(k.extra_outs.iter().map(|(b, _)| b)))
        .filter_map(BufRef::virtual_id)
        .collect();
    (0..m)
        .map(|j| {
            let fresh = outs[j].virtual_id().is_some_and(|v| written.contains(&v));
            let shared = outs
                .iter()
                .enumerate()
                .any(|(k, o)| k != j && *o == outs[j]);
            (fresh && !shared).then(|| cx.scratch())
        })
        .collect()
}

/// Per phase (two when a carry ping-pongs, else one): buffer renames (old virtual → new) for
/// the body's kernels and the copies.
fn phase_renames(
    other: &[Option<BufRef>],
    carries: &[BufRef],
    outs: &[BufRef],
) -> Vec<HashMap<usize, usize>> {
    let pingpong = other.iter().any(Option::is_some);
    (0..if pingpong { 2 } else { 1 })
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
        .collect()
}

/// What recording the steps needs: the body's kernels over its buffers, and where every
/// value lives.
struct Steps<'a> {
    b: &'a LoopBody,
    m: usize,
    packed: BufRef,
    packed_bytes: u64,
    xs: Vec<BufRef>,
    slices: Vec<BufRef>,
    carries: Vec<BufRef>,
    body: Vec<Kernel>,
    outs: Vec<BufRef>,
    other: Vec<Option<BufRef>>,
    phases: Vec<HashMap<usize, usize>>,
    /// Each packed piece's byte offset.
    offsets: Vec<u64>,
}

impl Steps<'_> {
    /// The repeated block of steps (pairs of phases when carries ping-pong, and an odd
    /// count's last step after them), then the final carries into the packed value.
    fn record(&self, ks: &mut Vec<Kernel>, cx: &mut LowerCx) {
        let b = self.b;
        let marker = |step: Step| Kernel::marker(step, None, BufRef::None, 0);
        let stride = self.phases.len() as u64;
        let tail = self.phases.len() == 2 && b.steps % 2 == 1;
        if tail {
            // The repeat and the last step in one block, so that the buffers of both stay
            // alive to its end (the last step writes the repeat's buffers again).
            ks.push(marker(Step::Repeat { times: 1 }));
        }
        ks.push(marker(Step::Repeat {
            times: b.steps / self.phases.len(),
        }));
        for phase in 0..self.phases.len() {
            self.step(ks, cx, phase, stride, phase as u64);
        }
        ks.push(marker(Step::EndRepeat));
        if tail {
            // An odd count: the last step after the pairs, in the first phase.
            self.step(ks, cx, 0, 0, b.steps as u64 - 1);
            ks.push(marker(Step::EndRepeat));
        }
        // A ping-ponged carry is in its other buffer after an odd number of steps.
        for (j, c) in self.carries.iter().enumerate() {
            let from = match &self.other[j] {
                Some(o) if b.steps % 2 == 1 => o,
                _ => c,
            };
            let bytes = bytes_of(&b.outputs[j]);
            ks.push(copy(
                from,
                &self.packed,
                self.packed_bytes,
                plain(bytes, self.offsets[j]),
            ));
        }
    }

    /// One step in phase `phase`, at step index `stride * j + index` (or the fixed index
    /// `index` outside the repeat, with stride 0).
    fn step(&self, ks: &mut Vec<Kernel>, cx: &mut LowerCx, phase: usize, stride: u64, index: u64) {
        let (b, m) = (self.b, self.m);
        let map = &self.phases[phase];
        let reverse_of = b.reverse.then_some(b.steps as u64);
        let at_step = |bytes: u64, src_step: u64, dst_step: u64, dst: u64| Step::Copy {
            src: 0,
            dst,
            bytes,
            src_step,
            dst_step,
            stride,
            phase: index,
            reverse_of,
        };
        for ((p, src), dst) in b.placeholders[m..].iter().zip(&self.xs).zip(&self.slices) {
            let k = bytes_of(p);
            ks.push(copy(src, dst, k, at_step(k, k, 0, 0)));
        }
        for k in &self.body {
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
                &rename(map, &self.outs[k]),
                &self.packed,
                self.packed_bytes,
                at_step(bytes, 0, bytes, self.offsets[k]),
            ));
        }
        self.copy_carries(ks, cx, map);
    }

    /// The copied carries' new values into their buffers: through a buffer of their own first
    /// where the source is another copied carry's buffer, so that no copy reads an
    /// overwritten one.
    fn copy_carries(&self, ks: &mut Vec<Kernel>, cx: &mut LowerCx, map: &HashMap<usize, usize>) {
        let b = self.b;
        let copied: Vec<usize> = (0..self.m).filter(|&j| self.other[j].is_none()).collect();
        let mut sources = vec![];
        for &j in &copied {
            let src = rename(map, &self.outs[j]);
            let bytes = bytes_of(&b.outputs[j]);
            if copied.iter().any(|&i| self.carries[i] == src) {
                let tmp = cx.scratch();
                ks.push(copy(&src, &tmp, bytes, plain(bytes, 0)));
                sources.push(tmp);
            } else {
                sources.push(src);
            }
        }
        for (&j, src) in copied.iter().zip(&sources) {
            if *src != self.carries[j] {
                let bytes = bytes_of(&b.outputs[j]);
                ks.push(copy(src, &self.carries[j], bytes, plain(bytes, 0)));
            }
        }
    }
}

/// A copy of `whole` bytes' buffer `src` into `dst`, as `step` says.
fn copy(src: &BufRef, dst: &BufRef, whole: u64, step: Step) -> Kernel {
    Kernel::marker(step, Some(src.clone()), dst.clone(), whole)
}

/// A copy of `bytes` bytes to offset `dst`, the same at every step.
fn plain(bytes: u64, dst: u64) -> Step {
    Step::Copy {
        src: 0,
        dst,
        bytes,
        src_step: 0,
        dst_step: 0,
        stride: 0,
        phase: 0,
        reverse_of: None,
    }
}

/// `b` under the renames `map`.
fn rename(map: &HashMap<usize, usize>, b: &BufRef) -> BufRef {
    match b {
        BufRef::Virtual(v) => BufRef::Virtual(*map.get(v).unwrap_or(v)),
        other => other.clone(),
    }
}

/// Byte size of a tensor's values.
pub(crate) fn bytes_of(t: &Tensor) -> u64 {
    (t.numel() * t.dtype().size()) as u64
}
