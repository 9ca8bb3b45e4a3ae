//! Counters that tests and benchmarks read: kernels, submits, allocations, pool hits.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Pipelines held by every device's cache now (a level, kept by the pipeline caches).
pub(crate) static PIPELINES_CACHED: AtomicU64 = AtomicU64::new(0);

pub(crate) struct AtomicCounters {
    pub kernels: AtomicU64,
    pub submits: AtomicU64,
    pub realizes: AtomicU64,
    pub bytes_allocated: AtomicU64,
    pub pooled_bytes: AtomicU64,
    pub pool_hits: AtomicU64,
    pub pool_misses: AtomicU64,
    pub pipelines_compiled: AtomicU64,
    pub fused_nodes: AtomicU64,
    pub peak_bytes: AtomicU64,
    pub pipelines_evicted: AtomicU64,
    pub plan_hits: AtomicU64,
    pub plan_misses: AtomicU64,
}

pub(crate) static COUNTERS: AtomicCounters = AtomicCounters {
    kernels: AtomicU64::new(0),
    submits: AtomicU64::new(0),
    realizes: AtomicU64::new(0),
    bytes_allocated: AtomicU64::new(0),
    pooled_bytes: AtomicU64::new(0),
    pool_hits: AtomicU64::new(0),
    pool_misses: AtomicU64::new(0),
    pipelines_compiled: AtomicU64::new(0),
    fused_nodes: AtomicU64::new(0),
    peak_bytes: AtomicU64::new(0),
    pipelines_evicted: AtomicU64::new(0),
    plan_hits: AtomicU64::new(0),
    plan_misses: AtomicU64::new(0),
};

/// A snapshot of wgrad's counters since the process started (or the last [`reset_counters`]).
///
/// `bytes_allocated` and `pooled_bytes` are levels (current bytes held from the driver, and
/// the idle part of them in the pool); the rest count events.
///
/// ```standalone_crate
/// use wgrad::prelude::*;
/// let before = wgrad::counters();
/// let y = (Tensor::from_vec(vec![1.0f32, 2.0], [2]) * 3.0).exp();
/// y.realize();
/// let d = wgrad::counters().since(&before);
/// assert_eq!(d.submits, 1);
/// assert_eq!(d.kernels, 1); // mul and exp fused into one kernel
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Compute kernels dispatched.
    pub kernels: u64,
    /// Queue submits.
    pub submits: u64,
    /// Calls of `realize` that had work to do.
    pub realizes: u64,
    /// Bytes currently held from the driver (in use or idle in the pool).
    pub bytes_allocated: u64,
    /// Bytes idle in the pool.
    pub pooled_bytes: u64,
    /// Buffer requests served from the pool.
    pub pool_hits: u64,
    /// Buffer requests that created a new buffer.
    pub pool_misses: u64,
    /// Pipelines (shaders) compiled; a training loop compiles only in its first step.
    pub pipelines_compiled: u64,
    /// Graph nodes computed inside another node's kernel (fused away).
    pub fused_nodes: u64,
    /// Highest `bytes_allocated` seen.
    pub peak_bytes: u64,
    /// Pipelines held by the cache (a level; bounded by [`crate::Policy::pipeline_cache`]).
    pub pipelines_cached: u64,
    /// Pipelines dropped from the cache as least recently used.
    pub pipelines_evicted: u64,
    /// Realizes whose graph had the structure of a cached plan (kernels, buffers and
    /// pipelines reused; only values and inputs rebound). See [`crate::Policy::plan_cache`].
    pub plan_hits: u64,
    /// Realizes that planned and lowered their graph (and cached the plan).
    pub plan_misses: u64,
}

impl Counters {
    /// Events between `earlier` and `self` (levels are kept as they are now).
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            kernels: self.kernels - earlier.kernels,
            submits: self.submits - earlier.submits,
            realizes: self.realizes - earlier.realizes,
            bytes_allocated: self.bytes_allocated,
            pooled_bytes: self.pooled_bytes,
            pool_hits: self.pool_hits - earlier.pool_hits,
            pool_misses: self.pool_misses - earlier.pool_misses,
            pipelines_compiled: self.pipelines_compiled - earlier.pipelines_compiled,
            fused_nodes: self.fused_nodes - earlier.fused_nodes,
            peak_bytes: self.peak_bytes,
            pipelines_cached: self.pipelines_cached,
            pipelines_evicted: self.pipelines_evicted - earlier.pipelines_evicted,
            plan_hits: self.plan_hits - earlier.plan_hits,
            plan_misses: self.plan_misses - earlier.plan_misses,
        }
    }
}

/// Reads the counters.
///
/// ```
/// let c = wgrad::counters();
/// assert!(c.submits >= 0);
/// ```
pub fn counters() -> Counters {
    let c = &COUNTERS;
    Counters {
        kernels: c.kernels.load(Relaxed),
        submits: c.submits.load(Relaxed),
        realizes: c.realizes.load(Relaxed),
        bytes_allocated: c.bytes_allocated.load(Relaxed),
        pooled_bytes: c.pooled_bytes.load(Relaxed),
        pool_hits: c.pool_hits.load(Relaxed),
        pool_misses: c.pool_misses.load(Relaxed),
        pipelines_compiled: c.pipelines_compiled.load(Relaxed),
        fused_nodes: c.fused_nodes.load(Relaxed),
        peak_bytes: c
            .peak_bytes
            .load(Relaxed)
            .max(c.bytes_allocated.load(Relaxed)),
        pipelines_cached: PIPELINES_CACHED.load(Relaxed),
        pipelines_evicted: c.pipelines_evicted.load(Relaxed),
        plan_hits: c.plan_hits.load(Relaxed),
        plan_misses: c.plan_misses.load(Relaxed),
    }
}

/// Sets the event counters and the peak to zero (levels stay).
///
/// ```
/// wgrad::reset_counters();
/// assert_eq!(wgrad::counters().kernels, 0);
/// ```
pub fn reset_counters() {
    let c = &COUNTERS;
    for a in [
        &c.kernels,
        &c.submits,
        &c.realizes,
        &c.pool_hits,
        &c.pool_misses,
        &c.pipelines_compiled,
        &c.fused_nodes,
        &c.pipelines_evicted,
        &c.plan_hits,
        &c.plan_misses,
    ] {
        a.store(0, Relaxed);
    }
    c.peak_bytes.store(c.bytes_allocated.load(Relaxed), Relaxed);
}

pub(crate) fn note_peak() {
    let now = COUNTERS.bytes_allocated.load(Relaxed);
    COUNTERS.peak_bytes.fetch_max(now, Relaxed);
}
