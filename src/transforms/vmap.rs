//! vmap on the graph: run the function once on per-example placeholders, then rebuild every
//! node that depends on them with its primitive's batching rule (batch axis first).
//! Everything that does not depend on the batched arguments is computed once, unbatched.

use crate::base::dtype::norm_axis;
use crate::base::error::{Result, transform_err};
use crate::ir::graph::between;
use crate::ir::tensor::Tensor;
use crate::ir::trace::traced;
use crate::prim::with_batch;
use std::collections::HashMap;

/// vmap on flat lists: `in_axes[k]` is the batch axis of argument k (`None`: not batched);
/// `out_axes` is called with the number of outputs and gives their batch axes.
pub(crate) fn vmap_flat(
    f: &dyn Fn(&[Tensor]) -> Vec<Tensor>,
    args: &[Tensor],
    in_axes: &[Option<isize>],
    out_axes: &dyn Fn(usize) -> Result<Vec<Option<isize>>>,
    axis_size: Option<usize>,
) -> Result<Vec<Tensor>> {
    if in_axes.len() != args.len() {
        return transform_err(
            "vmap",
            format!(
                "in_axes has {} entries for {} arguments",
                in_axes.len(),
                args.len()
            ),
        );
    }
    let mut size = axis_size;
    let mut first: Option<(usize, usize, usize)> = None;
    let mut moved = vec![];
    for (k, (x, ax)) in args.iter().zip(in_axes).enumerate() {
        let Some(ax) = ax else {
            moved.push(None);
            continue;
        };
        let a = norm_axis("vmap", *ax, x.rank()).map_err(|_| crate::Error::Transform {
            transform: "vmap",
            msg: format!(
                "in_axes {ax} is out of range for argument {k} of shape {:?}",
                x.shape()
            ),
        })?;
        let n = x.shape()[a];
        match (size, first) {
            (Some(s), Some((k0, a0, _))) if s != n => {
                return transform_err(
                    "vmap",
                    format!(
                        "batch sizes disagree: argument {k0} has size {s} along axis {a0}, argument {k} has size {n} along axis {a}"
                    ),
                );
            }
            (Some(s), None) if s != n => {
                return transform_err(
                    "vmap",
                    format!("axis_size is {s} but argument {k} has size {n} along axis {a}"),
                );
            }
            _ => {}
        }
        size = Some(n);
        first.get_or_insert((k, a, n));
        moved.push(Some(x.try_moveaxis(a as isize, 0)?));
    }
    let Some(size) = size else {
        return transform_err(
            "vmap",
            "no argument is batched (every in_axes is None) and no axis_size was given",
        );
    };
    // Placeholders: the first example of each batched argument, as a fresh node.
    let mut placeholders = vec![];
    let mut leaves = vec![];
    for (x, m) in args.iter().zip(&moved) {
        match m {
            None => placeholders.push(x.clone()),
            Some(m) => {
                let example = if size > 0 {
                    let mut stop = m.shape().to_vec();
                    stop[0] = 1;
                    m.try_slice(vec![0; m.rank()], stop)?
                        .try_reshape(&m.shape()[1..])?
                } else {
                    Tensor::try_full(&m.shape()[1..], 0.0, m.dtype())?
                };
                let p = example.alias();
                leaves.push((p.clone(), m.clone()));
                placeholders.push(p);
            }
        }
    }
    let outs = crate::ir::trace::staged(|| f(&placeholders));
    let axes = out_axes(outs.len())?;
    if axes.len() != outs.len() {
        return transform_err(
            "vmap",
            format!(
                "out_axes has {} entries for {} outputs",
                axes.len(),
                outs.len()
            ),
        );
    }
    let leaf_nodes: Vec<Tensor> = leaves.iter().map(|(p, _)| p.clone()).collect();
    let mut bmap: HashMap<u64, Tensor> = leaves.iter().map(|(p, m)| (p.id(), m.clone())).collect();
    let (order, _) = between(&outs, &leaf_nodes);
    traced(|| {
        for n in order {
            let ins = n.inputs();
            let batched: Vec<bool> = ins.iter().map(|x| bmap.contains_key(&x.id())).collect();
            let args: Vec<Tensor> = ins
                .iter()
                .map(|x| bmap.get(&x.id()).cloned().unwrap_or_else(|| x.clone()))
                .collect();
            let b = n.op().prim().batch(&args, &n, &batched, size)?;
            check_batched(&n, &b, size)?;
            bmap.insert(n.id(), b);
        }
        Ok::<(), crate::Error>(())
    })?;
    outs.iter()
        .zip(axes)
        .enumerate()
        .map(|(k, (o, ax))| {
            let b = bmap.get(&o.id());
            match (b, ax) {
                (None, None) => Ok(o.clone()),
                (Some(_), None) => transform_err("vmap", format!("out_axes is None for output {k}, which depends on the batched arguments")),
                (b, Some(ax)) => {
                    let b = match b {
                        Some(b) => b.clone(),
                        None => with_batch(o, false, size)?,
                    };
                    let a = norm_axis("vmap", ax, b.rank()).map_err(|_| crate::Error::Transform {
                        transform: "vmap",
                        msg: format!("out_axes {ax} is out of range for output {k} of batched shape {:?}", b.shape()),
                    })?;
                    b.try_moveaxis(0, a as isize)
                }
            }
        })
        .collect()
}

/// A batching rule's result must be its node's shape with the batch axis in front: anything
/// else is a bug in the rule, reported as one.
fn check_batched(n: &Tensor, b: &Tensor, size: usize) -> crate::Result<()> {
    if b.shape().first() == Some(&size) && b.shape()[1..] == *n.shape() {
        return Ok(());
    }
    Err(crate::Error::Internal(format!(
        "{} batching rule: result of shape {:?} for a node of shape {:?} batched by {size}",
        n.op().name(),
        b.shape(),
        n.shape()
    )))
}
