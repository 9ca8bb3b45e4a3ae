//! The buffer pool: storage buffers by size class, handed back when their last handle drops.

use super::counters::COUNTERS;
use super::device::gpu_or_panic;
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, LazyLock, Mutex};

/// A storage buffer that returns to the pool when dropped.
pub(crate) struct GpuBuffer {
    buffer: Option<wgpu::Buffer>,
    /// Bytes of the size class (the buffer's real size).
    pub class: u64,
}

impl GpuBuffer {
    pub fn raw(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("buffer present until drop")
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        if let Some(b) = self.buffer.take() {
            let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
            pool.entry(self.class).or_default().push(b);
            COUNTERS.pooled_bytes.fetch_add(self.class, Relaxed);
            shrink(&mut pool);
        }
    }
}

/// Frees idle buffers, largest first, while the idle bytes exceed what the policy keeps:
/// `max(pool_idle_bytes, bytes in use)`. Memory goes back to the driver as tensors drop, and a
/// training loop (whose temporaries are at most what it holds in use, or the floor) keeps its
/// buffers from step to step.
fn shrink(pool: &mut HashMap<u64, Vec<wgpu::Buffer>>) {
    let idle = COUNTERS.pooled_bytes.load(Relaxed);
    let in_use = COUNTERS.bytes_allocated.load(Relaxed).saturating_sub(idle);
    let keep = super::policy::policy().pool_idle_bytes.max(in_use);
    if idle <= keep {
        return;
    }
    let mut classes: Vec<u64> = pool.keys().copied().collect();
    classes.sort_unstable_by(|a, b| b.cmp(a));
    let mut idle = idle;
    for c in classes {
        let list = pool.get_mut(&c).expect("class present");
        while idle > keep {
            let Some(b) = list.pop() else { break };
            drop(b);
            idle -= c;
            COUNTERS.pooled_bytes.fetch_sub(c, Relaxed);
            COUNTERS.bytes_allocated.fetch_sub(c, Relaxed);
        }
        if idle <= keep {
            break;
        }
    }
}

/// Shared, reference-counted storage of a realized tensor.
pub(crate) type Storage = Arc<GpuBuffer>;

static POOL: LazyLock<Mutex<HashMap<u64, Vec<wgpu::Buffer>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Rounds a byte count up to its size class: at most 25 % larger, a multiple of 256 bytes.
pub(crate) fn size_class(bytes: u64) -> u64 {
    let b = bytes.max(256);
    let top = 63 - b.leading_zeros() as u64; // floor(log2 b)
    let step = if top >= 10 { 1u64 << (top - 2) } else { 256 };
    b.div_ceil(step) * step
}

/// A buffer of at least `bytes`, from the pool when one of the class is free.
pub(crate) fn alloc(bytes: u64) -> Storage {
    let class = size_class(bytes);
    let reused = POOL.lock().unwrap().entry(class).or_default().pop();
    let buffer = match reused {
        Some(b) => {
            COUNTERS.pool_hits.fetch_add(1, Relaxed);
            COUNTERS.pooled_bytes.fetch_sub(class, Relaxed);
            b
        }
        None => {
            COUNTERS.pool_misses.fetch_add(1, Relaxed);
            COUNTERS.bytes_allocated.fetch_add(class, Relaxed);
            gpu_or_panic()
                .device
                .create_buffer(&wgpu::BufferDescriptor {
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
    })
}

/// A uniform buffer of at least `bytes` for a realize's scalars (not pooled: small, and
/// written once per realize).
pub(crate) fn uniform(bytes: u64) -> wgpu::Buffer {
    gpu_or_panic()
        .device
        .create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgrad scalars"),
            size: bytes.max(16).div_ceil(16) * 16,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
}

/// Frees every idle buffer in the pool (their memory goes back to the driver).
///
/// ```
/// wgrad::trim_pool();
/// assert_eq!(wgrad::counters().pooled_bytes, 0);
/// ```
pub fn trim_pool() {
    let mut map = POOL.lock().unwrap();
    let freed: u64 = map.iter().map(|(c, v)| c * v.len() as u64).sum();
    map.clear();
    COUNTERS.pooled_bytes.fetch_sub(freed, Relaxed);
    COUNTERS.bytes_allocated.fetch_sub(freed, Relaxed);
}
