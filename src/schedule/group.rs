//! Group: which nodes get kernels of their own (the roots; everything else is fused into the
//! kernels that read it), which roots compute a consumer in their store (epilogues), which
//! elementwise roots share one kernel (multi-output and horizontal groups), and the order
//! that lets a training step's final updates share kernels.

use crate::base::limits::Limits;
use crate::base::policy::Policy;
use crate::ir::op::Fusion;
use crate::ir::tensor::Tensor;
use crate::kernel::BufRef;
use std::collections::{HashMap, HashSet};

/// Whether recomputing `t` in every consumer costs no more than reading a buffer: it has a
/// value or a kernel of its own, or it is a constant, or an index remapping of such a node.
pub(crate) fn cheap(t: &Tensor, roots: &HashSet<u64>) -> bool {
    let mut cur = t.clone();
    loop {
        if cur.is_realized() || roots.contains(&cur.id()) {
            return true;
        }
        match cur.op().fusion() {
            Fusion::IndexMap | Fusion::View => cur = cur.inputs()[0].clone(),
            Fusion::Inline => return cur.inputs().is_empty(),
            Fusion::KernelRoot { .. } => return false,
        }
    }
}

/// Plan: which nodes get kernels of their own (the roots); everything else is fused into the
/// kernels that read it.
pub(crate) fn plan(order: &[Tensor], targets: &[Tensor], policy: &Policy) -> HashSet<u64> {
    let mut consumers: HashMap<u64, usize> = HashMap::new();
    for n in order {
        for x in n.inputs() {
            *consumers.entry(x.id()).or_default() += 1;
        }
    }
    let mut roots: HashSet<u64> = targets.iter().map(|t| t.id()).collect();
    for n in order {
        if matches!(n.op().fusion(), Fusion::KernelRoot { .. }) {
            roots.insert(n.id());
        }
    }
    // A node read by several consumers is computed once, unless recomputing it is only an
    // index remapping of something already in a buffer.
    for n in order {
        if consumers.get(&n.id()).copied().unwrap_or(0) > 1 && !cheap(n, &roots) {
            let mut base = n.clone();
            while matches!(base.op().fusion(), Fusion::IndexMap | Fusion::View)
                && !roots.contains(&base.id())
            {
                base = base.inputs()[0].clone();
            }
            if !base.is_realized() {
                roots.insert(base.id());
            }
        }
    }
    // Long chains (an integrator stepping 10 000 times without a realize, say) are cut every
    // `max_fused_depth` nodes: kernels stay small and code generation shallow.
    let mut depth: HashMap<u64, usize> = HashMap::new();
    for n in order {
        let d = 1 + n
            .inputs()
            .iter()
            .map(|x| depth.get(&x.id()).copied().unwrap_or(0))
            .max()
            .unwrap_or(0);
        let d = if roots.contains(&n.id()) || d > policy.max_fused_depth {
            roots.insert(n.id());
            0
        } else {
            d
        };
        depth.insert(n.id(), d);
    }
    roots
}

/// Epilogues: kernel roots that can compute an elementwise consumer in their store (a matmul
/// followed by a bias, an activation, an update) and whose own value nothing else needs. For
/// each such root R, follow its single consumer through inline nodes of its shape that
/// nothing else reads, up to the next root C: C is computed by R's kernel instead of one of
/// its own. Returns C's id → R.
pub(crate) fn epilogues(
    order: &[Tensor],
    roots: &HashSet<u64>,
    targets: &[Tensor],
) -> HashMap<u64, Tensor> {
    let mut consumers: HashMap<u64, Vec<Tensor>> = HashMap::new();
    for n in order {
        for x in n.inputs() {
            consumers.entry(x.id()).or_default().push(n.clone());
        }
    }
    let target_ids: HashSet<u64> = targets.iter().map(|t| t.id()).collect();
    let mut found: HashMap<u64, Tensor> = HashMap::new();
    for r in order {
        let takes = matches!(r.op().fusion(), Fusion::KernelRoot { epilogue: true });
        if !takes || target_ids.contains(&r.id()) || r.dtype() != crate::DType::F32 {
            continue;
        }
        let mut cur = r.clone();
        while let Some([c]) = consumers.get(&cur.id()).map(Vec::as_slice) {
            if c.op().fusion() != Fusion::Inline || c.shape() != r.shape() {
                break;
            }
            if roots.contains(&c.id()) {
                found.entry(c.id()).or_insert_with(|| r.clone());
                break;
            }
            cur = c.clone();
        }
    }
    found
}

/// What `t` reads through its fused nodes (buffers, inputs, nodes `inside` its kernel) and how
/// many fused nodes that is; `None` when it needs a root that is not computed yet (or fuses
/// more than 256 nodes).
fn fused_reads(
    t: &Tensor,
    inside: &HashSet<u64>,
    roots: &HashSet<u64>,
    computed: &HashMap<u64, BufRef>,
) -> Option<(HashSet<u64>, usize)> {
    let mut reads = HashSet::new();
    let mut seen = HashSet::new();
    let mut stack = t.inputs();
    while let Some(x) = stack.pop() {
        if !seen.insert(x.id()) {
            continue;
        }
        if seen.len() > 256 {
            return None;
        }
        if computed.contains_key(&x.id()) || inside.contains(&x.id()) || x.is_realized() {
            reads.insert(x.id());
            continue;
        }
        if roots.contains(&x.id()) {
            return None;
        }
        stack.extend(x.inputs());
    }
    Some((reads, seen.len()))
}

/// Elementwise roots after `n` in `rest` that can be computed in `n`'s kernel: everything
/// they read through fused nodes is already computed, an input, or `n` itself (or an earlier
/// sibling), and they are not `claimed` (by an epilogue). Of `n`'s shape when they share what
/// they read (an optimizer's moment and parameter updates: one kernel writes all three, their
/// shared values computed once; up to three); with `Policy::horizontal`, also small
/// independent ones of other shapes, no larger than `n` (several parameters' updates in one
/// launch), while the kernel's buffers stay within the device's binding limit.
pub(crate) fn siblings_of(
    n: &Tensor,
    rest: &[Tensor],
    roots: &HashSet<u64>,
    computed: &HashMap<u64, BufRef>,
    claimed: &dyn Fn(u64) -> bool,
    policy: &Policy,
    limits: &Limits,
) -> Vec<Tensor> {
    if n.op().fusion() != Fusion::Inline {
        return vec![];
    }
    let max_bindings = limits.max_storage_buffers.max(3) as usize;
    let window = limits.window_bytes();
    let fits_one_binding = |t: &Tensor| (t.numel() * t.dtype().size()) as u64 <= window;
    let reads_of = |t: &Tensor, inside: &HashSet<u64>| fused_reads(t, inside, roots, computed);
    // Buffers a set of reads binds (group members are computed in the kernel).
    let buffers = |reads: &HashSet<u64>, inside: &HashSet<u64>| {
        reads.iter().filter(|id| !inside.contains(id)).count()
    };
    let mut inside: HashSet<u64> = HashSet::from([n.id()]);
    let Some((mut shared, mut size)) = reads_of(n, &HashSet::new()) else {
        return vec![];
    };
    shared.insert(n.id());
    let mut group: Vec<Tensor> = vec![];
    let mut same_shape = 0;
    for s in rest {
        if group.len() == 7 {
            break;
        }
        if !roots.contains(&s.id())
            || computed.contains_key(&s.id())
            || claimed(s.id())
            || s.op().fusion() != Fusion::Inline
        {
            continue;
        }
        let same = s.shape() == n.shape();
        let horizontal = policy.horizontal
            && s.numel() <= n.numel()
            && s.numel() > 0
            && fits_one_binding(s)
            && fits_one_binding(n);
        if !(horizontal || same && same_shape < 3) {
            continue;
        }
        let Some((reads, k)) = reads_of(s, &inside) else {
            continue;
        };
        // Same-shape siblings must share what they read (else the kernel only grows); the
        // others are worth a launch when the bindings allow.
        let sharing = same && !reads.is_disjoint(&shared);
        if !sharing && !horizontal {
            continue;
        }
        let mut all = shared.clone();
        all.extend(reads.iter().copied());
        let mut with = inside.clone();
        with.insert(s.id());
        // Inputs, the first output and one binding per further output (the scalars are a
        // uniform buffer, not counted here).
        let bindings = buffers(&all, &with) + 1 + group.len() + 1;
        // Nodes per kernel: shared work stays small; independent results may add up to twice
        // as many (each is no bigger than it would be alone).
        let budget = if sharing { 64 } else { 128 };
        if size + k > budget || bindings > max_bindings {
            continue;
        }
        inside = with;
        shared = all;
        shared.insert(s.id());
        size += k;
        if sharing {
            same_shape += 1;
        }
        group.push(s.clone());
    }
    group
}

/// `order` with its final elementwise results (targets nothing else in it reads: the new
/// parameters and optimizer states of a training step) moved to the end, so that they are
/// all ready together and can share kernels across parameters (see [`siblings_of`]). Moving
/// a node that nothing reads later is always valid; the inputs they read live until then.
pub(crate) fn defer_final_updates(order: &[Tensor], targets: &[Tensor]) -> Vec<Tensor> {
    let mut read: HashSet<u64> = HashSet::new();
    for n in order {
        for x in n.inputs() {
            read.insert(x.id());
        }
    }
    let target_ids: HashSet<u64> = targets.iter().map(|t| t.id()).collect();
    let last = |n: &Tensor| {
        target_ids.contains(&n.id()) && !read.contains(&n.id()) && n.op().fusion() == Fusion::Inline
    };
    let (mut early, late): (Vec<Tensor>, Vec<Tensor>) =
        order.iter().cloned().partition(|n| !last(n));
    early.extend(late);
    early
}
