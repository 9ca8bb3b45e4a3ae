//! The pipeline cache: one compiled pipeline per generated kernel source, least recently used
//! ones dropped past [`crate::Policy::pipeline_cache`]. Shapes are baked into the source and
//! scalars are data, so a training loop (same shapes every step) compiles only in its first
//! step.

use crate::base::counters::{COUNTERS, PIPELINES_CACHED};
use crate::base::error::{Error, Result};
use crate::device::Gpu;
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;

/// A device's pipelines by source, with the tick of their last use.
#[derive(Default)]
pub(crate) struct PipelineCache {
    map: HashMap<String, (Compiled, u64)>,
    tick: u64,
}

impl PipelineCache {
    fn get(&mut self, source: &str) -> Option<Compiled> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(source).map(|(c, t)| {
            *t = tick;
            c.clone()
        })
    }
    /// Inserts, then drops the least recently used entries past `cap` (the oldest quarter at
    /// once, so eviction costs O(1) per insert on average).
    fn insert(&mut self, source: String, c: Compiled, cap: usize) {
        self.tick += 1;
        if self.map.insert(source, (c, self.tick)).is_none() {
            PIPELINES_CACHED.fetch_add(1, Relaxed);
        }
        if self.map.len() > cap.max(1) {
            let mut ticks: Vec<u64> = self.map.values().map(|(_, t)| *t).collect();
            ticks.sort_unstable();
            let keep = cap.max(1) * 3 / 4;
            let cut = ticks[ticks.len() - keep.max(1)];
            let before = self.map.len();
            self.map.retain(|_, (_, t)| *t >= cut);
            PIPELINES_CACHED.fetch_sub((before - self.map.len()) as u64, Relaxed);
            COUNTERS
                .pipelines_evicted
                .fetch_add((before - self.map.len()) as u64, Relaxed);
        }
    }
}

impl Drop for PipelineCache {
    fn drop(&mut self) {
        PIPELINES_CACHED.fetch_sub(self.map.len() as u64, Relaxed);
    }
}

/// Validates WGSL with naga, as the device would; the error names the kernel.
pub(crate) fn validate_wgsl(source: &str, label: &str) -> Result<()> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| {
        Error::Device(format!(
            "kernel {label}: WGSL parse error: {}\n{source}",
            e.emit_to_string(source)
        ))
    })?;
    let mut v = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    );
    v.validate(&module).map_err(|e| {
        Error::Device(format!(
            "kernel {label}: WGSL validation error: {e:?}\n{source}"
        ))
    })?;
    Ok(())
}

/// A compiled kernel and the layout of its bindings.
#[derive(Clone)]
pub(crate) struct Compiled {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

/// The pipeline for `source` with `reads` read-only storage bindings, `writes` read-write ones
/// after them (an output's windows) and, with `params`, a uniform block of scalars after that;
/// compiled on first use. The layout is explicit (not derived from the shader), so a binding
/// that a kernel happens not to read is still accepted.
pub(crate) fn pipeline(
    g: &Gpu,
    source: &str,
    label: &str,
    reads: usize,
    writes: usize,
    params: bool,
) -> Result<Compiled> {
    if let Some(p) = g
        .pipelines
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(source)
    {
        return Ok(p);
    }
    validate_wgsl(source, label)?;
    let _held = g.access.hold();
    let device = &g.device;
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let entry = |binding: usize, read_only: bool| wgpu::BindGroupLayoutEntry {
        binding: binding as u32,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    };
    let uniform = wgpu::BindGroupLayoutEntry {
        binding: (reads + writes) as u32,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    };
    let entries: Vec<wgpu::BindGroupLayoutEntry> = (0..reads)
        .map(|b| entry(b, true))
        .chain((reads..reads + writes).map(|b| entry(b, false)))
        .chain(params.then_some(uniform))
        .collect();
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(label),
        entries: &entries,
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(label),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let p = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(label),
        layout: Some(&pipeline_layout),
        module: &module,
        entry_point: Some("main"),
        // Every kernel writes its workgroup memory before reading it; skipping the zero fill
        // matters on GL, where it costs seconds of shader compilation per kernel.
        compilation_options: wgpu::PipelineCompilationOptions {
            zero_initialize_workgroup_memory: false,
            ..Default::default()
        },
        cache: None,
    });
    COUNTERS.pipelines_compiled.fetch_add(1, Relaxed);
    let compiled = Compiled {
        pipeline: p,
        layout,
    };
    let cap = crate::base::policy::policy().pipeline_cache;
    g.pipelines
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(source.to_string(), compiled.clone(), cap);
    Ok(compiled)
}
