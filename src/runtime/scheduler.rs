//! `realize`, in stages: **collect** the unrealized subgraph; **check** it against the device's
//! limits (shapes built before a device existed) and **upload** pending host data; **plan**
//! which nodes get kernels of their own (the rest are fused into their consumers); **lower**
//! each of those through its primitive; **assign buffers** by liveness (a pure function);
//! **encode** every kernel into one command encoder; **submit** once; **commit** the results
//! to their tensors. No stage names a primitive family: each primitive states how it fuses and
//! how it lowers.

use super::codegen::{
    BufRef, Kernel, LowerCx, Lowered, Step, elementwise_kernel, elementwise_multi_kernel, internal,
};
use super::counters::{COUNTERS, note_peak};
use super::device::{Gpu, Limits, gpu};
use super::pipelines::{Compiled, pipeline};
use super::policy::{DebugOutput, Policy};
use super::pool::{self, Storage, size_class};
use crate::error::{Result, or_panic};
use crate::prim::Fusion;
use crate::tensor::Tensor;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

/// Realizes `targets` (one submit), panicking on device errors. Returns once submitted on GPUs
/// (a read waits for the device: `read_bytes` polls), so the host can trace the next step
/// meanwhile; waits on CPU adapters (`Policy::wait_after_realize`). Work in flight at process
/// exit is harmless (`tests/exit.rs`).
pub(crate) fn realize(targets: &[Tensor]) {
    or_panic(try_realize(targets));
}

/// Fallible [`realize`].
pub(crate) fn try_realize(targets: &[Tensor]) -> Result<()> {
    run(targets, None)?;
    #[cfg(not(target_arch = "wasm32"))]
    {
        let g = gpu()?;
        if super::policy::policy()
            .wait_after_realize
            .unwrap_or(g.limits.cpu)
        {
            synchronize();
        }
    }
    Ok(())
}

/// Realizes `t` and copies it into a mappable buffer, in the same submit.
fn realize_for_read(t: &Tensor) -> Result<(wgpu::Buffer, u64)> {
    let bytes = ((t.numel() * t.dtype().size()) as u64).div_ceil(4) * 4;
    let staging = gpu()?.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("wgrad read-back"),
        size: bytes.max(4),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    run(std::slice::from_ref(t), Some((&staging, bytes)))?;
    Ok((staging, bytes))
}

/// Realizes `t` and reads its bytes back (blocking).
pub(crate) fn read_bytes(t: &Tensor) -> Result<Vec<u8>> {
    if cfg!(target_arch = "wasm32") {
        return Err(crate::Error::Device(
            "reading a tensor blocks, which the browser cannot do: use `to_vec_async().await`"
                .into(),
        ));
    }
    // Native: the async path waits for the device before it awaits the mapping, so this
    // completes at once.
    pollster::block_on(read_bytes_async(t))
}

/// Realizes `t` and reads its bytes back without blocking the thread.
pub(crate) async fn read_bytes_async(t: &Tensor) -> Result<Vec<u8>> {
    let (staging, bytes) = realize_for_read(t)?;
    let slice = staging.slice(..);
    let (tx, rx) = futures::channel::oneshot::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    #[cfg(not(target_arch = "wasm32"))]
    gpu()?
        .device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| crate::Error::Device(format!("waiting for the GPU failed: {e}")))?;
    rx.await
        .map_err(|_| crate::Error::Device("read-back callback never ran".into()))?
        .map_err(|e| crate::Error::Device(format!("mapping the read-back buffer failed: {e}")))?;
    let data = slice
        .get_mapped_range()
        .map_err(|e| crate::Error::Device(format!("reading the mapped buffer failed: {e}")))?
        .to_vec();
    staging.unmap();
    Ok(data[..bytes as usize].to_vec())
}

/// Collect: the nodes without a device value that `targets` need, inputs before consumers.
///
/// Among a node's inputs the deepest pending one (longest chain of pending nodes below it) is
/// computed first and the shallowest last, just before the node (Sethi–Ullman's order): a
/// short side computation (a checkpointed layer recomputed in the backward pass, a mask) then
/// runs where it is used instead of at the start, so its buffers are not held across the
/// long chain.
fn collect(targets: &[Tensor]) -> Vec<Tensor> {
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

/// Check: every node fits the device (graphs built before the device existed were checked
/// only for what needs no limits).
fn check(order: &[Tensor], limits: &Limits) -> Result<()> {
    for t in order {
        crate::tensor::check_fits_limits(t.op().name(), t.shape(), t.dtype(), limits)?;
    }
    Ok(())
}

/// Upload: host data waiting for the device goes into buffers (before this submit's kernels).
fn upload(order: &[Tensor], g: &Gpu) -> Result<()> {
    for t in order {
        t.upload_pending(g)?;
    }
    Ok(())
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
fn plan(order: &[Tensor], targets: &[Tensor], policy: &Policy) -> HashSet<u64> {
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

/// The buffer a view shares: `t` itself or the operand of a chain of views, when it has one.
fn view_buffer(t: &Tensor, computed: &HashMap<u64, BufRef>) -> Option<BufRef> {
    let mut cur = t.clone();
    loop {
        if let Some(b) = computed.get(&cur.id()) {
            return Some(b.clone());
        }
        if let Some(s) = cur.storage() {
            return Some(BufRef::Real(s));
        }
        if cur.op().fusion() != Fusion::View {
            return None;
        }
        cur = cur.inputs().into_iter().next()?;
    }
}

/// What lowering produced: the kernels in order, where each root's value lives, and how many
/// nodes were fused into another node's kernel.
struct Lowering {
    kernels: Vec<Kernel>,
    computed: HashMap<u64, BufRef>,
    fused: u64,
    next_virtual: usize,
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
fn lower(
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
        if let Some(b) = view_buffer(n, &computed) {
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
            let candidates: Vec<&Tensor> = ks
                .iter()
                .flat_map(|k| &k.inlined)
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
            .map(|k| k.inlined.iter().filter(|t| !t.same(n)).count() as u64)
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
        computed.insert(t.id(), BufRef::Virtual(1 << 30 | k));
    }
    let order: Vec<Tensor> = order.into_iter().filter(|t| !t.has_value()).collect();
    let mut roots = plan(&order, targets, policy);
    Ok(lower(&order, &mut roots, targets, limits, policy, computed, 0)?.kernels)
}

/// One kernel's buffer traffic, for buffer assignment: the virtual buffers it reads, the one
/// it writes, and the bytes written.
#[derive(Clone, Debug)]
pub(crate) struct KernelIo {
    pub reads: Vec<usize>,
    pub writes: usize,
    pub bytes: u64,
    /// Further outputs (a multi-output kernel): virtual buffer and bytes.
    pub extra: Vec<(usize, u64)>,
}

/// `KernelIo::writes` of an entry that writes nothing (a loop marker).
pub(crate) const NO_WRITE: usize = usize::MAX;

/// Which buffer (slot) each virtual buffer of a schedule lives in, and each slot's size.
#[derive(Debug, PartialEq)]
pub(crate) struct Assignment {
    pub slot_of: HashMap<usize, usize>,
    pub slot_bytes: Vec<u64>,
}

/// Assign buffers: a slot for each kernel's output, reused once its last reader has run
/// (unless it is `keep`, a result), by size class. Pure: no device involved.
pub(crate) fn assign_buffers(kernels: &[KernelIo], keep: &HashSet<usize>) -> Assignment {
    let mut last_use: HashMap<usize, usize> = HashMap::new();
    for (k, io) in kernels.iter().enumerate() {
        for &v in &io.reads {
            last_use.insert(v, k);
        }
    }
    let mut slot_of = HashMap::new();
    let mut slot_bytes: Vec<u64> = vec![];
    let mut free: HashMap<u64, Vec<usize>> = HashMap::new();
    for (k, io) in kernels.iter().enumerate() {
        let writes: Vec<(usize, u64)> = std::iter::once((io.writes, io.bytes))
            .filter(|&(w, _)| w != NO_WRITE)
            .chain(io.extra.iter().copied())
            .collect();
        let mut fresh = vec![];
        for &(w, bytes) in &writes {
            if slot_of.contains_key(&w) {
                // Written again (a loop's carry or stacked output): the same buffer.
                continue;
            }
            fresh.push(w);
            let class = size_class(bytes.max(4));
            let slot = match free.get_mut(&class).and_then(|v| v.pop()) {
                Some(s) => s,
                None => {
                    slot_bytes.push(class);
                    slot_bytes.len() - 1
                }
            };
            slot_of.insert(w, slot);
        }
        // Buffers nothing reads any more can serve later kernels (not this one: it still
        // reads them while it writes its output). A buffer bound twice is freed once.
        let reads: HashSet<usize> = io.reads.iter().copied().collect();
        for &v in &reads {
            if last_use.get(&v) == Some(&k) && !keep.contains(&v) {
                if let Some(&s) = slot_of.get(&v) {
                    free.entry(slot_bytes[s]).or_default().push(s);
                }
            }
        }
        for &w in &fresh {
            if !last_use.contains_key(&w) && !keep.contains(&w) {
                let s = slot_of[&w];
                free.entry(slot_bytes[s]).or_default().push(s);
            }
        }
    }
    Assignment {
        slot_of,
        slot_bytes,
    }
}

/// The buffer traffic of a schedule's entries, for [`assign_buffers`]. A repeated block's
/// buffers (everything its entries read or write) stay alive to its end: its first entries
/// run again after its last ones.
fn kernel_io(kernels: &[Kernel]) -> Result<Vec<KernelIo>> {
    let written = |b: &BufRef| -> Result<usize> {
        match b {
            BufRef::Virtual(v) if *v < EXTERNAL => Ok(*v),
            _ => Err(internal("a kernel writes a realized buffer".into())),
        }
    };
    let mut open: Vec<HashSet<usize>> = vec![];
    let mut io = Vec::with_capacity(kernels.len());
    for k in kernels {
        let reads: Vec<usize> = virtuals(&k.inputs)
            .into_iter()
            .filter(|v| *v < EXTERNAL)
            .collect();
        let entry = match &k.step {
            Step::Repeat { .. } => {
                open.push(HashSet::new());
                KernelIo {
                    reads: vec![],
                    writes: NO_WRITE,
                    bytes: 0,
                    extra: vec![],
                }
            }
            Step::EndRepeat => {
                let used = open
                    .pop()
                    .ok_or_else(|| internal("a loop end without its start".into()))?;
                if let Some(outer) = open.last_mut() {
                    outer.extend(used.iter().copied());
                }
                let mut reads: Vec<usize> = used.into_iter().collect();
                reads.sort_unstable();
                KernelIo {
                    reads,
                    writes: NO_WRITE,
                    bytes: 0,
                    extra: vec![],
                }
            }
            Step::Dispatch | Step::Copy { .. } => KernelIo {
                reads,
                writes: written(&k.out)?,
                bytes: k.out_bytes,
                extra: k
                    .extra_outs
                    .iter()
                    .map(|(b, bytes)| Ok((written(b)?, *bytes)))
                    .collect::<Result<_>>()?,
            },
        };
        if let Some(used) = open.last_mut() {
            used.extend(entry.reads.iter().copied());
            used.extend(
                std::iter::once(entry.writes)
                    .filter(|&w| w != NO_WRITE)
                    .chain(entry.extra.iter().map(|(v, _)| *v)),
            );
        }
        io.push(entry);
    }
    Ok(io)
}

/// The virtual buffers a list of buffer references names.
fn virtuals(bufs: &[BufRef]) -> Vec<usize> {
    bufs.iter().filter_map(BufRef::virtual_id).collect()
}

/// The bits every buffer a realize writes holds first under `Policy::sentinel` (a NaN).
pub(crate) const SENTINEL: u32 = 0x7fba_dbad;

/// A recorded dispatch.
struct Dispatch<'k> {
    pipe: super::pipelines::Compiled,
    bind: wgpu::BindGroup,
    groups: [u32; 3],
    label: &'k str,
}

/// A schedule entry, ready to record.
enum Recorded<'k> {
    Dispatch(Dispatch<'k>),
    Copy {
        src: Storage,
        dst: Storage,
        step: &'k Step,
    },
    Repeat(usize),
    EndRepeat,
    /// Nothing to do (an empty output).
    Skip,
}

/// What goes into the command encoder, in order: repeated blocks unrolled, copy offsets
/// resolved (the same dispatches, bind groups included, recur in every iteration).
enum Action<'r> {
    Dispatch(&'r Dispatch<'r>),
    Copy {
        src: &'r Storage,
        src_offset: u64,
        dst: &'r Storage,
        dst_offset: u64,
        bytes: u64,
    },
}

fn actions<'r>(recorded: &'r [Recorded<'r>]) -> Result<Vec<Action<'r>>> {
    // (entry after the block's start, iterations, iteration now)
    let mut open: Vec<(usize, usize, usize)> = vec![];
    let mut out = vec![];
    let mut i = 0;
    while i < recorded.len() {
        match &recorded[i] {
            Recorded::Dispatch(d) => out.push(Action::Dispatch(d)),
            Recorded::Copy { src, dst, step } => {
                if let Step::Copy {
                    src: s0,
                    dst: d0,
                    bytes,
                    src_step,
                    dst_step,
                    stride,
                    phase,
                    reverse_of,
                } = step
                {
                    let j = open.last().map_or(0, |&(_, _, j)| j as u64);
                    let t = stride * j + phase;
                    let t = match reverse_of {
                        Some(n) => n - 1 - t,
                        None => t,
                    };
                    out.push(Action::Copy {
                        src,
                        src_offset: s0 + src_step * t,
                        dst,
                        dst_offset: d0 + dst_step * t,
                        bytes: *bytes,
                    });
                }
            }
            Recorded::Repeat(0) => {
                // Skip to the matching end.
                let mut depth = 0usize;
                loop {
                    i += 1;
                    match recorded.get(i) {
                        Some(Recorded::Repeat(_)) => depth += 1,
                        Some(Recorded::EndRepeat) if depth == 0 => break,
                        Some(Recorded::EndRepeat) => depth -= 1,
                        Some(_) => {}
                        None => return Err(internal("a loop without its end".into())),
                    }
                }
            }
            Recorded::Repeat(n) => open.push((i + 1, *n, 0)),
            Recorded::EndRepeat => {
                let top = open
                    .last_mut()
                    .ok_or_else(|| internal("a loop end without its start".into()))?;
                top.2 += 1;
                if top.2 < top.1 {
                    i = top.0;
                    continue;
                }
                open.pop();
            }
            Recorded::Skip => {}
        }
        i += 1;
    }
    Ok(out)
}

/// Records `actions` into `encoder`: runs of dispatches share a compute pass; copies go
/// between passes.
fn record(encoder: &mut wgpu::CommandEncoder, actions: &[Action]) {
    let mut k = 0;
    while k < actions.len() {
        match &actions[k] {
            Action::Copy {
                src,
                src_offset,
                dst,
                dst_offset,
                bytes,
            } => {
                encoder.copy_buffer_to_buffer(
                    src.raw(),
                    *src_offset,
                    dst.raw(),
                    *dst_offset,
                    *bytes,
                );
                k += 1;
            }
            Action::Dispatch(_) => {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("wgrad"),
                    timestamp_writes: None,
                });
                while let Some(Action::Dispatch(d)) = actions.get(k) {
                    pass.set_pipeline(&d.pipe.pipeline);
                    pass.set_bind_group(0, &d.bind, &[]);
                    pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
                    k += 1;
                }
            }
        }
    }
}

/// Encode: buffers for the slots, a pipeline and bind group per kernel, and one compute pass
/// recording every dispatch.
fn encode<'k>(
    g: &Gpu,
    kernels: &'k [Kernel],
    assignment: &Assignment,
    externals: &[Storage],
    pipelines: &std::sync::OnceLock<Vec<Option<Compiled>>>,
    sentinel: bool,
) -> Result<(Vec<Recorded<'k>>, Vec<Storage>, Option<wgpu::Buffer>)> {
    let slots: Vec<Storage> = assignment
        .slot_bytes
        .iter()
        .map(|&b| pool::alloc(b))
        .collect();
    note_peak();
    if sentinel {
        // Debugging: every output buffer starts as the NaN pattern SENTINEL, so an element a
        // kernel fails to write shows up in the result.
        for s in &slots {
            let words = vec![SENTINEL; (s.class / 4) as usize];
            g.queue
                .write_buffer(s.raw(), 0, bytemuck::cast_slice(&words));
        }
    }
    let resolve = |b: &BufRef| -> Result<Storage> {
        match b {
            BufRef::Real(s) => Ok(s.clone()),
            BufRef::Virtual(v) if *v >= EXTERNAL => externals
                .get(v - EXTERNAL)
                .cloned()
                .ok_or_else(|| internal(format!("external input {} missing", v - EXTERNAL))),
            BufRef::Virtual(v) => assignment
                .slot_of
                .get(v)
                .map(|&s| slots[s].clone())
                .ok_or_else(|| internal(format!("buffer {v} read before it was written"))),
        }
    };
    // Every kernel's scalars in one uniform buffer, each block at an aligned offset.
    let align = g.limits.uniform_align.max(16) as u64;
    let mut scalars: Vec<u8> = vec![];
    let mut offsets = vec![];
    for kernel in kernels {
        offsets.push(scalars.len() as u64);
        if !kernel.params.is_empty() {
            let mut block: Vec<u32> = kernel.params.clone();
            block.resize(kernel.params.len().div_ceil(4) * 4, 0);
            scalars.extend_from_slice(bytemuck::cast_slice(&block));
            scalars.resize(
                (scalars.len() as u64).div_ceil(align) as usize * align as usize,
                0,
            );
        }
    }
    let uniform = (!scalars.is_empty()).then(|| {
        let b = pool::uniform(scalars.len() as u64);
        g.queue.write_buffer(&b, 0, &scalars);
        b
    });
    let known = pipelines.get();
    let mut looked_up = vec![];
    let mut dispatches = vec![];
    for (k, (kernel, &offset)) in kernels.iter().zip(&offsets).enumerate() {
        let marker = match &kernel.step {
            Step::Dispatch => None,
            Step::Repeat { times } => Some(Recorded::Repeat(*times)),
            Step::EndRepeat => Some(Recorded::EndRepeat),
            step @ Step::Copy { bytes, .. } => Some(if *bytes == 0 {
                Recorded::Skip
            } else {
                let src = kernel
                    .inputs
                    .first()
                    .ok_or_else(|| internal("a copy without a source".into()))?;
                Recorded::Copy {
                    src: resolve(src)?,
                    dst: resolve(&kernel.out)?,
                    step,
                }
            }),
        };
        if let Some(m) = marker {
            looked_up.push(None);
            dispatches.push(m);
            continue;
        }
        if !kernel.groups.iter().all(|&d| d > 0) || kernel.out_bytes == 0 {
            looked_up.push(None);
            dispatches.push(Recorded::Skip);
            continue;
        }
        let has_params = !kernel.params.is_empty();
        let reads: usize = kernel.windows.iter().sum();
        let pipe = match known.and_then(|p| p.get(k)).cloned().flatten() {
            Some(p) => p,
            None => pipeline(
                &kernel.source,
                &kernel.label,
                reads,
                kernel.out_windows + kernel.extra_outs.len(),
                has_params,
            )?,
        };
        looked_up.push(Some(pipe.clone()));
        let mut bufs: Vec<(Storage, usize)> = kernel
            .inputs
            .iter()
            .zip(&kernel.windows)
            .map(|(b, &w)| resolve(b).map(|s| (s, w)))
            .collect::<Result<Vec<_>>>()?;
        bufs.push((resolve(&kernel.out)?, kernel.out_windows));
        for (b, _) in &kernel.extra_outs {
            bufs.push((resolve(b)?, 1));
        }
        // Each buffer as its windows: `window_bytes` at aligned offsets (one window: all of it).
        let mut entries: Vec<wgpu::BindGroupEntry> = vec![];
        for (s, windows) in &bufs {
            for w in 0..*windows as u64 {
                let offset = w * kernel.window_bytes;
                let size = (s.class - offset).min(kernel.window_bytes);
                entries.push(wgpu::BindGroupEntry {
                    binding: entries.len() as u32,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: s.raw(),
                        offset,
                        size: std::num::NonZeroU64::new(size),
                    }),
                });
            }
        }
        if let (true, Some(u)) = (has_params, &uniform) {
            entries.push(wgpu::BindGroupEntry {
                binding: entries.len() as u32,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: u,
                    offset,
                    size: std::num::NonZeroU64::new(kernel.params.len().div_ceil(4) as u64 * 16),
                }),
            });
        }
        let bind = g.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipe.layout,
            entries: &entries,
        });
        dispatches.push(Recorded::Dispatch(Dispatch {
            pipe,
            bind,
            groups: kernel.groups,
            label: &kernel.label,
        }));
    }
    if known.is_none() {
        let _ = pipelines.set(looked_up);
    }
    Ok((dispatches, slots, uniform))
}

/// `WGRAD_DEBUG=profile`: each kernel (and copy) in a submit of its own, timed (debugging
/// only).
fn profile(g: &Gpu, actions: &[Action]) {
    for a in actions {
        let started = std::time::Instant::now();
        let mut enc = g.device.create_command_encoder(&Default::default());
        record(&mut enc, std::slice::from_ref(a));
        g.queue.submit([enc.finish()]);
        let _ = g.device.poll(wgpu::PollType::wait_indefinitely());
        let ms = started.elapsed().as_secs_f64() * 1e3;
        match a {
            Action::Dispatch(d) => {
                eprintln!("wgrad: kernel {} {:?}: {ms:.3} ms", d.label, d.groups)
            }
            Action::Copy { bytes, .. } => eprintln!("wgrad: copy of {bytes} bytes: {ms:.3} ms"),
        }
    }
}

/// Runs every stage; optionally copies `read`'s target into a staging buffer in the same
/// submit.
/// Virtual buffer numbers from here on stand for a realize's external inputs (tensors that
/// already hold values), `EXTERNAL + k` for the `k`-th: lowered kernels then depend on the
/// graph's structure only, and a cached plan binds each call's own inputs.
const EXTERNAL: usize = 1 << 30;

/// A pending graph's structure, for the plan cache: a key that is equal for graphs with the
/// same ops (values of constants and random keys aside), shapes, dtypes, wiring and targets,
/// and the graph's external inputs in the order the key numbers them.
struct Structure {
    key: String,
    externals: Vec<Tensor>,
    /// Each pending node's position in the order, by id.
    position: HashMap<u64, usize>,
}

impl Structure {
    fn of(order: &[Tensor], targets: &[Tensor], policy: &Policy) -> Structure {
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
struct Plan {
    kernels: Vec<Kernel>,
    /// Per kernel: `(param index, position in the order, word)`.
    values: Vec<Vec<(usize, usize, u8)>>,
    assignment: Assignment,
    targets: Vec<Option<BufRef>>,
    fused: u64,
    /// The kernels' pipelines, once a realize has looked them up (a hit then skips hashing
    /// each kernel's source).
    pipelines: std::sync::OnceLock<Vec<Option<Compiled>>>,
}

impl Plan {
    /// The plan's kernels with the params refreshed from `order`'s constants and keys.
    fn kernels_for(&self, order: &[Tensor]) -> Result<Vec<Kernel>> {
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

/// Plans by structure key, least recently used first.
type PlanCache = Vec<(String, Arc<Plan>)>;

static PLANS: std::sync::LazyLock<std::sync::Mutex<PlanCache>> =
    std::sync::LazyLock::new(|| std::sync::Mutex::new(vec![]));

/// The cached plan for `key`, made most recently used.
fn cached_plan(key: &str) -> Option<Arc<Plan>> {
    let mut plans = PLANS.lock().unwrap_or_else(|e| e.into_inner());
    let k = plans.iter().position(|(k, _)| k == key)?;
    let entry = plans.remove(k);
    let plan = entry.1.clone();
    plans.push(entry);
    Some(plan)
}

fn cache_plan(key: String, plan: Arc<Plan>, capacity: usize) {
    let mut plans = PLANS.lock().unwrap_or_else(|e| e.into_inner());
    plans.retain(|(k, _)| *k != key);
    plans.push((key, plan));
    let excess = plans.len().saturating_sub(capacity);
    plans.drain(..excess);
}

/// Plans and lowers `order` with its externals as virtual buffers; the plan it makes can be
/// reused by later graphs of the same structure (the flag is false when it cannot: a kernel
/// that binds a buffer directly, a value param whose node is not in the order).
fn make_plan(
    order: &[Tensor],
    targets: &[Tensor],
    structure: &Structure,
    limits: &Limits,
    policy: &Policy,
) -> Result<(Plan, bool)> {
    let mut computed = HashMap::new();
    for (k, t) in structure.externals.iter().enumerate() {
        computed.insert(t.id(), BufRef::Virtual(EXTERNAL + k));
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
            Some(BufRef::Virtual(v)) if *v < EXTERNAL => Some(*v),
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

fn run(targets: &[Tensor], read: Option<(&wgpu::Buffer, u64)>) -> Result<()> {
    let order = collect(targets);
    if order.is_empty() && read.is_none() {
        return Ok(());
    }
    let g = gpu()?;
    // Device errors (validation, out of memory) come back as errors, not panics: they are
    // caught by error scopes for this thread's work (popped, innermost first, before any
    // result is committed; an early return drops them in that order too).
    #[cfg(not(target_arch = "wasm32"))]
    let validation = g.device.push_error_scope(wgpu::ErrorFilter::Validation);
    #[cfg(not(target_arch = "wasm32"))]
    let out_of_memory = g.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let policy = super::policy::policy();
    check(&order, &g.limits)?;
    upload(&order, g)?;
    let order: Vec<Tensor> = order.into_iter().filter(|t| !t.is_realized()).collect();
    let structure = Structure::of(&order, targets, &policy);
    let cached = (policy.plan_cache > 0)
        .then(|| cached_plan(&structure.key))
        .flatten();
    let plan = match cached {
        Some(plan) => {
            COUNTERS.plan_hits.fetch_add(1, Relaxed);
            plan
        }
        None => {
            COUNTERS.plan_misses.fetch_add(1, Relaxed);
            let (plan, reusable) = make_plan(&order, targets, &structure, &g.limits, &policy)?;
            let plan = Arc::new(plan);
            if reusable && policy.plan_cache > 0 {
                cache_plan(structure.key.clone(), plan.clone(), policy.plan_cache);
            }
            plan
        }
    };
    let kernels = plan.kernels_for(&order)?;
    let assignment = &plan.assignment;
    let externals: Vec<Storage> = structure
        .externals
        .iter()
        .map(|t| {
            t.storage()
                .ok_or_else(|| internal("an external input has no buffer".into()))
        })
        .collect::<Result<_>>()?;
    // The scalars' uniform buffer lives until the submit: dropping a buffer destroys it in the
    // browser, which would invalidate the commands that bind it.
    let (dispatches, slots, scalars) = encode(
        g,
        &kernels,
        assignment,
        &externals,
        &plan.pipelines,
        policy.sentinel,
    )?;
    let actions = actions(&dispatches)?;
    let launches = actions
        .iter()
        .filter(|a| matches!(a, Action::Dispatch(_)))
        .count();
    if policy.debug >= DebugOutput::Profile {
        profile(g, &actions);
    }
    let mut encoder = g
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("wgrad realize"),
        });
    if policy.debug < DebugOutput::Profile {
        record(&mut encoder, &actions);
    }
    if policy.debug >= DebugOutput::Kernels {
        let labels: Vec<String> = dispatches
            .iter()
            .filter_map(|d| match d {
                Recorded::Dispatch(d) => Some(d.label.to_string()),
                Recorded::Repeat(n) => Some(format!("[repeat {n}")),
                Recorded::EndRepeat => Some("]".into()),
                _ => None,
            })
            .collect();
        let distinct = dispatches
            .iter()
            .filter(|d| matches!(d, Recorded::Dispatch(_)))
            .count();
        eprintln!(
            "wgrad: realize of {} nodes -> {launches} kernels ({distinct} distinct) {labels:?}",
            order.len()
        );
    }
    let value_of = |k: usize| -> Option<Storage> {
        match &plan.targets[k] {
            Some(BufRef::Virtual(v)) if *v >= EXTERNAL => externals.get(v - EXTERNAL).cloned(),
            Some(BufRef::Virtual(v)) => assignment.slot_of.get(v).map(|&s| slots[s].clone()),
            Some(BufRef::Real(s)) => Some(s.clone()),
            None => targets[k].storage(),
        }
    };
    if let Some((staging, bytes)) = read {
        let src =
            value_of(0).ok_or_else(|| internal("the read-back target has no buffer".into()))?;
        if bytes > 0 {
            encoder.copy_buffer_to_buffer(src.raw(), 0, staging, 0, bytes);
        }
    }
    // Submit.
    g.queue.submit([encoder.finish()]);
    drop(scalars);
    drop(actions);
    COUNTERS.kernels.fetch_add(launches as u64, Relaxed);
    COUNTERS.fused_nodes.fetch_add(plan.fused, Relaxed);
    COUNTERS.submits.fetch_add(1, Relaxed);
    if !kernels.is_empty() {
        COUNTERS.realizes.fetch_add(1, Relaxed);
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let oom = pollster::block_on(out_of_memory.pop());
        let invalid = pollster::block_on(validation.pop());
        if let Some(e) = oom.or(invalid) {
            return Err(crate::Error::Device(format!(
                "the device refused this realize's work (nothing was committed): {e}"
            )));
        }
    }
    // Commit.
    let cut = !crate::transforms::trace::active();
    for (k, t) in targets.iter().enumerate() {
        if let Some(s) = value_of(k) {
            t.set_storage(s);
        }
        if cut && t.is_realized() {
            // Outside every transform nothing can differentiate through a realized tensor
            // later, so its history is released (keeps training loops from growing).
            t.forget_inputs();
        }
    }
    // Buffers of this submit that no result holds go back to the pool only now, after the
    // submit: another thread must not write them (by an upload or an earlier submit) before
    // this encoder's commands have run.
    drop(slots);
    Ok(())
}

/// Waits until the device has finished all submitted work (benchmarks time with it).
///
/// ```
/// let y = wgrad::Tensor::ones([4]).exp();
/// y.realize();
/// wgrad::synchronize();
/// ```
pub fn synchronize() {
    let g = crate::runtime::device::gpu_or_panic();
    let _ = g.device.poll(wgpu::PollType::wait_indefinitely());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(reads: &[usize], writes: usize, bytes: u64) -> KernelIo {
        KernelIo {
            extra: vec![],
            reads: reads.to_vec(),
            writes,
            bytes,
        }
    }

    #[test]
    fn a_chain_reuses_buffers_once_they_are_read() {
        // 0 -> 1 -> 2 -> 3: each buffer is free after its reader, so two slots serve all.
        let ks = [
            io(&[], 0, 1024),
            io(&[0], 1, 1024),
            io(&[1], 2, 1024),
            io(&[2], 3, 1024),
        ];
        let a = assign_buffers(&ks, &HashSet::from([3]));
        assert_eq!(a.slot_bytes.len(), 2);
        assert_ne!(
            a.slot_of[&0], a.slot_of[&1],
            "a kernel never writes what it reads"
        );
        assert_eq!(a.slot_of[&0], a.slot_of[&2]);
        assert_eq!(a.slot_of[&1], a.slot_of[&3]);
    }

    #[test]
    fn kept_results_are_never_reused() {
        let ks = [io(&[], 0, 1024), io(&[0], 1, 1024), io(&[1], 2, 1024)];
        let a = assign_buffers(&ks, &HashSet::from([0, 2]));
        let slots: HashSet<usize> = [0, 1, 2].iter().map(|v| a.slot_of[v]).collect();
        assert_eq!(slots.len(), 3, "{a:?}");
    }

    #[test]
    fn buffers_are_shared_only_within_a_size_class() {
        let ks = [io(&[], 0, 1024), io(&[0], 1, 4096), io(&[1], 2, 1024)];
        let a = assign_buffers(&ks, &HashSet::from([2]));
        assert_eq!(a.slot_of[&0], a.slot_of[&2]);
        assert_eq!(a.slot_bytes[a.slot_of[&1]], size_class(4096));
        assert_eq!(a.slot_bytes.len(), 2);
    }

    #[test]
    fn a_buffer_read_twice_lives_until_its_last_reader() {
        // 0 is read by kernels 1 and 3; 1 and 2 die early, so 2 may take 1's slot, never 0's.
        let ks = [
            io(&[], 0, 512),
            io(&[0], 1, 512),
            io(&[1], 2, 512),
            io(&[0, 2], 3, 512),
        ];
        let a = assign_buffers(&ks, &HashSet::from([3]));
        assert_ne!(a.slot_of[&2], a.slot_of[&0]);
        assert_ne!(a.slot_of[&3], a.slot_of[&0]);
        assert_ne!(a.slot_of[&3], a.slot_of[&2]);
        assert_eq!(a.slot_bytes.len(), 3);
    }

    #[test]
    fn a_buffer_bound_twice_by_one_kernel_is_freed_once() {
        // Kernel 2 reads 1 twice (as scalars and as vec4s); its slot must not be handed to
        // two later buffers that are alive at once.
        let ks = [
            io(&[], 0, 256),
            io(&[], 1, 256),
            io(&[0, 1, 0, 1], 2, 256),
            io(&[], 3, 256),
            io(&[], 4, 256),
            io(&[3, 4], 5, 256),
        ];
        let a = assign_buffers(&ks, &HashSet::from([2, 5]));
        let live_at_5 = [3, 4, 5].map(|v| a.slot_of[&v]);
        assert!(
            live_at_5[0] != live_at_5[1]
                && live_at_5[0] != live_at_5[2]
                && live_at_5[1] != live_at_5[2],
            "{a:?}"
        );
    }

    #[test]
    fn an_unread_unkept_output_frees_its_slot_at_once() {
        let ks = [io(&[], 0, 256), io(&[], 1, 256), io(&[1], 2, 256)];
        let a = assign_buffers(&ks, &HashSet::from([2]));
        assert_eq!(a.slot_of[&0], a.slot_of[&1]);
    }
}
