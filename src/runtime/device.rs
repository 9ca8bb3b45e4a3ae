//! Finding an adapter and creating the device: hardware first, then lavapipe, then llvmpipe.

use crate::error::{Error, Result};
use std::sync::OnceLock;

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

/// The long-lived GPU context: device, queue and what we know about them.
pub(crate) struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: DeviceInfo,
    pub limits: Limits,
}

/// The device limits that size checks and lowering need; passed to lowering as an argument,
/// so kernels can be generated (and tested) without a device.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Limits {
    /// Largest storage-buffer binding, in bytes.
    pub max_binding: u64,
    /// Largest buffer, in bytes.
    pub max_buffer: u64,
    /// Storage buffers one kernel may bind (inputs and the output).
    pub max_storage_buffers: u32,
    /// Workgroups per dispatch dimension.
    pub max_workgroups: u32,
    /// A software adapter (lavapipe, llvmpipe, SwiftShader): memory is ordinary memory.
    pub cpu: bool,
    /// Whether f16 tensors are available.
    pub shader_f16: bool,
    /// Alignment of a uniform binding's offset (a kernel's scalars), in bytes.
    pub uniform_align: u32,
}

impl Limits {
    pub(crate) fn of(info: &DeviceInfo) -> Limits {
        Limits {
            max_binding: info.max_storage_buffer_binding_size,
            max_buffer: info.max_buffer_size,
            max_storage_buffers: info.max_storage_buffers_per_shader_stage,
            max_workgroups: info.max_compute_workgroups_per_dimension,
            cpu: info.device_type == "Cpu",
            shader_f16: info.shader_f16,
            uniform_align: info.min_uniform_buffer_offset_alignment,
        }
    }
    /// What every WebGPU device guarantees (used where no device is open yet, and in tests).
    pub(crate) fn webgpu_default() -> Limits {
        Limits {
            max_binding: 128 << 20,
            max_buffer: 256 << 20,
            max_storage_buffers: 8,
            max_workgroups: 65535,
            cpu: false,
            shader_f16: false,
            uniform_align: 256,
        }
    }
    /// The largest tensor, in bytes: one buffer (bound as several windows when it is larger
    /// than one binding).
    pub(crate) fn max_tensor_bytes(&self) -> u64 {
        self.max_buffer
    }
    /// The size of one binding window of a large tensor: the binding limit, down to the
    /// storage offset alignment.
    pub(crate) fn window_bytes(&self) -> u64 {
        (self.max_binding / 256 * 256).max(256)
    }
}

/// The device, if one has been created (never creates one).
pub(crate) fn opened() -> Option<&'static Gpu> {
    GPU.get().and_then(|g| g.as_ref().ok())
}

static GPU: OnceLock<std::result::Result<Gpu, Error>> = OnceLock::new();

/// The global device, created on first use.
pub(crate) fn gpu() -> Result<&'static Gpu> {
    GPU.get_or_init(|| pollster::block_on(create_gpu()))
        .as_ref()
        .map_err(|e| e.clone())
}

/// The global device, or a panic that says what to install.
pub(crate) fn gpu_or_panic() -> &'static Gpu {
    crate::error::or_panic(gpu())
}

/// Creates the device without blocking (for the browser); native code may call it too.
///
/// ```
/// let info = pollster::block_on(wgrad::init_async()).unwrap();
/// assert!(!info.name.is_empty());
/// ```
pub async fn init_async() -> Result<DeviceInfo> {
    if let Some(g) = GPU.get() {
        return g.as_ref().map(|g| g.info.clone()).map_err(|e| e.clone());
    }
    let created = create_gpu().await;
    let _ = GPU.set(created);
    gpu().map(|g| g.info.clone())
}

/// Creates the device now (blocking) and reports it; an error says what to install.
///
/// ```
/// let info = wgrad::init().unwrap();
/// println!("running on {info}");
/// ```
pub fn init() -> Result<DeviceInfo> {
    // (On the web this only reports a device that `init_async` created.)
    gpu().map(|g| g.info.clone())
}

/// The adapter and limits in use (creates the device if needed; panics with advice if none).
///
/// ```
/// println!("{}", wgrad::device_info());
/// ```
pub fn device_info() -> DeviceInfo {
    gpu_or_panic().info.clone()
}

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

async fn pick_adapter(
    instance: &wgpu::Instance,
    backends: wgpu::Backends,
) -> Result<wgpu::Adapter> {
    let wanted_name = std::env::var("WGRAD_ADAPTER")
        .ok()
        .filter(|s| !s.is_empty());
    #[cfg(not(target_arch = "wasm32"))]
    {
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
        adapters
            .into_iter()
            .next()
            .ok_or_else(|| Error::Device(INSTALL_HINT.into()))
    }
    #[cfg(target_arch = "wasm32")]
    {
        let _ = (backends, wanted_name);
        instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::Device(format!("{INSTALL_HINT} ({e})")))
    }
}

async fn create_gpu() -> Result<Gpu> {
    let backends = backend_from_env()?.unwrap_or(wgpu::Backends::all());
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    let instance = wgpu::Instance::new(desc);
    let adapter = pick_adapter(&instance, backends).await?;
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
        .map_err(|e| Error::Device(format!("adapter {} refused a device: {e}", ainfo.name)))?;
    let info = DeviceInfo {
        name: ainfo.name.clone(),
        backend: format!("{:?}", ainfo.backend).to_lowercase(),
        device_type: format!("{:?}", ainfo.device_type),
        driver: format!("{} {}", ainfo.driver, ainfo.driver_info)
            .trim()
            .to_string(),
        max_buffer_size: limits.max_buffer_size,
        max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size as u64,
        max_storage_buffers_per_shader_stage: limits.max_storage_buffers_per_shader_stage,
        max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
        max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
        shader_f16,
        min_uniform_buffer_offset_alignment: limits.min_uniform_buffer_offset_alignment,
    };
    Ok(Gpu {
        device,
        queue,
        limits: Limits::of(&info),
        info,
    })
}
