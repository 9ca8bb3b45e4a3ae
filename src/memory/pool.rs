//! The buffer pool of a device: storage buffers by size class, handed back when their last
//! handle drops.

use crate::base::counters::COUNTERS;
use crate::memory::access::AccessLock;
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

/// A device's idle buffers by size class.
pub(crate) struct Pool {
    device: wgpu::Device,
    access: Arc<AccessLock>,
    free: Mutex<HashMap<u64, Vec<wgpu::Buffer>>>,
    /// Buffers to destroy once this device's lock is free (GL: a drop on a thread that does
    /// not hold it must not wait for another thread's submit).
    doomed: Mutex<Vec<wgpu::Buffer>>,
}

// As for `Device`: a pool's state stays consistent across a panic.
impl std::panic::UnwindSafe for Pool {}
impl std::panic::RefUnwindSafe for Pool {}

/// A storage buffer: one of a pool's (back to its pool when dropped), or an application's
/// (a window of it at `offset`, left to the application when dropped).
pub(crate) struct GpuBuffer {
    buffer: Option<wgpu::Buffer>,
    /// Bytes usable from `offset` (a pool buffer's size class).
    pub class: u64,
    /// Where the tensor's bytes start in the buffer (0 for a pool's).
    pub offset: u64,
    home: Option<Arc<Pool>>,
}

impl GpuBuffer {
    pub fn raw(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("buffer present until drop")
    }
    /// An application's buffer, `bytes` of it from `offset` (never pooled).
    pub(crate) fn external(buffer: wgpu::Buffer, offset: u64, bytes: u64) -> Self {
        GpuBuffer {
            buffer: Some(buffer),
            class: bytes,
            offset,
            home: None,
        }
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        if let (Some(b), Some(pool)) = (self.buffer.take(), &self.home) {
            pool.give_back(b, self.class);
        }
    }
}

/// Shared, reference-counted storage of a realized tensor.
pub(crate) type Storage = Arc<GpuBuffer>;

/// Rounds a byte count up to its size class: at most 25 % larger, a multiple of 256 bytes.
pub(crate) fn size_class(bytes: u64) -> u64 {
    let b = bytes.max(256);
    let top = 63 - b.leading_zeros() as u64; // floor(log2 b)
    let step = if top >= 10 { 1u64 << (top - 2) } else { 256 };
    b.div_ceil(step) * step
}

impl Pool {
    pub(crate) fn new(device: wgpu::Device, access: Arc<AccessLock>) -> Pool {
        Pool {
            device,
            access,
            free: Mutex::new(HashMap::new()),
            doomed: Mutex::new(vec![]),
        }
    }

    /// A buffer of at least `bytes`, from the pool when one of the class is free.
    pub(crate) fn alloc(self: &Arc<Self>, bytes: u64) -> Storage {
        let class = size_class(bytes);
        let reused = self.lock_free().entry(class).or_default().pop();
        let buffer = match reused {
            Some(b) => {
                COUNTERS.pool_hits.fetch_add(1, Relaxed);
                COUNTERS.pooled_bytes.fetch_sub(class, Relaxed);
                b
            }
            None => {
                COUNTERS.pool_misses.fetch_add(1, Relaxed);
                COUNTERS.bytes_allocated.fetch_add(class, Relaxed);
                let _held = self.access.hold();
                self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("wgrad tensor"),
                    size: class,
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_SRC
                        | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            }
        };
        Arc::new(GpuBuffer {
            buffer: Some(buffer),
            class,
            offset: 0,
            home: Some(self.clone()),
        })
    }

    fn lock_free(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Vec<wgpu::Buffer>>> {
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn give_back(&self, b: wgpu::Buffer, class: u64) {
        let victims = {
            let mut free = self.lock_free();
            free.entry(class).or_default().push(b);
            COUNTERS.pooled_bytes.fetch_add(class, Relaxed);
            shrink(&mut free)
        };
        self.destroy(victims);
    }

    /// Destroys `buffers` now if this thread may call into the device, else when the thread
    /// that holds it lets go (see [`Pool::destroy_doomed`]).
    fn destroy(&self, buffers: Vec<wgpu::Buffer>) {
        if buffers.is_empty() || !self.access.serializes() {
            return; // (dropped, so destroyed, here)
        }
        let mut doomed = self.doomed.lock().unwrap_or_else(|e| e.into_inner());
        doomed.extend(buffers);
        // Else the thread that holds the device destroys them (`destroy_doomed`).
        if let Some(_held) = self.access.try_hold() {
            doomed.clear();
        }
    }

    /// Destroys the buffers that drops on other threads left (called holding the device).
    pub(crate) fn destroy_doomed(&self) {
        let mut doomed = self.doomed.lock().unwrap_or_else(|e| e.into_inner());
        doomed.clear();
    }

    /// Frees every idle buffer (their memory goes back to the driver).
    pub(crate) fn trim(&self) {
        let victims: Vec<wgpu::Buffer> = {
            let mut free = self.lock_free();
            let freed: u64 = free.iter().map(|(c, v)| c * v.len() as u64).sum();
            COUNTERS.pooled_bytes.fetch_sub(freed, Relaxed);
            COUNTERS.bytes_allocated.fetch_sub(freed, Relaxed);
            free.drain().flat_map(|(_, v)| v).collect()
        };
        self.destroy(victims);
    }

    /// A uniform buffer of at least `bytes` for a realize's scalars (not pooled: small, and
    /// written once per realize).
    pub(crate) fn uniform(&self, bytes: u64) -> wgpu::Buffer {
        let _held = self.access.hold();
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgrad scalars"),
            size: bytes.max(16).div_ceil(16) * 16,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }
}

/// Takes idle buffers out, largest first, while the idle bytes exceed what the policy keeps:
/// `max(pool_idle_bytes, bytes in use)`, and returns them to be destroyed. Memory goes back to
/// the driver as tensors drop, and a training loop (whose temporaries are at most what it
/// holds in use, or the floor) keeps its buffers from step to step.
fn shrink(pool: &mut HashMap<u64, Vec<wgpu::Buffer>>) -> Vec<wgpu::Buffer> {
    let mut victims = vec![];
    let idle = COUNTERS.pooled_bytes.load(Relaxed);
    let in_use = COUNTERS.bytes_allocated.load(Relaxed).saturating_sub(idle);
    let keep = crate::base::policy::policy().pool_idle_bytes.max(in_use);
    if idle <= keep {
        return victims;
    }
    let mut classes: Vec<u64> = pool.keys().copied().collect();
    classes.sort_unstable_by(|a, b| b.cmp(a));
    let mut idle = idle;
    for c in classes {
        let list = pool.get_mut(&c).expect("class present");
        while idle > keep {
            let Some(b) = list.pop() else { break };
            victims.push(b);
            idle -= c;
            COUNTERS.pooled_bytes.fetch_sub(c, Relaxed);
            COUNTERS.bytes_allocated.fetch_sub(c, Relaxed);
        }
        if idle <= keep {
            break;
        }
    }
    victims
}
