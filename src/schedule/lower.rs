//! Lower: each root through its primitive into kernels over virtual buffers, with the
//! binding-limit repair as a fixpoint per root.

use crate::base::error::{Result, internal};
use crate::base::limits::Limits;
use crate::base::policy::Policy;
use crate::ir::op::Fusion;
use crate::ir::tensor::Tensor;
use crate::kernel::{BufRef, Kernel};
use crate::prim::emit::view_buffer;
use crate::prim::lower::{LowerCx, Lowered, elementwise_kernel, elementwise_multi_kernel};
use crate::schedule::group::{cheap, defer_final_updates, epilogues, plan, siblings_of};
use std::collections::{HashMap, HashSet};

/// What lowering produced: the kernels in order, where each root's value lives, and how many
/// nodes were fused into another node's kernel.
pub(crate) struct Lowering {
    pub(crate) kernels: Vec<Kernel>,
    pub(crate) computed: HashMap<u64, BufRef>,
    pub(crate) fused: u64,
    pub(crate) next_virtual: usize,
}

/// Lower: every root through its primitive, in order. A kernel that would bind more buffers
/// than the device allows is repaired until it fits (see [`Pass::lower_root`]).
pub(crate) fn lower(
    order: &[Tensor],
    roots: &mut HashSet<u64>,
    targets: &[Tensor],
    limits: &Limits,
    policy: &Policy,
    computed: HashMap<u64, BufRef>,
    next_virtual: usize,
) -> Result<Lowering> {
    let deferred;
    let order = if policy.multi_output && policy.horizontal {
        deferred = defer_final_updates(order, targets);
        &deferred[..]
    } else {
        order
    };
    let epilogue_of = if policy.epilogues.unwrap_or(!limits.cpu) {
        epilogues(order, roots, targets)
    } else {
        HashMap::new()
    };
    let mut pass = Pass {
        order,
        position: order.iter().enumerate().map(|(k, t)| (t.id(), k)).collect(),
        covered_by: covering_roots(order),
        absorbed: epilogue_of.values().map(|r| r.id()).collect(),
        epilogue_of,
        roots,
        limits,
        policy,
        max_bindings: limits.max_storage_buffers.max(3) as usize,
        computed,
        next_virtual,
        kernels: vec![],
        fused: 0,
    };
    for i in 0..order.len() {
        pass.visit(i)?;
    }
    Ok(Lowering {
        kernels: pass.kernels,
        computed: pass.computed,
        fused: pass.fused,
        next_virtual: pass.next_virtual,
    })
}

/// Kernel roots whose value is the start of another's (see `Op::prefix_of`): the other is
/// computed in their place and they share its buffer.
fn covering_roots(order: &[Tensor]) -> HashMap<u64, Tensor> {
    let heavy: Vec<&Tensor> = order
        .iter()
        .filter(|t| matches!(t.op().fusion(), Fusion::KernelRoot { .. }))
        .collect();
    let mut covered_by = HashMap::new();
    for a in &heavy {
        if let Some(b) = heavy.iter().find(|b| a.op().prefix_of(a, b)) {
            covered_by.insert(a.id(), (*b).clone());
        }
    }
    covered_by
}

/// The state of one lowering: what is computed where, the kernels so far.
struct Pass<'a> {
    order: &'a [Tensor],
    position: HashMap<u64, usize>,
    covered_by: HashMap<u64, Tensor>,
    /// Elementwise root → the kernel root that computes it in its store.
    epilogue_of: HashMap<u64, Tensor>,
    /// Kernel roots whose kernels an epilogue's root runs (not at their own position).
    absorbed: HashSet<u64>,
    roots: &'a mut HashSet<u64>,
    limits: &'a Limits,
    policy: &'a Policy,
    max_bindings: usize,
    computed: HashMap<u64, BufRef>,
    next_virtual: usize,
    kernels: Vec<Kernel>,
    fused: u64,
}

/// One attempt at a root's kernels: the kernels, the root's buffer, the siblings computed in
/// them (id, buffer), the epilogue's root used, and the next free virtual number after them.
struct Attempt {
    kernels: Vec<Kernel>,
    out: BufRef,
    group: Vec<(u64, BufRef)>,
    epilogue: Option<Tensor>,
    next_virtual: usize,
}

/// How to make a kernel that binds too many buffers fit.
enum Repair {
    /// Compute the epilogue's kernel root on its own after all.
    DropEpilogue(Tensor),
    /// Give this fused input a kernel of its own.
    NewRoot(Tensor),
}

impl Pass<'_> {
    /// The node at position `i`, if it needs kernels now: a covered kernel root shares its
    /// cover's buffer (computing the cover now if needed); a view of a computed buffer is
    /// that buffer; other roots are lowered.
    fn visit(&mut self, i: usize) -> Result<()> {
        let n = &self.order[i];
        if let Some(b) = self.covered_by.get(&n.id()).cloned() {
            if let Some(buf) = self.computed.get(&b.id()).cloned() {
                self.computed.insert(n.id(), buf);
                return Ok(());
            }
            let out = BufRef::Virtual(self.next_virtual);
            let (ks, next) = self.root_kernels(&b, None, out.clone(), self.next_virtual + 1)?;
            self.next_virtual = next;
            self.computed.insert(b.id(), out.clone());
            self.computed.insert(n.id(), out);
            self.kernels.extend(ks);
            return Ok(());
        }
        if !self.roots.contains(&n.id())
            || self.computed.contains_key(&n.id())
            || self.absorbed.contains(&n.id())
        {
            return Ok(());
        }
        if let Some(b) = view_buffer(n, |id| self.computed.get(&id).cloned()) {
            self.computed.insert(n.id(), b);
            return Ok(());
        }
        self.lower_root(i)
    }

    /// Lowers the root at position `i`, repairing to a fixpoint: while its kernels would bind
    /// more buffers than the device allows, either its epilogue's root is computed on its
    /// own, or one of the inputs fused into it (the middle one, in fusion order) becomes a
    /// root and is lowered first; then the root is lowered again. Each repair makes a kernel
    /// of something that had none, so this ends.
    fn lower_root(&mut self, i: usize) -> Result<()> {
        let n = self.order[i].clone();
        loop {
            let attempt = self.attempt(i)?;
            let Some(repair) = self.repair_for(&n, &attempt)? else {
                return self.commit(&n, attempt);
            };
            let fixed = match repair {
                Repair::DropEpilogue(r) => {
                    self.epilogue_of.remove(&n.id());
                    self.absorbed.remove(&r.id());
                    r
                }
                Repair::NewRoot(pick) => {
                    self.roots.insert(pick.id());
                    pick
                }
            };
            let at = *self.position.get(&fixed.id()).ok_or_else(|| {
                internal(format!(
                    "{}: a repair picked a node outside the order",
                    n.op().name()
                ))
            })?;
            self.visit(at)?;
            if !self.computed.contains_key(&fixed.id()) {
                return Err(internal(format!(
                    "{}: the binding-limit repair made no progress",
                    n.op().name()
                )));
            }
        }
    }

    /// The root's kernels as things stand (nothing recorded yet).
    fn attempt(&self, i: usize) -> Result<Attempt> {
        let n = &self.order[i];
        let out = BufRef::Virtual(self.next_virtual);
        let next = self.next_virtual + 1;
        let epilogue = self.epilogue_of.get(&n.id()).cloned();
        let (kernels, group, next_virtual) = match (n.op().fusion(), &epilogue) {
            // `n` is computed in the store of `r`'s kernel.
            (_, Some(r)) => {
                let (ks, next) = self.root_kernels(r, Some(n), out.clone(), next)?;
                (ks, vec![], next)
            }
            (Fusion::KernelRoot { .. }, None) => {
                let (ks, next) = self.root_kernels(n, None, out.clone(), next)?;
                (ks, vec![], next)
            }
            (_, None) => self.elementwise_kernels(i, out.clone(), next)?,
        };
        Ok(Attempt {
            kernels,
            out,
            group,
            epilogue,
            next_virtual,
        })
    }

    /// An elementwise root's kernel, with the siblings that can share it when they fit
    /// (see [`siblings_of`]): the kernels, the siblings' (id, buffer), the next free number.
    #[allow(clippy::type_complexity)]
    fn elementwise_kernels(
        &self,
        i: usize,
        out: BufRef,
        mut next_virtual: usize,
    ) -> Result<(Vec<Kernel>, Vec<(u64, BufRef)>, usize)> {
        let n = &self.order[i];
        let (limits, policy) = (self.limits, self.policy);
        let single = || elementwise_kernel(n, &self.computed, limits, policy, out.clone());
        let siblings = if policy.multi_output {
            let claimed = |id| self.absorbed.contains(&id) || self.epilogue_of.contains_key(&id);
            let rest = &self.order[i + 1..];
            siblings_of(
                n,
                rest,
                self.roots,
                &self.computed,
                &claimed,
                policy,
                limits,
            )
        } else {
            vec![]
        };
        if siblings.is_empty() {
            return Ok((vec![single()?], vec![], next_virtual));
        }
        let extra: Vec<BufRef> = siblings
            .iter()
            .map(|_| {
                next_virtual += 1;
                BufRef::Virtual(next_virtual - 1)
            })
            .collect();
        let mut nodes = vec![n.clone()];
        nodes.extend(siblings.iter().cloned());
        let k = elementwise_multi_kernel(
            &nodes,
            &self.computed,
            limits,
            policy,
            out.clone(),
            extra.clone(),
        )?;
        if k.storage_bindings() > self.max_bindings || k.out_windows > 1 {
            return Ok((vec![single()?], vec![], next_virtual));
        }
        let group = siblings.iter().map(|s| s.id()).zip(extra).collect();
        Ok((vec![k], group, next_virtual))
    }

    /// What to change when `attempt`'s kernels bind more buffers than the device allows
    /// (`None` when they fit); an error when nothing can be split off.
    fn repair_for(&self, n: &Tensor, attempt: &Attempt) -> Result<Option<Repair>> {
        if !attempt
            .kernels
            .iter()
            .any(|k| k.storage_bindings() > self.max_bindings)
        {
            return Ok(None);
        }
        if let Some(r) = &attempt.epilogue {
            return Ok(Some(Repair::DropEpilogue(r.clone())));
        }
        // Kernels name their fused nodes by id, in the order they were fused.
        let candidates: Vec<&Tensor> = attempt
            .kernels
            .iter()
            .flat_map(|k| &k.inlined)
            .filter_map(|id| self.position.get(id).map(|&p| &self.order[p]))
            .filter(|t| !t.same(n) && !cheap(t, self.roots))
            .collect();
        match candidates.get(candidates.len() / 2) {
            Some(pick) => Ok(Some(Repair::NewRoot((*pick).clone()))),
            None => Err(crate::Error::TooLarge {
                op: n.op().name(),
                msg: format!(
                    "a kernel would bind more than {} storage buffers",
                    self.max_bindings
                ),
            }),
        }
    }

    /// Records a root's kernels that fit.
    fn commit(&mut self, n: &Tensor, attempt: Attempt) -> Result<()> {
        self.fused += attempt
            .kernels
            .iter()
            .map(|k| k.inlined.iter().filter(|&&t| t != n.id()).count() as u64)
            .sum::<u64>();
        self.next_virtual = attempt.next_virtual;
        self.computed.insert(n.id(), attempt.out);
        for (id, b) in attempt.group {
            self.computed.insert(id, b);
        }
        self.kernels.extend(attempt.kernels);
        Ok(())
    }

    fn root_kernels(
        &self,
        r: &Tensor,
        epilogue: Option<&Tensor>,
        out: BufRef,
        next_virtual: usize,
    ) -> Result<(Vec<Kernel>, usize)> {
        root_kernels(
            r,
            epilogue,
            out,
            &self.computed,
            self.limits,
            self.policy,
            next_virtual,
        )
    }
}

/// The kernels of kernel root `r` that write `out` (computing `epilogue`, an elementwise
/// consumer of `r`, in their store instead of `r`'s own value), scratch buffers numbered from
/// `next_virtual`; and the next free number.
fn root_kernels(
    r: &Tensor,
    epilogue: Option<&Tensor>,
    out: BufRef,
    computed: &HashMap<u64, BufRef>,
    limits: &Limits,
    policy: &Policy,
    next_virtual: usize,
) -> Result<(Vec<Kernel>, usize)> {
    let mut cx = LowerCx::root(limits, policy, computed, out, next_virtual);
    if let Some(e) = epilogue {
        cx = cx.with_epilogue(e.clone());
    }
    match r.op().prim().lower(r, &mut cx)? {
        Lowered::Kernels(ks) => Ok((ks, cx.next_virtual())),
        Lowered::Body(_) => Err(internal(format!(
            "{} {} but lowered to a node body",
            r.op().name(),
            if epilogue.is_some() {
                "took an epilogue"
            } else {
                "is a kernel root"
            }
        ))),
    }
}

/// A loop body's schedule: `order` (the body's nodes, inputs first) lowered with `seeds`
/// (its placeholders' and captured tensors' buffers) and virtual buffers numbered from
/// `next_virtual`. Returns the kernels (their scalars baked in: the body is part of the
/// loop's structure, values included), the buffer of each of `outputs`, and the next free
/// virtual number.
pub(crate) fn lower_body(
    order: &[Tensor],
    outputs: &[Tensor],
    seeds: HashMap<u64, BufRef>,
    limits: &Limits,
    policy: &Policy,
    next_virtual: usize,
) -> Result<(Vec<Kernel>, Vec<BufRef>, usize)> {
    // Epilogues pay in a loop body on every adapter (unless turned off): each launch they
    // save is saved once per step.
    let policy = &Policy {
        epilogues: policy.epilogues.or(Some(true)),
        ..policy.clone()
    };
    let mut roots = plan(order, outputs, policy);
    let lowering = lower(
        order,
        &mut roots,
        outputs,
        limits,
        policy,
        seeds,
        next_virtual,
    )?;
    let bufs = outputs
        .iter()
        .map(|o| {
            lowering
                .computed
                .get(&o.id())
                .cloned()
                .ok_or_else(|| internal("a loop body's output has no buffer".into()))
        })
        .collect::<Result<Vec<_>>>()?;
    let kernels = lowering
        .kernels
        .into_iter()
        .map(|mut k| {
            k.origins.clear();
            k
        })
        .collect();
    Ok((kernels, bufs, lowering.next_virtual))
}

/// The kernels that would compute `targets`, generated without a device: tensors that hold
/// values stand in as buffers. (The validation fixture renders every kernel variant with it.)
#[cfg(test)]
pub(crate) fn lower_offline(
    targets: &[Tensor],
    limits: &Limits,
    policy: &Policy,
) -> Result<Vec<Kernel>> {
    let order = crate::schedule::collect::collect(targets);
    let mut computed = HashMap::new();
    for (k, t) in order.iter().filter(|t| t.has_value()).enumerate() {
        computed.insert(t.id(), BufRef::External(k));
    }
    let order: Vec<Tensor> = order.into_iter().filter(|t| !t.has_value()).collect();
    let mut roots = plan(&order, targets, policy);
    Ok(lower(&order, &mut roots, targets, limits, policy, computed, 0)?.kernels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_storage_buffers: u32) -> Limits {
        Limits {
            max_storage_buffers,
            ..Limits::webgpu_default()
        }
    }

    fn policy() -> Policy {
        Policy {
            epilogues: Some(true),
            ..Policy::from_env()
        }
    }

    fn data(k: usize) -> Tensor {
        Tensor::from_vec(vec![k as f32; 16], [4, 4])
    }

    #[test]
    fn a_fused_group_over_the_binding_limit_splits_into_kernels_that_fit() {
        let xs: Vec<Tensor> = (0..12).map(data).collect();
        let total = xs.iter().skip(1).fold(xs[0].clone(), |acc, x| &acc + x);
        let unlimited = lower_offline(std::slice::from_ref(&total), &limits(64), &policy());
        assert_eq!(
            unlimited.unwrap().len(),
            1,
            "12 inputs fit one kernel of 64 bindings"
        );
        let kernels = lower_offline(&[total], &limits(4), &policy()).unwrap();
        assert!(kernels.iter().all(|k| k.storage_bindings() <= 4));
        // Each kernel reads at most 3 of the 12 inputs and earlier partial sums.
        assert!(kernels.len() >= 5, "{} kernels", kernels.len());
    }

    #[test]
    fn an_epilogue_over_the_binding_limit_goes_back_to_a_kernel_of_its_own() {
        let a = data(1).matmul(&data(2));
        let y = &(&a + &data(3)) + &data(4);
        // The matmul computes the sums in its store: x, w, two addends and the output.
        let fused = lower_offline(std::slice::from_ref(&y), &limits(8), &policy()).unwrap();
        assert_eq!(fused.len(), 1);
        assert_eq!(fused[0].storage_bindings(), 5);
        // Four bindings: the matmul alone, then the sums (a, two addends, the output).
        let split = lower_offline(&[y], &limits(4), &policy()).unwrap();
        assert_eq!(split.len(), 2);
        assert!(split.iter().all(|k| k.storage_bindings() <= 4));
    }

    #[test]
    fn a_single_node_over_the_binding_limit_is_an_error_naming_it() {
        let c = Tensor::from_vec(vec![true, false], [2]);
        let y = crate::prim::logic::where_(
            &c,
            &Tensor::from_vec(vec![1.0f32, 2.0], [2]),
            &Tensor::from_vec(vec![3.0f32, 4.0], [2]),
        );
        let Err(err) = lower_offline(&[y], &limits(3), &policy()) else {
            panic!("a select of 3 buffers lowered within 3 bindings");
        };
        let msg = err.to_string();
        assert!(msg.contains("more than 3 storage buffers"), "{msg}");
        assert!(matches!(err, crate::Error::TooLarge { .. }), "{msg}");
    }
}
