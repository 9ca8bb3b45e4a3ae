//! Encode: a realize's kernels become buffers, bind groups and dispatches (repeated blocks
//! unrolled, copy offsets resolved), recorded into one command encoder.

use crate::base::counters::note_peak;
use crate::base::error::Result;
use crate::base::error::internal;
use crate::device::Gpu;
use crate::device::pipelines::{Compiled, pipeline};
use crate::kernel::{BufRef, Kernel, Step};
use crate::memory::pool::Storage;
use crate::schedule::buffers::Assignment;

/// The bits every buffer a realize writes holds first under `Policy::sentinel` (a NaN).
pub(crate) const SENTINEL: u32 = 0x7fba_dbad;

/// A recorded dispatch.
pub(crate) struct Dispatch<'k> {
    pub(crate) pipe: crate::device::pipelines::Compiled,
    pub(crate) bind: wgpu::BindGroup,
    pub(crate) groups: [u32; 3],
    pub(crate) label: &'k str,
}

/// A schedule entry, ready to record.
pub(crate) enum Recorded<'k> {
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
pub(crate) enum Action<'r> {
    Dispatch(&'r Dispatch<'r>),
    Copy {
        src: &'r Storage,
        src_offset: u64,
        dst: &'r Storage,
        dst_offset: u64,
        bytes: u64,
    },
}

pub(crate) fn actions<'r>(recorded: &'r [Recorded<'r>]) -> Result<Vec<Action<'r>>> {
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
pub(crate) fn record(encoder: &mut wgpu::CommandEncoder, actions: &[Action]) {
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
                    src.offset + *src_offset,
                    dst.raw(),
                    dst.offset + *dst_offset,
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
pub(crate) fn encode<'k>(
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
        .map(|&b| g.pool.alloc(b))
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
            BufRef::External(k) => externals
                .get(*k)
                .cloned()
                .ok_or_else(|| internal(format!("external input {k} missing"))),
            BufRef::None => Err(internal("a kernel binds no buffer".into())),
            BufRef::Virtual(v) => assignment
                .slot_of
                .get(v)
                .map(|&s| slots[s].clone())
                .ok_or_else(|| internal(format!("buffer {v} read before it was written"))),
        }
    };
    let (scalars, offsets) = scalar_blocks(kernels, g.limits.uniform_align.max(16) as u64);
    let uniform = (!scalars.is_empty()).then(|| {
        let b = g.pool.uniform(scalars.len() as u64);
        g.queue.write_buffer(&b, 0, &scalars);
        b
    });
    let known = pipelines.get();
    let mut looked_up = vec![];
    let mut dispatches = vec![];
    for (k, (kernel, &offset)) in kernels.iter().zip(&offsets).enumerate() {
        if let Some(m) = marker_entry(kernel, &resolve)? {
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
                g,
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
        let scalars_at = uniform.as_ref().filter(|_| has_params).map(|u| (u, offset));
        let entries = bind_entries(kernel, &bufs, scalars_at);
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

/// Every kernel's scalars in one uniform block, each kernel's at an offset aligned to `align`:
/// the bytes and each kernel's offset.
fn scalar_blocks(kernels: &[Kernel], align: u64) -> (Vec<u8>, Vec<u64>) {
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
    (scalars, offsets)
}

/// The entry of a schedule step that is not a dispatch (a loop marker or a copy); `None` for
/// a dispatch.
fn marker_entry<'k>(
    kernel: &'k Kernel,
    resolve: &dyn Fn(&BufRef) -> Result<Storage>,
) -> Result<Option<Recorded<'k>>> {
    Ok(match &kernel.step {
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
    })
}

/// A dispatch's bind group entries: each buffer as its windows (`window_bytes` at aligned
/// offsets; one window: all of it), then the kernel's scalars at their offset in the uniform
/// buffer, if it has any.
fn bind_entries<'a>(
    kernel: &Kernel,
    bufs: &'a [(Storage, usize)],
    scalars: Option<(&'a wgpu::Buffer, u64)>,
) -> Vec<wgpu::BindGroupEntry<'a>> {
    let mut entries: Vec<wgpu::BindGroupEntry> = vec![];
    for (s, windows) in bufs {
        for w in 0..*windows as u64 {
            let offset = w * kernel.window_bytes;
            let size = (s.class - offset).min(kernel.window_bytes);
            entries.push(wgpu::BindGroupEntry {
                binding: entries.len() as u32,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: s.raw(),
                    offset: s.offset + offset,
                    size: std::num::NonZeroU64::new(size),
                }),
            });
        }
    }
    if let Some((u, offset)) = scalars {
        entries.push(wgpu::BindGroupEntry {
            binding: entries.len() as u32,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: u,
                offset,
                size: std::num::NonZeroU64::new(kernel.params.len().div_ceil(4) as u64 * 16),
            }),
        });
    }
    entries
}

/// `WGRAD_DEBUG=profile`: each kernel (and copy) in a submit of its own, timed (debugging
/// only).
pub(crate) fn profile(g: &Gpu, actions: &[Action]) {
    for a in actions {
        let started = std::time::Instant::now();
        let mut enc = g.device.create_command_encoder(&Default::default());
        record(&mut enc, std::slice::from_ref(a));
        g.queue.submit([enc.finish()]);
        let _ = g.wait_idle();
        let ms = started.elapsed().as_secs_f64() * 1e3;
        match a {
            Action::Dispatch(d) => {
                eprintln!("wgrad: kernel {} {:?}: {ms:.3} ms", d.label, d.groups)
            }
            Action::Copy { bytes, .. } => eprintln!("wgrad: copy of {bytes} bytes: {ms:.3} ms"),
        }
    }
}
