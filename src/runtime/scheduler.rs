//! `realize`, in stages: **collect** the unrealized subgraph; **check** it against the device's
//! limits (shapes built before a device existed) and **upload** pending host data; **plan**
//! which nodes get kernels of their own (the rest are fused into their consumers); **lower**
//! each of those through its primitive; **assign buffers** by liveness (a pure function);
//! **encode** every kernel into one command encoder; **submit** once; **commit** the results
//! to their tensors. No stage names a primitive family: each primitive states how it fuses and
//! how it lowers.

use crate::base::error::Result;
use crate::base::error::internal;
use crate::base::limits::Limits;
use crate::base::policy::Policy;
use crate::ir::op::Fusion;
use crate::ir::tensor::Tensor;
use crate::kernel::{BufRef, Kernel};
use crate::prim::emit::view_buffer;
use crate::prim::lower::{LowerCx, Lowered, elementwise_kernel, elementwise_multi_kernel};
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

/// Whether recomputing `t` in every consumer costs no more than reading a buffer: it has a
/// value or a kernel of its own, or it is a constant, or an index remapping of such a node.
fn cheap(t: &Tensor, roots: &HashSet<u64>) -> bool {
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
fn epilogues(order: &[Tensor], roots: &HashSet<u64>, targets: &[Tensor]) -> HashMap<u64, Tensor> {
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

/// What lowering produced: the kernels in order, where each root's value lives, and how many
/// nodes were fused into another node's kernel.
pub(crate) struct Lowering {
    pub(crate) kernels: Vec<Kernel>,
    pub(crate) computed: HashMap<u64, BufRef>,
    pub(crate) fused: u64,
    pub(crate) next_virtual: usize,
}

/// Elementwise roots after `n` in `rest` that can be computed in `n`'s kernel: everything
/// they read through fused nodes is already computed, an input, or `n` itself (or an earlier
/// sibling), and they are not `claimed` (by an epilogue). Of `n`'s shape when they share what
/// they read (an optimizer's moment and parameter updates: one kernel writes all three, their
/// shared values computed once; up to three); with `Policy::horizontal`, also small
/// independent ones of other shapes, no larger than `n` (several parameters' updates in one
/// launch), while the kernel's buffers stay within the device's binding limit.
fn siblings_of(
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
    // What a node reads through its fused nodes (buffers, inputs, group members) and how
    // many fused nodes that is; `None` when it needs a root that is not computed yet.
    let reads_of = |t: &Tensor, inside: &HashSet<u64>| -> Option<(HashSet<u64>, usize)> {
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
    };
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

/// Lower: every root through its primitive, splitting fused groups that would bind more
/// buffers than the device allows.
pub(crate) fn lower(
    order: &[Tensor],
    roots: &mut HashSet<u64>,
    targets: &[Tensor],
    limits: &Limits,
    policy: &Policy,
    mut computed: HashMap<u64, BufRef>,
    mut next_virtual: usize,
) -> Result<Lowering> {
    let deferred;
    let order = if policy.multi_output && policy.horizontal {
        deferred = defer_final_updates(order, targets);
        &deferred[..]
    } else {
        order
    };
    let max_bindings = limits.max_storage_buffers.max(3) as usize;
    let mut kernels = vec![];
    let mut fused = 0u64;
    let mut epilogue_of = if policy.epilogues.unwrap_or(!limits.cpu) {
        epilogues(order, roots, targets)
    } else {
        HashMap::new()
    };
    let mut absorbed: HashSet<u64> = epilogue_of.values().map(|r| r.id()).collect();
    // Kernel roots whose value is the start of another's (see `Op::prefix_of`): the other is
    // computed in their place and they share its buffer.
    let heavy: Vec<&Tensor> = order
        .iter()
        .filter(|t| matches!(t.op().fusion(), Fusion::KernelRoot { .. }))
        .collect();
    let mut covered_by: HashMap<u64, Tensor> = HashMap::new();
    for a in &heavy {
        if let Some(b) = heavy.iter().find(|b| a.op().prefix_of(a, b)) {
            covered_by.insert(a.id(), (*b).clone());
        }
    }
    let mut i = 0;
    while i < order.len() {
        let n = &order[i];
        i += 1;
        if let Some(b) = covered_by.get(&n.id()) {
            if let Some(buf) = computed.get(&b.id()).cloned() {
                computed.insert(n.id(), buf);
                continue;
            }
            // Compute the covering node now; this one shares its buffer.
            let out = BufRef::Virtual(next_virtual);
            let ks;
            (ks, next_virtual) = root_kernels(
                b,
                None,
                out.clone(),
                &computed,
                limits,
                policy,
                next_virtual + 1,
            )?;
            computed.insert(b.id(), out.clone());
            computed.insert(n.id(), out);
            kernels.extend(ks);
            continue;
        }
        if !roots.contains(&n.id()) || computed.contains_key(&n.id()) || absorbed.contains(&n.id())
        {
            continue;
        }
        if let Some(b) = view_buffer(n, |id| computed.get(&id).cloned()) {
            computed.insert(n.id(), b);
            continue;
        }
        let out = BufRef::Virtual(next_virtual);
        next_virtual += 1;
        let epilogue = epilogue_of.get(&n.id()).cloned();
        // Siblings computed in this node's kernel: (node id, buffer).
        let mut group: Vec<(u64, BufRef)> = vec![];
        let ks = match (n.op().fusion(), epilogue.clone()) {
            (_, Some(r)) => {
                // `n` is computed in the store of `r`'s kernel.
                let ks;
                (ks, next_virtual) = root_kernels(
                    &r,
                    Some(n),
                    out.clone(),
                    &computed,
                    limits,
                    policy,
                    next_virtual,
                )?;
                ks
            }
            (Fusion::KernelRoot { .. }, None) => {
                let ks;
                (ks, next_virtual) = root_kernels(
                    n,
                    None,
                    out.clone(),
                    &computed,
                    limits,
                    policy,
                    next_virtual,
                )?;
                ks
            }
            (_, None) => {
                let siblings = if policy.multi_output {
                    siblings_of(
                        n,
                        &order[i..],
                        roots,
                        &computed,
                        &|id| absorbed.contains(&id) || epilogue_of.contains_key(&id),
                        policy,
                        limits,
                    )
                } else {
                    vec![]
                };
                let single = |computed: &HashMap<u64, BufRef>| {
                    elementwise_kernel(n, computed, limits, policy, out.clone())
                };
                if siblings.is_empty() {
                    vec![single(&computed)?]
                } else {
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
                        &computed,
                        limits,
                        policy,
                        out.clone(),
                        extra.clone(),
                    )?;
                    let bound = k.windows.iter().sum::<usize>() + k.out_windows + extra.len();
                    if bound > max_bindings || k.out_windows > 1 {
                        vec![single(&computed)?]
                    } else {
                        group = siblings.iter().map(|s| s.id()).zip(extra).collect();
                        vec![k]
                    }
                }
            }
        };
        let bindings =
            |k: &Kernel| k.windows.iter().sum::<usize>() + k.out_windows + k.extra_outs.len();
        if let (true, Some(r)) = (ks.iter().any(|k| bindings(k) > max_bindings), &epilogue) {
            // Too many buffers with the epilogue: compute the root on its own after all.
            epilogue_of.remove(&n.id());
            absorbed.remove(&r.id());
            i = order.iter().position(|t| t.same(r)).unwrap_or(0);
            continue;
        }
        if ks.iter().any(|k| bindings(k) > max_bindings) {
            // Too many buffers for one kernel: give a fused input its own kernel, retry.
            // Kernels name their fused nodes by id, in the order they were fused.
            let by_id: HashMap<u64, &Tensor> = order.iter().map(|t| (t.id(), t)).collect();
            let candidates: Vec<&Tensor> = ks
                .iter()
                .flat_map(|k| &k.inlined)
                .filter_map(|id| by_id.get(id).copied())
                .filter(|t| !t.same(n) && !cheap(t, roots))
                .collect();
            let Some(pick) = candidates.get(candidates.len() / 2) else {
                return Err(crate::Error::TooLarge {
                    op: n.op().name(),
                    msg: format!("a kernel would bind more than {max_bindings} storage buffers"),
                });
            };
            roots.insert(pick.id());
            i = order.iter().position(|t| t.same(pick)).unwrap_or(0);
            continue;
        }
        fused += ks
            .iter()
            .map(|k| k.inlined.iter().filter(|&&t| t != n.id()).count() as u64)
            .sum::<u64>();
        computed.insert(n.id(), out);
        for (id, b) in group {
            computed.insert(id, b);
        }
        kernels.extend(ks);
    }
    Ok(Lowering {
        kernels,
        computed,
        fused,
        next_virtual,
    })
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

/// `order` with its final elementwise results (targets nothing else in it reads: the new
/// parameters and optimizer states of a training step) moved to the end, so that they are
/// all ready together and can share kernels across parameters (see [`siblings_of`]). Moving
/// a node that nothing reads later is always valid; the inputs they read live until then.
fn defer_final_updates(order: &[Tensor], targets: &[Tensor]) -> Vec<Tensor> {
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

/// The kernels that would compute `targets`, generated without a device: tensors that hold
/// values stand in as buffers. (The validation fixture renders every kernel variant with it.)
#[cfg(test)]
pub(crate) fn lower_offline(
    targets: &[Tensor],
    limits: &Limits,
    policy: &Policy,
) -> Result<Vec<Kernel>> {
    let order = collect(targets);
    let mut computed = HashMap::new();
    for (k, t) in order.iter().filter(|t| t.has_value()).enumerate() {
        computed.insert(t.id(), BufRef::External(k));
    }
    let order: Vec<Tensor> = order.into_iter().filter(|t| !t.has_value()).collect();
    let mut roots = plan(&order, targets, policy);
    Ok(lower(&order, &mut roots, targets, limits, policy, computed, 0)?.kernels)
}
