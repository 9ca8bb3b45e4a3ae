//! Plans: a pending graph's structure as a key, and what lowering made of it, which the
//! runtime keeps per device so that a graph of the same structure (the next training step) is
//! not lowered again.

use crate::base::error::Result;
use crate::base::error::internal;
use crate::base::limits::Limits;
use crate::base::policy::Policy;
use crate::device::pipelines::Compiled;
use crate::ir::tensor::Tensor;
use crate::kernel::{BufRef, Kernel};
use crate::schedule::buffers::{Assignment, assign_buffers, kernel_io};
use crate::schedule::group::plan;
use crate::schedule::lower::lower;
use std::collections::{HashMap, HashSet};

/// A pending graph's structure, for the plan cache: a key that is equal for graphs with the
/// same ops (values of constants and random keys aside), shapes, dtypes, wiring and targets,
/// and the graph's external inputs in the order the key numbers them.
pub(crate) struct Structure {
    pub(crate) key: String,
    pub(crate) externals: Vec<Tensor>,
    /// Each pending node's position in the order, by id.
    pub(crate) position: HashMap<u64, usize>,
}

impl Structure {
    pub(crate) fn of(order: &[Tensor], targets: &[Tensor], policy: &Policy) -> Structure {
        use std::fmt::Write;
        let position: HashMap<u64, usize> =
            order.iter().enumerate().map(|(k, t)| (t.id(), k)).collect();
        let mut externals: Vec<Tensor> = vec![];
        let mut external_of: HashMap<u64, usize> = HashMap::new();
        let mut key = String::with_capacity(order.len() * 48 + 256);
        let _ = write!(key, "{policy:?}|");
        let mut refer = |key: &mut String, x: &Tensor| {
            if let Some(p) = position.get(&x.id()) {
                let _ = write!(key, "n{p},");
            } else {
                let k = *external_of.entry(x.id()).or_insert_with(|| {
                    externals.push(x.clone());
                    externals.len() - 1
                });
                let _ = write!(key, "e{k}:{:?}{:?},", x.shape(), x.dtype());
            }
        };
        for n in order {
            n.op().write_structure(&mut key);
            let _ = write!(key, "{:?}{:?}(", n.shape(), n.dtype());
            for x in n.inputs() {
                refer(&mut key, &x);
            }
            key.push(')');
        }
        key.push('|');
        for t in targets {
            if t.is_realized() && !position.contains_key(&t.id()) {
                key.push_str("r,");
            } else {
                refer(&mut key, t);
            }
        }
        Structure {
            key,
            externals,
            position,
        }
    }
}

/// A realize's lowered work, reusable by any graph of the same [`Structure`]: kernels over
/// virtual buffers (externals included), which of their params hold which node's value, the
/// buffer assignment, and where each target's value lives.
pub(crate) struct Plan {
    pub(crate) kernels: Vec<Kernel>,
    /// Per kernel: `(param index, position in the order, word)`.
    pub(crate) values: Vec<Vec<(usize, usize, u8)>>,
    pub(crate) assignment: Assignment,
    pub(crate) targets: Vec<Option<BufRef>>,
    pub(crate) fused: u64,
    /// The kernels' pipelines, once a realize has looked them up (a hit then skips hashing
    /// each kernel's source).
    pub(crate) pipelines: std::sync::OnceLock<Vec<Option<Compiled>>>,
}

impl Plan {
    /// The plan's kernels with the params refreshed from `order`'s constants and keys.
    pub(crate) fn kernels_for(&self, order: &[Tensor]) -> Result<Vec<Kernel>> {
        let mut kernels = self.kernels.clone();
        for (k, values) in kernels.iter_mut().zip(&self.values) {
            for &(param, pos, word) in values {
                let n = &order[pos];
                k.params[param] = n
                    .op()
                    .value_word(n.dtype(), word)
                    .ok_or_else(|| internal("a cached plan's value moved".into()))?;
            }
        }
        Ok(kernels)
    }
}

/// Plans and lowers `order` with its externals as virtual buffers; the plan it makes can be
/// reused by later graphs of the same structure (the flag is false when it cannot: a kernel
/// that binds a buffer directly, a value param whose node is not in the order).
pub(crate) fn make_plan(
    order: &[Tensor],
    targets: &[Tensor],
    structure: &Structure,
    limits: &Limits,
    policy: &Policy,
) -> Result<(Plan, bool)> {
    let mut computed = HashMap::new();
    for (k, t) in structure.externals.iter().enumerate() {
        computed.insert(t.id(), BufRef::External(k));
    }
    let mut roots = plan(order, targets, policy);
    let lowering = lower(order, &mut roots, targets, limits, policy, computed, 0)?;
    let position = &structure.position;
    let mut reusable = true;
    let mut values = vec![];
    for k in &lowering.kernels {
        let mut v = vec![];
        for &(param, node, word) in &k.origins {
            match position.get(&node) {
                Some(&p) => v.push((param, p, word)),
                None => reusable = false,
            }
        }
        values.push(v);
        if k.inputs
            .iter()
            .chain([&k.out])
            .chain(k.extra_outs.iter().map(|(b, _)| b))
            .any(|b| matches!(b, BufRef::Real(_)))
        {
            reusable = false;
        }
    }
    let targets: Vec<Option<BufRef>> = targets
        .iter()
        .map(|t| lowering.computed.get(&t.id()).cloned())
        .collect();
    let keep: HashSet<usize> = targets
        .iter()
        .filter_map(|b| match b {
            Some(BufRef::Virtual(v)) => Some(*v),
            _ => None,
        })
        .collect();
    let io = kernel_io(&lowering.kernels)?;
    let assignment = assign_buffers(&io, &keep);
    let kernels = lowering
        .kernels
        .into_iter()
        .map(|mut k| {
            k.inlined.clear();
            k
        })
        .collect();
    Ok((
        Plan {
            kernels,
            values,
            assignment,
            targets,
            fused: lowering.fused,
            pipelines: std::sync::OnceLock::new(),
        },
        reusable,
    ))
}
