//! `realize`: orders the unrealized subgraph, decides which nodes get a kernel of their own
//! (the rest are fused into their consumers), assigns pooled buffers by liveness, records every
//! kernel into one command encoder and submits once.

use super::codegen::{BufRef, Kernel, elementwise_kernel};
use super::counters::{COUNTERS, note_peak};
use super::device::gpu;
use super::pipelines::pipeline;
use super::pool::{self, Storage};
use crate::error::{Result, or_panic};
use crate::tensor::Tensor;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;

/// Realizes `targets` (one submit), panicking on device errors, and waits for the device:
/// work still running when the process exits can crash software drivers (lavapipe), and the
/// caller almost always reads the result next anyway.
pub(crate) fn realize(targets: &[Tensor]) {
    or_panic(run(targets, None).map(|_| ()));
    #[cfg(not(target_arch = "wasm32"))]
    synchronize();
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

/// `WGRAD_DEBUG`: unset 0; `kernels` 1 (print each realize's kernels); `profile` 2 (also run
/// and time every kernel on its own).
fn debug_level() -> u8 {
    static LEVEL: std::sync::OnceLock<u8> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| match std::env::var("WGRAD_DEBUG").as_deref() {
        Ok("kernels") => 1,
        Ok("profile") => 2,
        _ => 0,
    })
}

/// The unrealized nodes that `targets` need, inputs before consumers.
fn collect(targets: &[Tensor]) -> Vec<Tensor> {
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
        for x in t.inputs().into_iter().rev() {
            if !x.is_realized() && !seen.contains(&x.id()) {
                stack.push((x, false));
            }
        }
    }
    order
}

/// The storage a target can share without a kernel: identity and reshape views of a buffer.
fn shared_view(t: &Tensor) -> Option<Storage> {
    let mut cur = t.clone();
    loop {
        if let Some(s) = cur.storage() {
            return Some(s);
        }
        let follows = matches!(cur.op(), crate::prim::Op::Identity(_))
            || matches!(
                cur.op(),
                crate::prim::Op::Movement(crate::prim::movement::Movement::Reshape)
            );
        if !follows {
            return None;
        }
        cur = cur.inputs().into_iter().next()?;
    }
}

/// Which nodes get their own kernel.
fn plan(order: &[Tensor], targets: &[Tensor]) -> HashSet<u64> {
    let mut consumers: HashMap<u64, usize> = HashMap::new();
    for n in order {
        for x in n.inputs() {
            *consumers.entry(x.id()).or_default() += 1;
        }
    }
    let mut roots: HashSet<u64> = targets.iter().map(|t| t.id()).collect();
    let plain_matmul_inputs = crate::prim::matmul::wants_buffers();
    for n in order {
        if n.op().is_kernel_root() {
            roots.insert(n.id());
        }
        // The CPU matmul kernel reads vec4s straight from buffers: give it buffers.
        if plain_matmul_inputs && matches!(n.op(), crate::prim::Op::Matmul(_)) {
            for x in n.inputs() {
                if !x.is_realized() && shared_view(&x).is_none() {
                    roots.insert(x.id());
                }
            }
        }
    }
    // A node read by several consumers is computed once, unless recomputing it is only an
    // index remapping of something already in a buffer.
    for n in order {
        if consumers.get(&n.id()).copied().unwrap_or(0) > 1 && !cheap(n, &roots) {
            let mut base = n.clone();
            while base.op().is_index_map() && !roots.contains(&base.id()) {
                base = base.inputs()[0].clone();
            }
            if !base.is_realized() {
                roots.insert(base.id());
            }
        }
    }
    // Long chains (an integrator stepping 10 000 times without a realize, say) are cut every
    // MAX_FUSED_DEPTH nodes: kernels stay small and code generation shallow.
    let mut depth: HashMap<u64, usize> = HashMap::new();
    for n in order {
        let d = 1 + n
            .inputs()
            .iter()
            .map(|x| depth.get(&x.id()).copied().unwrap_or(0))
            .max()
            .unwrap_or(0);
        let d = if roots.contains(&n.id()) || d > MAX_FUSED_DEPTH {
            roots.insert(n.id());
            0
        } else {
            d
        };
        depth.insert(n.id(), d);
    }
    roots
}

/// The longest chain of graph nodes fused into one kernel.
const MAX_FUSED_DEPTH: usize = 48;

fn cheap(t: &Tensor, roots: &HashSet<u64>) -> bool {
    if t.is_realized() || roots.contains(&t.id()) {
        return true;
    }
    match t.op() {
        crate::prim::Op::Source(_) => true,
        op if op.is_index_map() => cheap(&t.inputs()[0], roots),
        _ => false,
    }
}

/// Generates every kernel, splitting fused groups that would bind too many buffers.
fn kernels_for(
    order: &[Tensor],
    roots: &mut HashSet<u64>,
    computed: &mut HashMap<u64, BufRef>,
    next_virtual: &mut usize,
) -> Result<Vec<Kernel>> {
    let max_inputs = gpu()?
        .info
        .max_storage_buffers_per_shader_stage
        .saturating_sub(1)
        .max(2) as usize;
    let mut kernels = vec![];
    let mut i = 0;
    while i < order.len() {
        let n = &order[i];
        i += 1;
        if !roots.contains(&n.id()) || computed.contains_key(&n.id()) {
            continue;
        }
        if let Some(s) = shared_view(n) {
            computed.insert(n.id(), BufRef::Real(s));
            continue;
        }
        let out = BufRef::Virtual(*next_virtual);
        *next_virtual += 1;
        let (ks, inlined) = match n.op() {
            crate::prim::Op::Reduce(r) => r.kernels(n, computed, out.clone(), next_virtual),
            crate::prim::Op::Matmul(m) => m.kernels(n, computed, out.clone()),
            _ => {
                let (k, inlined) = elementwise_kernel(n, computed, out.clone());
                (vec![k], inlined)
            }
        };
        if ks.iter().any(|k| k.inputs.len() > max_inputs) {
            // Too many buffers for one kernel: give a fused input its own kernel, retry.
            let candidates: Vec<&Tensor> = inlined
                .iter()
                .filter(|t| !t.same(n) && !cheap(t, roots))
                .collect();
            let Some(pick) = candidates.get(candidates.len() / 2) else {
                return Err(crate::Error::TooLarge {
                    op: n.op().name(),
                    msg: format!("a kernel would bind more than {max_inputs} buffers"),
                });
            };
            roots.insert(pick.id());
            i = order.iter().position(|t| t.same(pick)).unwrap_or(0);
            continue;
        }
        COUNTERS
            .fused_nodes
            .fetch_add(inlined.len().saturating_sub(1) as u64, Relaxed);
        computed.insert(n.id(), out);
        kernels.extend(ks);
    }
    Ok(kernels)
}

/// Plans, records and submits; optionally copies `read`'s target into a staging buffer.
fn run(targets: &[Tensor], read: Option<(&wgpu::Buffer, u64)>) -> Result<()> {
    let g = gpu()?;
    let order = collect(targets);
    if order.is_empty() && read.is_none() {
        return Ok(());
    }
    let mut roots = plan(&order, targets);
    let mut computed: HashMap<u64, BufRef> = HashMap::new();
    let mut next_virtual = 0usize;
    let kernels = kernels_for(&order, &mut roots, &mut computed, &mut next_virtual)?;

    // Liveness: the last kernel that reads each virtual buffer.
    let keep: HashSet<usize> = targets
        .iter()
        .filter_map(|t| match computed.get(&t.id()) {
            Some(BufRef::Virtual(v)) => Some(*v),
            _ => None,
        })
        .collect();
    let mut last_use: HashMap<usize, usize> = HashMap::new();
    for (k, kernel) in kernels.iter().enumerate() {
        for b in &kernel.inputs {
            if let BufRef::Virtual(v) = b {
                last_use.insert(*v, k);
            }
        }
    }
    let mut live: HashMap<usize, Storage> = HashMap::new();
    // Buffers that die while recording are reused only by this encoder, and go back to the
    // shared pool after the submit: another thread must not write them (by an upload or an
    // earlier submit) before this encoder's commands have run.
    let mut local_free: HashMap<u64, Vec<Storage>> = HashMap::new();
    let mut finished: HashMap<usize, Storage> = HashMap::new();
    // Buffers and bind groups first, by liveness; then one compute pass records every dispatch.
    let mut dispatches: Vec<(super::pipelines::Compiled, wgpu::BindGroup, [u32; 3], &str)> = vec![];
    for (k, kernel) in kernels.iter().enumerate() {
        let BufRef::Virtual(ov) = kernel.out else {
            unreachable!("kernel outputs are virtual")
        };
        let bytes = kernel.out_bytes.max(4);
        let out = match local_free
            .get_mut(&pool::size_class(bytes))
            .and_then(|v| v.pop())
        {
            Some(s) => s,
            None => pool::alloc(bytes),
        };
        note_peak();
        live.insert(ov, out.clone());
        if kernel.groups.iter().all(|&d| d > 0) && kernel.out_bytes > 0 {
            let pipe = pipeline(&kernel.source, &kernel.label, kernel.inputs.len())?;
            let resolve = |b: &BufRef| -> Storage {
                match b {
                    BufRef::Real(s) => s.clone(),
                    BufRef::Virtual(v) => live.get(v).cloned().expect("read before written"),
                }
            };
            let mut bufs: Vec<Storage> = kernel.inputs.iter().map(resolve).collect();
            bufs.push(out);
            let entries: Vec<wgpu::BindGroupEntry> = bufs
                .iter()
                .enumerate()
                .map(|(b, s)| wgpu::BindGroupEntry {
                    binding: b as u32,
                    resource: s.raw().as_entire_binding(),
                })
                .collect();
            let bind = g.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &pipe.layout,
                entries: &entries,
            });
            dispatches.push((pipe, bind, kernel.groups, &kernel.label));
        }
        // Buffers nothing reads any more can serve later kernels of this encoder.
        for b in &kernel.inputs {
            if let BufRef::Virtual(v) = b {
                if last_use.get(v) == Some(&k) && !keep.contains(v) {
                    if let Some(s) = live.remove(v) {
                        local_free.entry(s.class).or_default().push(s);
                    }
                }
            }
        }
        if !last_use.contains_key(&ov) && !keep.contains(&ov) {
            if let Some(s) = live.remove(&ov) {
                local_free.entry(s.class).or_default().push(s);
            }
        }
    }
    if debug_level() >= 2 {
        // WGRAD_DEBUG=profile: each kernel in a submit of its own, timed (debugging only).
        for (pipe, bind, groups, label) in &dispatches {
            let started = std::time::Instant::now();
            let mut enc = g.device.create_command_encoder(&Default::default());
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                pass.set_pipeline(&pipe.pipeline);
                pass.set_bind_group(0, bind, &[]);
                pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
            }
            g.queue.submit([enc.finish()]);
            let _ = g.device.poll(wgpu::PollType::wait_indefinitely());
            eprintln!(
                "wgrad: kernel {label} {groups:?}: {:.3} ms",
                started.elapsed().as_secs_f64() * 1e3
            );
        }
    }
    let mut encoder = g
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("wgrad realize"),
        });
    if debug_level() < 2 {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("wgrad"),
            timestamp_writes: None,
        });
        for (pipe, bind, groups, _) in &dispatches {
            pass.set_pipeline(&pipe.pipeline);
            pass.set_bind_group(0, bind, &[]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        }
    }
    COUNTERS.kernels.fetch_add(dispatches.len() as u64, Relaxed);
    if debug_level() >= 1 {
        let labels: Vec<&str> = dispatches.iter().map(|d| d.3).collect();
        eprintln!(
            "wgrad: realize of {} nodes -> {} kernels {labels:?}",
            order.len(),
            dispatches.len()
        );
    }
    for v in &keep {
        if let Some(s) = live.remove(v) {
            finished.insert(*v, s);
        }
    }
    drop(live);
    if let Some((staging, bytes)) = read {
        let t = &targets[0];
        let src = match computed.get(&t.id()) {
            Some(BufRef::Virtual(v)) => finished.get(v).cloned(),
            Some(BufRef::Real(s)) => Some(s.clone()),
            None => t.storage(),
        }
        .expect("read-back target realized");
        if bytes > 0 {
            encoder.copy_buffer_to_buffer(src.raw(), 0, staging, 0, bytes);
        }
    }
    g.queue.submit([encoder.finish()]);
    drop(local_free);
    COUNTERS.submits.fetch_add(1, Relaxed);
    if !kernels.is_empty() {
        COUNTERS.realizes.fetch_add(1, Relaxed);
    }
    let cut = !crate::transforms::trace::active();
    for t in targets {
        let storage = match computed.get(&t.id()) {
            Some(BufRef::Virtual(v)) => finished.get(v).cloned(),
            Some(BufRef::Real(s)) => Some(s.clone()),
            None => None,
        };
        if let Some(s) = storage {
            *t.0.storage.lock().unwrap() = Some(s);
        }
        if cut && t.is_realized() {
            // Outside every transform nothing can differentiate through a realized tensor
            // later, so its history is released (keeps training loops from growing).
            let old = std::mem::take(&mut *t.0.inputs.write().unwrap());
            drop(old);
        }
    }
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
