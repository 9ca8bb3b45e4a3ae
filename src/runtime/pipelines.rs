//! The pipeline cache: one compiled pipeline per generated kernel source. Shapes are baked into
//! the source, so a training loop (same shapes every step) compiles only in its first step.

use super::counters::COUNTERS;
use super::device::gpu;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{LazyLock, Mutex};

static CACHE: LazyLock<Mutex<HashMap<String, wgpu::ComputePipeline>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Validates WGSL with naga, as the device would; the error names the kernel.
pub fn validate_wgsl(source: &str, label: &str) -> Result<()> {
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

/// The pipeline for `source`, compiled on first use.
pub(crate) fn pipeline(source: &str, label: &str) -> Result<wgpu::ComputePipeline> {
    if let Some(p) = CACHE.lock().unwrap().get(source) {
        return Ok(p.clone());
    }
    validate_wgsl(source, label)?;
    let device = &gpu()?.device;
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let p = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(label),
        layout: None,
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
    CACHE.lock().unwrap().insert(source.to_string(), p.clone());
    Ok(p)
}
