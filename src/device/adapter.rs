//! Finding an adapter and creating a device on it: hardware first, then lavapipe, then
//! llvmpipe (`WGRAD_BACKEND` and `WGRAD_ADAPTER` choose), and what wgrad reports of it.

use crate::base::error::{Error, Result};

fn backend_from_env() -> Result<Option<wgpu::Backends>> {
    let Ok(v) = std::env::var("WGRAD_BACKEND") else {
        return Ok(None);
    };
    let b = match v.to_ascii_lowercase().as_str() {
        "" | "auto" => return Ok(None),
        "vulkan" | "vk" => wgpu::Backends::VULKAN,
        "gl" | "gles" | "opengl" => wgpu::Backends::GL,
        "metal" | "mtl" => wgpu::Backends::METAL,
        "dx12" | "d3d12" => wgpu::Backends::DX12,
        "webgpu" | "browser" => wgpu::Backends::BROWSER_WEBGPU,
        other => {
            return Err(Error::Device(format!(
                "WGRAD_BACKEND={other:?} is not one of vulkan, gl, metal, dx12, webgpu"
            )));
        }
    };
    Ok(Some(b))
}

const INSTALL_HINT: &str = "no GPU adapter found. wgrad needs Vulkan, Metal, DX12 or OpenGL; on a \
machine without a GPU install a software driver: on Debian/Ubuntu `apt-get install -y \
mesa-vulkan-drivers libvulkan1` (lavapipe) or `libegl-mesa0` (llvmpipe through EGL)";

#[cfg(not(target_arch = "wasm32"))]
fn rank(info: &wgpu::AdapterInfo) -> u32 {
    let hw = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    let backend = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        wgpu::Backend::BrowserWebGpu => 0,
        _ => 1,
    };
    hw * 2 + backend
}

/// The adapters wgrad may open, best first (hardware, then lavapipe, then llvmpipe), as
/// `WGRAD_BACKEND` and `WGRAD_ADAPTER` narrow them.
#[cfg(not(target_arch = "wasm32"))]
async fn ranked_adapters(
    instance: &wgpu::Instance,
    backends: wgpu::Backends,
) -> Result<Vec<wgpu::Adapter>> {
    let wanted_name = std::env::var("WGRAD_ADAPTER")
        .ok()
        .filter(|s| !s.is_empty());
    let mut adapters = instance.enumerate_adapters(backends).await;
    if let Some(name) = &wanted_name {
        let lower = name.to_lowercase();
        let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
        adapters.retain(|a| a.get_info().name.to_lowercase().contains(&lower));
        if adapters.is_empty() {
            return Err(Error::Device(format!(
                "WGRAD_ADAPTER={name:?} matches none of the adapters found: {names:?}"
            )));
        }
    }
    adapters.sort_by_key(|a| rank(&a.get_info()));
    Ok(adapters)
}

/// The instance wgrad opens adapters from (the backends `WGRAD_BACKEND` allows).
fn instance() -> Result<(wgpu::Instance, wgpu::Backends)> {
    let backends = backend_from_env()?.unwrap_or(wgpu::Backends::all());
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    Ok((wgpu::Instance::new(desc), backends))
}

/// The adapters wgrad may open, best first (what
/// [`Device::open_adapter`](crate::Device::open_adapter) numbers), described with the limits a
/// device on each would have.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) async fn adapter_infos() -> Result<Vec<DeviceInfo>> {
    let (instance, backends) = instance()?;
    Ok(ranked_adapters(&instance, backends)
        .await?
        .iter()
        .map(|a| describe(&a.get_info(), &a.limits(), a.features()))
        .collect())
}

/// The adapter numbered `index` in wgrad's order (0, the best one, when `index` is `None`).
async fn pick_adapter(
    instance: &wgpu::Instance,
    backends: wgpu::Backends,
    index: Option<usize>,
) -> Result<wgpu::Adapter> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let adapters = ranked_adapters(instance, backends).await?;
        let count = adapters.len();
        if count == 0 {
            return Err(Error::Device(INSTALL_HINT.into()));
        }
        let k = index.unwrap_or(0);
        adapters.into_iter().nth(k).ok_or_else(|| {
            Error::Device(format!(
                "open_adapter({k}): there are {count} adapters (numbered from 0; \
                 Device::adapters() lists them)"
            ))
        })
    }
    #[cfg(target_arch = "wasm32")]
    {
        let _ = backends;
        if let Some(k @ 1..) = index {
            return Err(Error::Device(format!(
                "open_adapter({k}): the browser offers one adapter (number 0)"
            )));
        }
        instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::wgpu(INSTALL_HINT, &e))
    }
}

/// A device and queue on the adapter numbered `index` in wgrad's order (the best one when
/// `None`), and what wgrad reports of them.
pub(crate) async fn create_gpu(
    index: Option<usize>,
) -> Result<(wgpu::Device, wgpu::Queue, DeviceInfo)> {
    let (instance, backends) = instance()?;
    let adapter = pick_adapter(&instance, backends, index).await?;
    let ainfo = adapter.get_info();
    let limits = adapter.limits();
    let mut features = wgpu::Features::empty();
    let shader_f16 = adapter.features().contains(wgpu::Features::SHADER_F16);
    if shader_f16 {
        features |= wgpu::Features::SHADER_F16;
    }
    let (device, queue) = adapter
        .request_device(&wgpu::DeviceDescriptor {
            label: Some("wgrad"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        })
        .await
        .map_err(|e| Error::wgpu(format!("adapter {} refused a device", ainfo.name), &e))?;
    let info = describe(&ainfo, &limits, features);
    Ok((device, queue, info))
}

/// What wgrad reports of a device made from `adapter` with `limits` and `features`.
pub(crate) fn describe(
    adapter: &wgpu::AdapterInfo,
    limits: &wgpu::Limits,
    features: wgpu::Features,
) -> DeviceInfo {
    DeviceInfo {
        name: adapter.name.clone(),
        backend: format!("{:?}", adapter.backend).to_lowercase(),
        device_type: format!("{:?}", adapter.device_type),
        driver: format!("{} {}", adapter.driver, adapter.driver_info)
            .trim()
            .to_string(),
        max_buffer_size: limits.max_buffer_size,
        max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
        max_storage_buffers_per_shader_stage: limits.max_storage_buffers_per_shader_stage,
        max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
        max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
        shader_f16: features.contains(wgpu::Features::SHADER_F16),
        min_uniform_buffer_offset_alignment: limits.min_uniform_buffer_offset_alignment,
    }
}

/// What wgrad runs on: the adapter and the limits requested from it.
///
/// ```
/// let info = wgrad::device_info();
/// println!("{} ({}, {})", info.name, info.backend, info.device_type);
/// assert!(info.max_storage_buffer_binding_size > 0);
/// ```
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    /// Adapter name, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`.
    pub name: String,
    /// Backend: `vulkan`, `gl`, `metal`, `dx12` or `webgpu`.
    pub backend: String,
    /// `DiscreteGpu`, `IntegratedGpu`, `Cpu`, …
    pub device_type: String,
    /// Driver name and version as the adapter reports them.
    pub driver: String,
    /// Largest buffer, in bytes.
    pub max_buffer_size: u64,
    /// Largest storage-buffer binding, in bytes.
    pub max_storage_buffer_binding_size: u64,
    /// Storage buffers one compute shader may bind.
    pub max_storage_buffers_per_shader_stage: u32,
    /// Workgroups per dispatch dimension.
    pub max_compute_workgroups_per_dimension: u32,
    /// Invocations per workgroup.
    pub max_compute_invocations_per_workgroup: u32,
    /// Whether `f16` tensors are available (`shader-f16`).
    pub shader_f16: bool,
    /// Alignment of uniform buffer offsets, in bytes.
    pub min_uniform_buffer_offset_alignment: u32,
}

impl std::fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} [{}, {}] max_buffer={} max_storage_binding={} storage_buffers/stage={} f16={}",
            self.name,
            self.backend,
            self.device_type,
            self.max_buffer_size,
            self.max_storage_buffer_binding_size,
            self.max_storage_buffers_per_shader_stage,
            self.shader_f16
        )
    }
}
