//! Walking the lazy graph: the nodes between a transform's arguments and its outputs, a
//! jaxpr-like printout, and a loop body's structural key.

use crate::ir::op::Fusion;
use crate::ir::tensor::Tensor;
use std::collections::{HashMap, HashSet};

/// Nodes reachable from `outs` that depend on one of `leaves` (leaves excluded), inputs first,
/// and the set of ids that depend on a leaf (leaves included).
pub(crate) fn between(outs: &[Tensor], leaves: &[Tensor]) -> (Vec<Tensor>, HashSet<u64>) {
    let leaf_ids: HashSet<u64> = leaves.iter().map(|t| t.id()).collect();
    let mut depends: HashSet<u64> = leaf_ids.clone();
    let mut visited: HashSet<u64> = HashSet::new();
    let mut order = vec![];
    let mut stack: Vec<(Tensor, bool)> = outs.iter().map(|t| (t.clone(), false)).collect();
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            if t.inputs().iter().any(|x| depends.contains(&x.id())) {
                depends.insert(t.id());
                order.push(t);
            }
            continue;
        }
        if leaf_ids.contains(&t.id()) || !visited.insert(t.id()) {
            continue;
        }
        stack.push((t.clone(), true));
        for x in t.inputs() {
            if !visited.contains(&x.id()) {
                stack.push((x, false));
            }
        }
    }
    (order, depends)
}

/// A jaxpr-like listing of the graph that computes `outs`: one line per node, realized tensors
/// and uploaded data as inputs.
///
/// ```
/// use wgrad::prelude::*;
/// let x = Tensor::from_vec(vec![1.0f32, 2.0], [2]);
/// let g = grad(|x: &Tensor| x.sin().sum_all())(&x);
/// let text = wgrad::graph_string(&[g]);
/// assert!(text.contains("cos"));
/// ```
pub fn graph_string(outs: &[Tensor]) -> String {
    let mut order = vec![];
    let mut seen = HashSet::new();
    let mut stack: Vec<(Tensor, bool)> = outs.iter().rev().map(|t| (t.clone(), false)).collect();
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            order.push(t);
            continue;
        }
        if !seen.insert(t.id()) {
            continue;
        }
        stack.push((t.clone(), true));
        if !t.has_value() {
            for x in t.inputs().into_iter().rev() {
                stack.push((x, false));
            }
        }
    }
    let names: HashMap<u64, String> = order
        .iter()
        .enumerate()
        .map(|(k, t)| (t.id(), format!("%{k}")))
        .collect();
    let ty = |t: &Tensor| format!("{}{:?}", t.dtype(), t.shape());
    let mut inputs = vec![];
    let mut lines = vec![];
    for t in &order {
        let n = &names[&t.id()];
        if t.has_value() {
            inputs.push(format!("{n}:{}", ty(t)));
            continue;
        }
        let args: Vec<String> = t.inputs().iter().map(|x| names[&x.id()].clone()).collect();
        let line = format!(
            "    {n}:{} = {} {}",
            ty(t),
            t.op().describe(),
            args.join(" ")
        );
        lines.push(line.trim_end().to_string());
    }
    let outs: Vec<String> = outs.iter().map(|t| names[&t.id()].clone()).collect();
    format!(
        "{{ lambda {} .\n{}\n  in ({}) }}",
        inputs.join(" "),
        lines.join("\n"),
        outs.join(", ")
    )
}

/// A loop body's structure, values included: its nodes (ops, run-time values, shapes, dtypes,
/// wiring) over numbered `leaves` (placeholders, then captured tensors), and its outputs. Two
/// bodies with the same key lower to the same kernels and compute the same values (views
/// that keep shape and dtype are skipped: an alias, a stop_gradient).
pub(crate) fn body_key(order: &[Tensor], leaves: &[Tensor], outputs: &[Tensor]) -> String {
    use std::fmt::Write;
    let mut name: HashMap<u64, String> = HashMap::new();
    for (k, t) in leaves.iter().enumerate() {
        name.entry(t.id()).or_insert_with(|| format!("l{k}"));
    }
    let mut key = String::with_capacity(order.len() * 48);
    let mut k = 0;
    for n in order {
        // A view that keeps shape and dtype (an alias) is its operand, for the values.
        if let (Fusion::View, [x]) = (n.op().fusion(), &n.inputs()[..]) {
            if x.shape() == n.shape() && x.dtype() == n.dtype() {
                if let Some(r) = name.get(&x.id()).cloned() {
                    name.insert(n.id(), r);
                    continue;
                }
            }
        }
        n.op().write_structure(&mut key);
        for w in 0..2 {
            if let Some(v) = n.op().value_word(n.dtype(), w) {
                let _ = write!(key, "={v}");
            }
        }
        let _ = write!(key, "{:?}{:?}(", n.shape(), n.dtype());
        for x in n.inputs() {
            let r = name.get(&x.id()).map_or("?", String::as_str);
            let _ = write!(key, "{r},");
        }
        key.push(')');
        name.insert(n.id(), format!("n{k}"));
        k += 1;
    }
    key.push('|');
    for o in outputs {
        let r = name.get(&o.id()).map_or("?", String::as_str);
        let _ = write!(key, "{r},");
    }
    key
}
