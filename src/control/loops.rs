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

use crate::base::error::Result;
use crate::base::host::Host;
use crate::control::build::{MOTION_BYTES, concat_many, loop_flat, stacked_bytes, unpack};
use crate::control::lower_loop::lower_loop;
use crate::ir::control::Loop;
use crate::ir::op::Fusion;
use crate::ir::tensor::Tensor;

use crate::prim::Primitive;
use crate::prim::lower::{LowerCx, Lowered};
use crate::transforms::Caught;
use crate::transforms::jvp::jvp_flat;
use crate::transforms::vjp::vjp_flat;
use crate::transforms::vmap::vmap_flat;

impl Primitive for Loop {
    fn name(&self) -> &'static str {
        "loop"
    }
    fn fusion(&self) -> Fusion {
        Fusion::KernelRoot { epilogue: false }
    }
    fn lower(&self, node: &Tensor, cx: &mut LowerCx) -> Result<Lowered> {
        lower_loop(&self.0, node, cx)
    }
    /// The body evaluated once per step by the reference interpreter, its carry passed on
    /// and its outputs stacked at their step's index, packed as the node's value.
    fn reference(&self, node: &Tensor, x: &[Host]) -> Result<Host> {
        let b = &self.0;
        let (m, s, q) = b.counts();
        let mut carry: Vec<Host> = x[..m].to_vec();
        let mut stacked: Vec<Vec<f64>> = vec![vec![]; b.outputs.len() - m];
        let mut rows: Vec<Vec<Vec<f64>>> = vec![vec![vec![]; b.steps]; b.outputs.len() - m];
        for k in 0..b.steps {
            let t = if b.reverse { b.steps - 1 - k } else { k };
            let mut bound = std::collections::HashMap::new();
            for (p, c) in b.placeholders[..m].iter().zip(&carry) {
                bound.insert(p.id(), c.clone());
            }
            for (p, xs) in b.placeholders[m..].iter().zip(&x[m..m + s]) {
                let n = p.numel();
                let slice = xs.data[t * n..(t + 1) * n].to_vec();
                bound.insert(p.id(), Host::new(p.shape(), p.dtype(), slice));
            }
            for (c, v) in b.consts.iter().zip(&x[m + s..m + s + q]) {
                bound.insert(c.id(), v.clone());
            }
            let mut outs = crate::runtime::reference::evaluate(&b.outputs, &bound)?;
            let ys = outs.split_off(m);
            carry = outs;
            for (row, y) in rows.iter_mut().zip(ys) {
                row[t] = y.data;
            }
        }
        for (out, row) in stacked.iter_mut().zip(rows) {
            out.extend(row.into_iter().flatten());
        }
        let mut data: Vec<f64> = carry.into_iter().flat_map(|c| c.data).collect();
        data.extend(stacked.into_iter().flatten());
        Ok(Host::new(node.shape(), node.dtype(), data))
    }
    fn jvp(&self, inputs: &[Tensor], out: &Tensor, t: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        let b = self.0.clone();
        let (m, s, q) = b.counts();
        if t.iter().all(Option::is_none) || !out.dtype().is_float() {
            return Ok(None);
        }
        let r = b.outputs.len() - m;
        let consts: Vec<Tensor> = inputs[m + s..].to_vec();
        let with_x: Vec<usize> = (0..s).filter(|&i| t[m + i].is_some()).collect();
        let const_t: Vec<Option<Tensor>> = (0..q).map(|k| t[m + s + k].clone()).collect();
        let xs_n = with_x.clone();
        let caught = Caught::default();
        let f = caught.wrap(move |a: &[Tensor]| -> Result<Vec<Tensor>> {
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
            let (outs, touts) = jvp_flat(&|p| b.run(p), &primals, &tangents, true)?;
            let mut res = outs[..m].to_vec();
            res.extend(touts[..m].iter().cloned());
            res.extend(outs[m..].iter().cloned());
            res.extend(touts[m..].iter().cloned());
            Ok(res)
        });
        let mut init: Vec<Tensor> = inputs[..m].to_vec();
        init.extend((0..m).map(|j| t[j].clone().unwrap_or_else(|| inputs[j].zeros_like())));
        let mut xs: Vec<Tensor> = inputs[m..m + s].to_vec();
        xs.extend(with_x.iter().filter_map(|&i| t[m + i].clone()));
        let outs = caught.check(loop_flat(&f, &init, &xs, self.0.steps, self.0.reverse))?;
        let parts: Vec<Tensor> = outs[m..2 * m]
            .iter()
            .chain(&outs[2 * m + r..])
            .map(|x| x.try_reshape([x.numel()]))
            .collect::<Result<_>>()?;
        Ok(Some(concat_many(&parts, 0)?))
    }
    fn vjp(
        &self,
        inputs: &[Tensor],
        out: &Tensor,
        ct: &Tensor,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let b = self.0.clone();
        let (m, s, q) = b.counts();
        let mut res: Vec<Option<Tensor>> = vec![None; inputs.len()];
        if !needs.iter().any(|n| *n) || !out.dtype().is_float() {
            return Ok(res);
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
        let saved = loop_flat(&forward, &inputs[..m], &inputs[m..m + s], steps, reverse)?;
        let entering = saved[m + r..].to_vec();
        let cts = unpack(ct, &b.pieces())?;
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
        let caught = Caught::default();
        let backward = caught.wrap(move |a: &[Tensor]| -> Result<Vec<Tensor>> {
            let (ct_c, rest) = a.split_at(m);
            let (acc, rest) = rest.split_at(gk.len());
            let (x, rest) = rest.split_at(s);
            let (c, ct_y) = rest.split_at(m);
            let primals: Vec<Tensor> = c.iter().chain(x).chain(&consts).cloned().collect();
            let (_, pb) = vjp_flat(&|p| b.run(p), &primals, true);
            let cts: Vec<Option<Tensor>> = ct_c.iter().chain(ct_y).cloned().map(Some).collect();
            let g = pb.call(&cts)?;
            let mut o: Vec<Tensor> = g[..m].to_vec();
            for (a, &k) in acc.iter().zip(&gk) {
                o.push(a.try_add(&g[m + s + k])?);
            }
            for &i in &gx {
                o.push(g[m + i].clone());
            }
            for &k in &sk {
                o.push(g[m + s + k].clone());
            }
            Ok(o)
        });
        let mut init: Vec<Tensor> = cts[..m].to_vec();
        init.extend(carried.iter().map(|&k| inputs[m + s + k].zeros_like()));
        let xs: Vec<Tensor> = inputs[m..m + s]
            .iter()
            .chain(&entering)
            .chain(&cts[m..])
            .cloned()
            .collect();
        let back = caught.check(loop_flat(&backward, &init, &xs, steps, !reverse))?;
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
            res[m + s + k] = Some(back[at + a].try_sum_axes(0isize)?);
        }
        Ok(res)
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
        let caught = Caught::default();
        let f = caught.wrap(move |a: &[Tensor]| -> Result<Vec<Tensor>> {
            let args: Vec<Tensor> = a.iter().chain(&consts).cloned().collect();
            vmap_flat(
                &|p| b.run(p),
                &args,
                &in_axes,
                &|k| Ok(vec![Some(0); k]),
                Some(size),
            )
        });
        let outs = caught.check(loop_flat(&f, &init, &xs, steps, self.0.reverse))?;
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
