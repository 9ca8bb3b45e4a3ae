//! Forward mode on the graph: run the function on fresh aliases of the primals, then push
//! tangents through every node between them and the outputs with each primitive's JVP rule.
//! The tangents are graph nodes, so they can be differentiated, batched and realized again.

use crate::base::error::{Result, transform_err};
use crate::ir::graph::between;
use crate::ir::tensor::Tensor;
use std::collections::HashMap;

/// Checks that tangents match primals in number, shape and dtype.
pub(crate) fn check_tangents(
    transform: &'static str,
    primals: &[Tensor],
    tangents: &[Option<Tensor>],
) -> Result<()> {
    if primals.len() != tangents.len() {
        return transform_err(
            transform,
            format!(
                "got {} tangents for {} primals",
                tangents.len(),
                primals.len()
            ),
        );
    }
    for (k, (p, t)) in primals.iter().zip(tangents).enumerate() {
        if let Some(t) = t {
            if t.shape() != p.shape() || t.dtype() != p.dtype() {
                return transform_err(
                    transform,
                    format!(
                        "tangent {k} is {}{:?} but its primal is {}{:?}; they must match",
                        t.dtype(),
                        t.shape(),
                        p.dtype(),
                        p.shape()
                    ),
                );
            }
        }
    }
    Ok(())
}

/// Pushes tangents from `leaves` to `outs` (`None` = zero tangent).
pub(crate) fn push_tangents(
    leaves: &[Tensor],
    tangents: &[Option<Tensor>],
    outs: &[Tensor],
) -> Result<Vec<Option<Tensor>>> {
    let mut tmap: HashMap<u64, Tensor> = HashMap::new();
    for (l, t) in leaves.iter().zip(tangents) {
        if let Some(t) = t {
            tmap.insert(l.id(), t.clone());
        }
    }
    let (order, _) = between(outs, leaves);
    for n in order {
        let ins = n.inputs();
        let ts: Vec<Option<Tensor>> = ins.iter().map(|x| tmap.get(&x.id()).cloned()).collect();
        if ts.iter().all(|t| t.is_none()) {
            continue;
        }
        if let Some(t) = n.op().prim().jvp(&ins, &n, &ts)? {
            tmap.insert(n.id(), t);
        }
    }
    Ok(outs.iter().map(|o| tmap.get(&o.id()).cloned()).collect())
}

/// `(f(primals), J·tangents)` on flat lists of tensors; the output tangents default to zeros.
pub(crate) fn jvp_flat(
    f: &dyn Fn(&[Tensor]) -> Vec<Tensor>,
    primals: &[Tensor],
    tangents: &[Option<Tensor>],
    create_graph: bool,
) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
    check_tangents("jvp", primals, tangents)?;
    let leaves: Vec<Tensor> = primals.iter().map(|p| p.alias()).collect();
    let outs = crate::ir::trace::differentiating(&leaves, || f(&leaves));
    let touts = push_tangents(&leaves, tangents, &outs)?
        .into_iter()
        .zip(&outs)
        .map(|(t, o)| {
            let t = t.unwrap_or_else(|| o.zeros_like());
            if create_graph { t } else { t.stop_gradient() }
        })
        .collect();
    Ok((outs, touts))
}
