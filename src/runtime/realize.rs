//! `realize`, from the top: **collect** the pending graph (see `scheduler`), find the one
//! device it runs on, **check** it against that device's limits, **upload** pending host data,
//! take a plan from the device's cache or make one, **encode**, **submit** once and **commit**
//! the results to their tensors. Reading a tensor back rides on the same submit.

use crate::base::counters::COUNTERS;
use crate::base::error::internal;
use crate::base::error::{Result, or_panic};
use crate::base::limits::Limits;
use crate::base::policy::DebugOutput;
use crate::device::{Device, Gpu};
use crate::ir::op::Op;
use crate::ir::tensor::{Placement, Tensor};
use crate::kernel::BufRef;
use crate::memory::pool::Storage;
use crate::runtime::encode::{Action, Recorded, actions, encode, profile, record};
use crate::schedule::collect::collect;
use crate::schedule::plan::{Plan, Structure, make_plan};
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
    let done = run(targets, false)?;
    #[cfg(not(target_arch = "wasm32"))]
    if crate::base::policy::policy()
        .wait_after_realize
        .unwrap_or(done.gpu.limits.cpu)
    {
        done.gpu.wait_idle()?;
    }
    #[cfg(target_arch = "wasm32")]
    let _ = done;
    Ok(())
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

/// Realizes `t` and reads its bytes back without blocking the thread. Refused while staged
/// code is traced (inside `jit`, `vmap` or a loop body): the value there stands for other
/// values, so a decision made from it would be frozen into the trace (JAX raises a
/// concretization error there too).
pub(crate) async fn read_bytes_async(t: &Tensor) -> Result<Vec<u8>> {
    if crate::ir::trace::is_staged() {
        return crate::base::error::transform_err(
            "jit/vmap",
            format!(
                "reading a tensor of shape {:?} on the host while tracing jit, vmap or a loop \
                 body: its value stands for other inputs', so a decision made from it would be \
                 frozen into the trace; decide with `where_` or `cond` instead, or read outside",
                t.shape()
            ),
        );
    }
    let done = run(std::slice::from_ref(t), true)?;
    let (staging, bytes) = done
        .staging
        .ok_or_else(|| internal("a read-back without its buffer".into()))?;
    let g = done.gpu;
    let (tx, rx) = futures::channel::oneshot::channel();
    {
        let _held = g.access.hold();
        // A device lost since (destroyed, reset) makes the mapping invalid: an error, not
        // wgpu's panic for an uncaught one.
        #[cfg(not(target_arch = "wasm32"))]
        let scope = g.device.push_error_scope(wgpu::ErrorFilter::Validation);
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(crate::Error::wgpu(
                "reading back failed (was the device lost?)",
                &e,
            ));
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    g.wait_idle()?;
    rx.await
        .map_err(|_| crate::Error::Device("read-back callback never ran".into()))?
        .map_err(|e| crate::Error::wgpu("mapping the read-back buffer failed", &e))?;
    let _held = g.access.hold();
    let data = staging
        .slice(..)
        .get_mapped_range()
        .map_err(|e| crate::Error::wgpu("reading the mapped buffer failed", &e))?
        .to_vec();
    staging.unmap();
    // Destroyed here, still holding the device (GL).
    drop(staging);
    Ok(data[..bytes as usize].to_vec())
}

/// Check: every node fits the device (graphs built before the device existed were checked
/// only for what needs no limits).
fn check(order: &[Tensor], limits: &Limits) -> Result<()> {
    for t in order {
        crate::ir::tensor::check_fits_limits(t.op().name(), t.shape(), t.dtype(), limits)?;
    }
    Ok(())
}

/// Upload: host data waiting for the device goes into buffers (before this submit's kernels).
fn upload(order: &[Tensor], device: &Device, g: &Gpu) -> Result<()> {
    for t in order {
        t.upload_pending(device, g)?;
    }
    Ok(())
}

/// What a realize leaves to its caller: the device it ran on, and the read-back buffer it
/// filled in the same submit (with the bytes to read).
pub(crate) struct Submitted {
    pub gpu: Arc<Gpu>,
    pub staging: Option<(wgpu::Buffer, u64)>,
}

/// The device a realize runs on: the one its tensors are placed on (an error naming both
/// when there are two), else the current one.
fn graph_device(order: &[Tensor], targets: &[Tensor]) -> Result<Device> {
    let mut placement = Placement::default();
    for t in targets {
        placement.see("realize", t)?;
    }
    for n in order {
        placement.see("realize", n)?;
        for x in n.0.inputs.read().unwrap().iter() {
            placement.see("realize", x)?;
        }
    }
    Ok(placement.device().unwrap_or_else(crate::device::current))
}

/// Runs every stage, holding the device (see `AccessLock`); with `read`, copies the first
/// target into a staging buffer in the same submit. With nothing to compute and nothing to
/// read it submits nothing.
fn run(targets: &[Tensor], read: bool) -> Result<Submitted> {
    let mut order = collect(targets);
    if order.iter().any(|t| matches!(t.op(), Op::While(_))) {
        run_while_loops(&order)?;
        order = collect(targets);
    }
    let device = graph_device(&order, targets)?;
    let gpu = device.gpu()?;
    if order.is_empty() && !read {
        return Ok(Submitted { gpu, staging: None });
    }
    let g = &*gpu;
    let held = g.access.hold();
    let staging = read.then(|| {
        let t = &targets[0];
        let bytes = ((t.numel() * t.dtype().size()) as u64).div_ceil(4) * 4;
        let b = g.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgrad read-back"),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        (b, bytes)
    });
    encode_and_submit(order, targets, &device, g, staging.as_ref())?;
    g.pool.destroy_doomed();
    drop(held);
    Ok(Submitted { gpu, staging })
}

/// The `while_loop` nodes of a pending graph (in `order`, inputs first) run on the host, each
/// loop once for all of its nodes: their values are the final carry's leaves, so the rest of
/// the graph is planned with them as inputs. (The number of steps depends on values: no
/// kernel computes them; each loop reads its predicate back, so it realizes what it needs.)
fn run_while_loops(order: &[Tensor]) -> Result<()> {
    for (k, node) in order.iter().enumerate() {
        let Op::While(w) = node.op() else { continue };
        if node.is_realized() {
            continue;
        }
        let carry = (w.body.run)(&w.body, &node.inputs())?;
        let siblings: Vec<Tensor> = order[k..]
            .iter()
            .filter(|other| other.same(node) || w.same_loop(node, other))
            .cloned()
            .collect();
        let values: Vec<Storage> = siblings
            .iter()
            .map(|other| match other.op() {
                Op::While(v) => carry[v.leaf].storage(),
                _ => None,
            })
            .collect::<Option<_>>()
            .ok_or_else(|| internal("a while_loop's carry has no buffer".into()))?;
        let device = carry
            .first()
            .and_then(|c| c.placed().cloned())
            .unwrap_or_else(crate::device::current);
        // Committed as a realize's targets are (their history released outside transforms).
        commit(&siblings, &device, |k| Some(values[k].clone()));
    }
    Ok(())
}

/// The stages of [`run`] from the check on (the device held).
fn encode_and_submit(
    order: Vec<Tensor>,
    targets: &[Tensor],
    device: &Device,
    g: &Gpu,
    read: Option<&(wgpu::Buffer, u64)>,
) -> Result<()> {
    // Device errors (validation, out of memory) come back as errors, not panics: they are
    // caught by error scopes for this thread's work (popped, innermost first, before any
    // result is committed; an early return drops them in that order too).
    #[cfg(not(target_arch = "wasm32"))]
    let validation = g.device.push_error_scope(wgpu::ErrorFilter::Validation);
    #[cfg(not(target_arch = "wasm32"))]
    let out_of_memory = g.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let policy = crate::base::policy::policy();
    check(&order, &g.limits)?;
    upload(&order, device, g)?;
    let order: Vec<Tensor> = order.into_iter().filter(|t| !t.is_realized()).collect();
    let structure = Structure::of(&order, targets, &policy);
    let plan = plan_for(g, &order, targets, &structure, &policy)?;
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
        print_kernels(order.len(), launches, &dispatches);
    }
    let value_of = |k: usize| -> Option<Storage> {
        match &plan.targets[k] {
            Some(BufRef::External(k)) => externals.get(*k).cloned(),
            Some(BufRef::Virtual(v)) => assignment.slot_of.get(v).map(|&s| slots[s].clone()),
            Some(BufRef::Real(s)) => Some(s.clone()),
            Some(BufRef::None) => None,
            None => targets[k].storage(),
        }
    };
    if let Some((staging, bytes)) = read {
        let src =
            value_of(0).ok_or_else(|| internal("the read-back target has no buffer".into()))?;
        if *bytes > 0 {
            encoder.copy_buffer_to_buffer(src.raw(), src.offset, staging, 0, *bytes);
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
    refused(out_of_memory, validation)?;
    commit(targets, device, value_of);
    // Buffers of this submit that no result holds go back to the pool only now, after the
    // submit: another thread must not write them (by an upload or an earlier submit) before
    // this encoder's commands have run.
    drop(slots);
    Ok(())
}

/// The plan for a graph of `structure`: the device's cached one, or a new one (cached when it
/// can be reused).
fn plan_for(
    g: &Gpu,
    order: &[Tensor],
    targets: &[Tensor],
    structure: &Structure,
    policy: &crate::base::policy::Policy,
) -> Result<Arc<Plan>> {
    let cached = (policy.plan_cache > 0)
        .then(|| cached_plan(g, &structure.key))
        .flatten();
    if let Some(plan) = cached {
        COUNTERS.plan_hits.fetch_add(1, Relaxed);
        return Ok(plan);
    }
    COUNTERS.plan_misses.fetch_add(1, Relaxed);
    let (plan, reusable) = make_plan(order, targets, structure, &g.limits, policy)?;
    let plan = Arc::new(plan);
    if reusable && policy.plan_cache > 0 {
        cache_plan(g, structure.key.clone(), plan.clone(), policy.plan_cache);
    }
    Ok(plan)
}

/// The error the device reported for this thread's work since the error scopes were pushed
/// (out of memory first), if any.
#[cfg(not(target_arch = "wasm32"))]
fn refused(out_of_memory: wgpu::ErrorScopeGuard, validation: wgpu::ErrorScopeGuard) -> Result<()> {
    let oom = pollster::block_on(out_of_memory.pop());
    let invalid = pollster::block_on(validation.pop());
    match oom.or(invalid) {
        Some(e) => Err(crate::Error::wgpu(
            "the device refused this realize's work (nothing was committed)",
            &e,
        )),
        None => Ok(()),
    }
}

/// The cached plan for `key`, made most recently used.
pub(crate) fn cached_plan(g: &Gpu, key: &str) -> Option<Arc<Plan>> {
    let plan = g.plans.lock().unwrap_or_else(|e| e.into_inner()).get(key)?;
    plan.downcast::<Plan>().ok()
}

pub(crate) fn cache_plan(g: &Gpu, key: String, plan: Arc<Plan>, capacity: usize) {
    let plans = &mut g.plans.lock().unwrap_or_else(|e| e.into_inner());
    plans.put(key, plan, capacity);
}

/// `WGRAD_DEBUG=kernels`: a realize's kernels, repeated blocks marked.
fn print_kernels(nodes: usize, launches: usize, dispatches: &[Recorded]) {
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
        "wgrad: realize of {nodes} nodes -> {launches} kernels ({distinct} distinct) {labels:?}"
    );
}

/// Commit: each target gets its value (on `device`); outside every transform its history is
/// released.
fn commit(targets: &[Tensor], device: &Device, value_of: impl Fn(usize) -> Option<Storage>) {
    let cut = !crate::ir::trace::active();
    for (k, t) in targets.iter().enumerate() {
        if let Some(s) = value_of(k) {
            t.set_storage(s, device);
        }
        if cut && t.is_realized() {
            // Outside every transform nothing can differentiate through a realized tensor
            // later, so its history is released (keeps training loops from growing).
            t.forget_inputs();
        }
    }
}

/// Waits until the current device has finished all submitted work (benchmarks time with it;
/// [`Device::synchronize`](crate::Device::synchronize) waits on another device).
///
/// ```
/// let y = wgrad::Tensor::ones([4]).exp();
/// y.realize();
/// wgrad::synchronize();
/// ```
pub fn synchronize() {
    crate::base::error::or_panic(crate::device::current().synchronize());
}
