//! Reverse mode on the graph: run the function on fresh aliases of the primals, keep the nodes
//! between them and the outputs, and pull cotangents back through them with each primitive's
//! VJP rule. The pullback keeps its own copy of that subgraph, so it can be called many times,
//! even after the outputs were realized.

use crate::base::error::{Result, transform_err};
use crate::ir::graph::between;
use crate::ir::tensor::Tensor;
use std::collections::{HashMap, HashSet};

/// A pullback on flat lists of tensors.
#[derive(Clone)]
pub(crate) struct FlatPullback {
    leaves: Vec<Tensor>,
    outs: Vec<Tensor>,
    /// Nodes between leaves and outputs with their operands, inputs first.
    order: Vec<(Tensor, Vec<Tensor>)>,
    depends: HashSet<u64>,
    create_graph: bool,
}

impl FlatPullback {
    pub(crate) fn new(leaves: Vec<Tensor>, outs: Vec<Tensor>, create_graph: bool) -> Self {
        let (order, depends) = between(&outs, &leaves);
        let order = order.into_iter().map(|n| (n.clone(), n.inputs())).collect();
        FlatPullback {
            leaves,
            outs,
            order,
            depends,
            create_graph,
        }
    }

    /// Cotangents of the primals for the output cotangents `cts` (`None` = zero).
    pub(crate) fn call(&self, cts: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
        if cts.len() != self.outs.len() {
            return transform_err(
                "vjp",
                format!(
                    "pullback got {} cotangents for {} outputs",
                    cts.len(),
                    self.outs.len()
                ),
            );
        }
        for (k, (o, c)) in self.outs.iter().zip(cts).enumerate() {
            if let Some(c) = c {
                if c.shape() != o.shape() {
                    return transform_err(
                        "vjp",
                        format!(
                            "cotangent {k} has shape {:?} but output {k} has shape {:?}",
                            c.shape(),
                            o.shape()
                        ),
                    );
                }
            }
        }
        let mut ctmap: HashMap<u64, Tensor> = HashMap::new();
        let add = |map: &mut HashMap<u64, Tensor>, id: u64, g: Tensor| {
            let sum = match map.remove(&id) {
                Some(prev) => prev + g,
                None => g,
            };
            map.insert(id, sum);
        };
        for (o, c) in self.outs.iter().zip(cts) {
            if let Some(c) = c {
                if self.depends.contains(&o.id()) {
                    add(&mut ctmap, o.id(), c.cast(o.dtype()));
                }
            }
        }
        crate::ir::trace::traced(|| {
            for (n, ins) in self.order.iter().rev() {
                let Some(ct) = ctmap.remove(&n.id()) else {
                    continue;
                };
                let needs: Vec<bool> = ins.iter().map(|x| self.depends.contains(&x.id())).collect();
                let grads = n.op().prim().vjp(ins, n, &ct, &needs)?;
                check_cotangents(n, ins, &grads)?;
                for ((x, g), need) in ins.iter().zip(grads).zip(needs) {
                    if let (Some(g), true) = (g, need) {
                        add(&mut ctmap, x.id(), g);
                    }
                }
            }
            Ok::<(), crate::Error>(())
        })?;
        Ok(self
            .leaves
            .iter()
            .map(|l| {
                let g = ctmap
                    .get(&l.id())
                    .cloned()
                    .unwrap_or_else(|| l.zeros_like());
                if self.create_graph {
                    g
                } else {
                    g.stop_gradient()
                }
            })
            .collect())
    }
}

/// A VJP rule's result must have one cotangent per input, each of its input's shape: anything
/// else is a bug in the rule, reported as one (not truncated by a `zip`).
fn check_cotangents(n: &Tensor, ins: &[Tensor], grads: &[Option<Tensor>]) -> Result<()> {
    let bad = |msg: String| {
        Err(crate::Error::Internal(format!(
            "{} VJP: {msg}",
            n.op().name()
        )))
    };
    if grads.len() != ins.len() {
        return bad(format!(
            "{} cotangents for {} inputs",
            grads.len(),
            ins.len()
        ));
    }
    for (k, (x, g)) in ins.iter().zip(grads).enumerate() {
        if let Some(g) = g {
            if g.shape() != x.shape() {
                return bad(format!(
                    "cotangent {k} has shape {:?}, input {k} has shape {:?}",
                    g.shape(),
                    x.shape()
                ));
            }
        }
    }
    Ok(())
}

/// `f(primals)` and its pullback, on flat lists of tensors.
pub(crate) fn vjp_flat(
    f: &dyn Fn(&[Tensor]) -> Vec<Tensor>,
    primals: &[Tensor],
    create_graph: bool,
) -> (Vec<Tensor>, FlatPullback) {
    let leaves: Vec<Tensor> = primals.iter().map(|p| p.alias()).collect();
    let outs = crate::ir::trace::differentiating(&leaves, || f(&leaves));
    let pb = FlatPullback::new(leaves, outs.clone(), create_graph);
    (outs, pb)
}
