//! Collect: the pending graph a realize computes, in the order its kernels run.

use crate::ir::tensor::Tensor;
use std::collections::{HashMap, HashSet};

/// Collect: the nodes without a device value that `targets` need, inputs before consumers.
///
/// Among a node's inputs the deepest pending one (longest chain of pending nodes below it) is
/// computed first and the shallowest last, just before the node (Sethi–Ullman's order): a
/// short side computation (a checkpointed layer recomputed in the backward pass, a mask) then
/// runs where it is used instead of at the start, so its buffers are not held across the
/// long chain.
pub(crate) fn collect(targets: &[Tensor]) -> Vec<Tensor> {
    let first = postorder(targets, |_| 0);
    let mut depth: HashMap<u64, usize> = HashMap::with_capacity(first.len());
    for t in &first {
        let d = t
            .inputs()
            .iter()
            .filter_map(|x| depth.get(&x.id()))
            .max()
            .map_or(0, |d| d + 1);
        depth.insert(t.id(), d);
    }
    // Targets shallowest first: each is finished (and the buffers only it needed released)
    // before deeper work starts. The gradients of a deep network's layers, say: the last
    // layer's weight gradient is computed as soon as its cotangent is, not after the whole
    // backward pass with every layer's cotangent held.
    let mut sorted: Vec<(usize, usize, Tensor)> = targets
        .iter()
        .enumerate()
        .map(|(k, t)| (depth.get(&t.id()).copied().unwrap_or(0), k, t.clone()))
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let targets: Vec<Tensor> = sorted.into_iter().map(|(_, _, t)| t).collect();
    postorder(&targets, |x| depth.get(&x.id()).copied().unwrap_or(0))
}

/// Depth-first postorder of the pending nodes below `targets`; a node's inputs are visited in
/// decreasing `rank` (ties in input order).
fn postorder(targets: &[Tensor], rank: impl Fn(&Tensor) -> usize) -> Vec<Tensor> {
    let mut order = vec![];
    let mut seen = HashSet::new();
    let mut stack: Vec<(Tensor, bool)> = targets.iter().rev().map(|t| (t.clone(), false)).collect();
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            order.push(t);
            continue;
        }
        if t.is_realized() || !seen.insert(t.id()) {
            continue;
        }
        stack.push((t.clone(), true));
        let mut inputs: Vec<(usize, usize, Tensor)> = t
            .inputs()
            .into_iter()
            .enumerate()
            .filter(|(_, x)| !x.is_realized() && !seen.contains(&x.id()))
            .map(|(k, x)| (rank(&x), k, x))
            .collect();
        // Pushed so that the deepest (then the first) input is popped first.
        inputs.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        for (_, _, x) in inputs {
            stack.push((x, false));
        }
    }
    order
}
