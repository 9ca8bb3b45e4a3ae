//! Devices as values: the [`Device`] handle, the per-device context (wgpu device and queue,
//! limits, buffer pool, compiled pipelines, a slot for the scheduler's plans), the
//! [`with_device`] scope and the default device. Knows nothing of graphs: the layers above
//! hold devices as opaque handles.

mod adapter;
pub(crate) mod pipelines;

use crate::base::error::{Error, Result};
use crate::base::limits::Limits;
pub use crate::device::adapter::DeviceInfo;
use crate::device::adapter::{create_gpu, describe};
use crate::device::pipelines::PipelineCache;
use crate::memory::access::AccessLock;
use crate::memory::pool::Pool;
use std::any::Any;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

/// The long-lived GPU context of one device: device, queue, what we know about them, and
/// what wgrad keeps per device (its buffer pool, compiled pipelines and realize plans).
pub(crate) struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: DeviceInfo,
    pub limits: Limits,
    /// Serializes wgrad's calls into the device where the backend needs it (GL).
    pub access: Arc<AccessLock>,
    pub pool: Arc<Pool>,
    pub pipelines: Mutex<PipelineCache>,
    pub plans: Mutex<PlanSlots>,
}

impl Gpu {
    fn new(device: wgpu::Device, queue: wgpu::Queue, info: DeviceInfo) -> Gpu {
        // On GL, wgpu-hal guards its one context with a lock that gives up after 6 s and
        // panics; llvmpipe runs a submit's kernels inside `queue.submit`, holding that lock.
        // wgrad's own calls therefore queue on a lock of wgrad's (which waits as long as it
        // must), and waits on the GPU poll without holding either.
        let access = Arc::new(AccessLock::new(info.backend == "gl"));
        Gpu {
            pool: Arc::new(Pool::new(device.clone(), access.clone())),
            device,
            queue,
            limits: Limits::of(&info),
            info,
            access,
            pipelines: Mutex::new(PipelineCache::default()),
            plans: Mutex::new(PlanSlots::default()),
        }
    }

    /// Waits until the device has finished all submitted work. Where the backend serializes
    /// (GL) this polls without blocking, taking wgrad's lock only for each poll, so that other
    /// threads' kernels can be compiled and submitted meanwhile.
    pub(crate) fn wait_idle(&self) -> Result<()> {
        let failed = |e: wgpu::PollError| Error::wgpu("waiting for the GPU failed", &e);
        if !self.access.serializes() {
            self.device
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(failed)?;
            return Ok(());
        }
        let mut pause = std::time::Duration::from_micros(50);
        loop {
            let status = {
                let _held = self.access.hold();
                self.device.poll(wgpu::PollType::Poll).map_err(failed)?
            };
            if status.is_queue_empty() {
                return Ok(());
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(std::time::Duration::from_millis(2));
        }
    }
}

/// A device's cached realize plans by structure key, least recently used first. A plan is
/// opaque here: the scheduler makes it and reads it back as its own type.
#[derive(Default)]
pub(crate) struct PlanSlots(Vec<(String, Arc<dyn Any + Send + Sync>)>);

impl PlanSlots {
    /// The plan cached for `key`, made most recently used.
    pub(crate) fn get(&mut self, key: &str) -> Option<Arc<dyn Any + Send + Sync>> {
        let k = self.0.iter().position(|(k, _)| k == key)?;
        let entry = self.0.remove(k);
        let plan = entry.1.clone();
        self.0.push(entry);
        Some(plan)
    }

    /// Caches `plan` for `key` as the most recently used, keeping at most `capacity` plans.
    pub(crate) fn put(&mut self, key: String, plan: Arc<dyn Any + Send + Sync>, capacity: usize) {
        self.0.retain(|(k, _)| *k != key);
        self.0.push((key, plan));
        let excess = self.0.len().saturating_sub(capacity);
        self.0.drain(..excess);
    }
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
}

static NEXT_DEVICE: AtomicU64 = AtomicU64::new(1);

/// The process's default device (opened on first use).
static DEFAULT: LazyLock<Device> = LazyLock::new(Device::unopened);

thread_local! {
    /// The devices of the enclosing [`with_device`] calls, innermost last.
    static SCOPE: RefCell<Vec<Device>> = const { RefCell::new(Vec::new()) };
}

/// A GPU device that wgrad runs on. Cheap to clone; every clone is the same device.
///
/// wgrad opens a default device by itself on first use (the best adapter: hardware first, then
/// lavapipe, then llvmpipe; `WGRAD_BACKEND` and `WGRAD_ADAPTER` choose), so most programs never
/// name one. An application with a wgpu device of its own hands it to wgrad with
/// [`Device::from_wgpu`] and shares its GPU; [`Device::open`] opens another device of wgrad's.
///
/// Tensors know their device: data are placed on the device of the [`with_device`] call that
/// makes them, results on their operands' device; a tensor made outside every `with_device`
/// (a constant, host data) is placed where it is first computed. Combining tensors of two
/// devices is an error naming both; [`Tensor::to_device`](crate::Tensor::to_device) moves one.
///
/// ```
/// use wgrad::prelude::*;
/// let dev = wgrad::Device::open().unwrap();
/// let x = wgrad::with_device(&dev, || Tensor::from_vec(vec![1.0f32, 2.0], [2]));
/// let y = (&x * 3.0).exp();
/// assert_eq!(y.device(), dev);
/// assert_ne!(y.device(), wgrad::Device::default());
/// assert!((y.to_vec::<f32>()[0] - 3.0f32.exp()).abs() < 1e-4);
/// ```
#[derive(Clone)]
pub struct Device(Arc<DeviceSlot>);

struct DeviceSlot {
    id: u64,
    gpu: OnceLock<std::result::Result<Arc<Gpu>, Error>>,
}

impl PartialEq for Device {
    fn eq(&self, other: &Device) -> bool {
        self.0.id == other.0.id
    }
}
impl Eq for Device {}

// wgrad's state behind a device stays consistent across a panic (its locks ignore poisoning
// and nothing is left half-updated), so tensors may be used inside `catch_unwind`.
impl std::panic::UnwindSafe for Device {}
impl std::panic::RefUnwindSafe for Device {}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.gpu.get() {
            Some(Ok(g)) => write!(
                f,
                "device #{} ({}, {})",
                self.0.id, g.info.name, g.info.backend
            ),
            Some(Err(_)) => write!(f, "device #{} (failed to open)", self.0.id),
            None => write!(f, "device #{} (not opened yet)", self.0.id),
        }
    }
}

impl Default for Device {
    /// The process's default device (the same handle every time; opened on first use).
    fn default() -> Device {
        DEFAULT.clone()
    }
}

impl Device {
    fn unopened() -> Device {
        Device(Arc::new(DeviceSlot {
            id: NEXT_DEVICE.fetch_add(1, Ordering::Relaxed),
            gpu: OnceLock::new(),
        }))
    }

    /// Opens a new device of wgrad's on the best adapter (another logical device when the
    /// default one is open already: its own queue, buffers and pipelines).
    ///
    /// ```
    /// let a = wgrad::Device::open().unwrap();
    /// let b = wgrad::Device::open().unwrap();
    /// assert_ne!(a, b);
    /// ```
    pub fn open() -> Result<Device> {
        #[cfg(not(target_arch = "wasm32"))]
        return pollster::block_on(Self::open_async());
        #[cfg(target_arch = "wasm32")]
        Err(Error::Device(
            "opening a device blocks, which the browser cannot do: use `Device::open_async().await`"
                .into(),
        ))
    }

    /// Opens a new device without blocking (for the browser).
    ///
    /// ```
    /// let d = pollster::block_on(wgrad::Device::open_async()).unwrap();
    /// assert!(!d.info().unwrap().name.is_empty());
    /// ```
    pub async fn open_async() -> Result<Device> {
        let d = Device::unopened();
        d.open_without_blocking().await?;
        Ok(d)
    }

    /// Opens a new device on the adapter numbered `index` in [`Device::adapters`]' order (0 is
    /// the one [`Device::open`] takes): one device per GPU of a machine with several, or one per
    /// MPI rank (`index` = the rank's local rank modulo the adapter count).
    ///
    /// ```
    /// let d = wgrad::Device::open_adapter(0).unwrap();
    /// assert_eq!(d.info().unwrap().name, wgrad::Device::open().unwrap().info().unwrap().name);
    /// assert!(wgrad::Device::open_adapter(1000).unwrap_err().to_string().contains("adapters"));
    /// ```
    pub fn open_adapter(index: usize) -> Result<Device> {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let d = Device::unopened();
            let created = pollster::block_on(create_gpu(Some(index)))
                .map(|(device, queue, info)| Arc::new(Gpu::new(device, queue, info)))?;
            let _ = d.0.gpu.set(Ok(created));
            Ok(d)
        }
        #[cfg(target_arch = "wasm32")]
        Err(Error::Device(format!(
            "open_adapter({index}) blocks, which the browser cannot do: use `Device::open_async().await`"
        )))
    }

    /// The adapters wgrad may open, best first: what [`Device::open_adapter`] numbers.
    /// `WGRAD_BACKEND` and `WGRAD_ADAPTER` narrow the list.
    ///
    /// ```
    /// let adapters = wgrad::Device::adapters().unwrap();
    /// for (k, a) in adapters.iter().enumerate() {
    ///     println!("{k}: {} ({}, {})", a.name, a.backend, a.device_type);
    /// }
    /// assert_eq!(adapters[0].name, wgrad::Device::open().unwrap().info().unwrap().name);
    /// ```
    pub fn adapters() -> Result<Vec<DeviceInfo>> {
        #[cfg(not(target_arch = "wasm32"))]
        return pollster::block_on(crate::device::adapter::adapter_infos());
        #[cfg(target_arch = "wasm32")]
        Err(Error::Device(
            "listing adapters blocks, which the browser cannot do".into(),
        ))
    }

    /// The device's context, opened without blocking if it is not open yet (an error to open
    /// it is kept, as `gpu` keeps it).
    async fn open_without_blocking(&self) -> Result<Arc<Gpu>> {
        if let Some(g) = self.0.gpu.get() {
            return g.clone();
        }
        let created = create_gpu(None)
            .await
            .map(|(device, queue, info)| Arc::new(Gpu::new(device, queue, info)));
        let _ = self.0.gpu.set(created);
        self.gpu() // (the slot is set now: this opens nothing)
    }

    /// A device from an application's own wgpu device and queue, so that wgrad shares its
    /// GPU instead of opening a second device. `adapter` describes the adapter the device was
    /// made from (its name, backend and type go into [`DeviceInfo`]); limits and features are
    /// read from the device (wgrad uses `shader-f16` when the device has it).
    ///
    /// ```
    /// let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    /// let adapter = pollster::block_on(instance.request_adapter(&Default::default())).unwrap();
    /// let (device, queue) =
    ///     pollster::block_on(adapter.request_device(&Default::default())).unwrap();
    /// let dev = wgrad::Device::from_wgpu(&adapter.get_info(), device, queue);
    /// let y = wgrad::with_device(&dev, || wgrad::Tensor::ones([3]).exp().sum_all());
    /// assert!((y.item() - 3.0 * 1f32.exp()).abs() < 1e-4);
    /// ```
    pub fn from_wgpu(
        adapter: &wgpu::AdapterInfo,
        device: wgpu::Device,
        queue: wgpu::Queue,
    ) -> Device {
        let d = Device::unopened();
        let info = describe(adapter, &device.limits(), device.features());
        let gpu = Arc::new(Gpu::new(device, queue, info));
        let _ = d.0.gpu.set(Ok(gpu));
        d
    }

    /// The adapter and limits of this device (opening it if it is the default one and not
    /// open yet).
    ///
    /// ```
    /// let info = wgrad::Device::default().info().unwrap();
    /// assert!(info.max_storage_buffer_binding_size > 0);
    /// ```
    pub fn info(&self) -> Result<DeviceInfo> {
        self.gpu().map(|g| g.info.clone())
    }

    /// The wgpu device and queue wgrad uses (the application's own ones for a device made by
    /// [`Device::from_wgpu`]), for an application's passes over wgrad's buffers.
    ///
    /// ```
    /// let (device, _queue) = wgrad::Device::default().wgpu().unwrap();
    /// assert!(device.limits().max_storage_buffers_per_shader_stage >= 4);
    /// ```
    pub fn wgpu(&self) -> Result<(wgpu::Device, wgpu::Queue)> {
        self.gpu().map(|g| (g.device.clone(), g.queue.clone()))
    }

    /// Waits until this device has finished all work submitted to it.
    ///
    /// ```
    /// let d = wgrad::Device::default();
    /// wgrad::Tensor::ones([4]).exp().realize();
    /// d.synchronize().unwrap();
    /// ```
    pub fn synchronize(&self) -> Result<()> {
        self.gpu()?.wait_idle()
    }

    /// The device's context, opened on first use.
    pub(crate) fn gpu(&self) -> Result<Arc<Gpu>> {
        #[cfg(target_arch = "wasm32")]
        return match self.0.gpu.get() {
            Some(g) => g.clone(),
            // (Not remembered: `init_async` may still open it.)
            None => Err(Error::Device(
                "no device yet: in the browser call `wgrad::init_async().await` first".into(),
            )),
        };
        #[cfg(not(target_arch = "wasm32"))]
        {
            self.0
                .gpu
                .get_or_init(|| {
                    pollster::block_on(create_gpu(None))
                        .map(|(device, queue, info)| Arc::new(Gpu::new(device, queue, info)))
                })
                .clone()
        }
    }

    /// The device's context if it is open (never opens it).
    pub(crate) fn opened(&self) -> Option<Arc<Gpu>> {
        self.0.gpu.get().and_then(|g| g.as_ref().ok().cloned())
    }
}

/// Runs `f` with `device` as the current device: tensors made from data or constants inside
/// are placed on it, and work on tensors that no device holds yet runs there.
///
/// ```
/// use wgrad::prelude::*;
/// let dev = wgrad::Device::open().unwrap();
/// let x = wgrad::with_device(&dev, || Tensor::ones([2]));
/// assert_eq!(x.device(), dev);
/// assert_eq!(Tensor::ones([2]).device(), wgrad::Device::default());
/// ```
pub fn with_device<R>(device: &Device, f: impl FnOnce() -> R) -> R {
    crate::base::scope::with_pushed(&SCOPE, device.clone(), f)
}

/// The device of the innermost [`with_device`], if any.
pub(crate) fn scoped() -> Option<Device> {
    crate::base::scope::innermost(&SCOPE)
}

/// The current device: the innermost [`with_device`]'s, else the default one.
pub(crate) fn current() -> Device {
    scoped().unwrap_or_default()
}

/// The current device's context, if it is open (never opens it).
pub(crate) fn opened() -> Option<Arc<Gpu>> {
    current().opened()
}

/// Opens the current device (the default one unless inside [`with_device`]) without
/// blocking (for the browser, where the default device must be opened this way); native
/// code may call it too.
///
/// ```
/// let info = pollster::block_on(wgrad::init_async()).unwrap();
/// assert!(!info.name.is_empty());
/// ```
pub async fn init_async() -> Result<DeviceInfo> {
    let g = current().open_without_blocking().await?;
    Ok(g.info.clone())
}

/// Opens the current device now (blocking) and reports it; an error says what to install.
///
/// ```
/// let info = wgrad::init().unwrap();
/// println!("running on {info}");
/// ```
pub fn init() -> Result<DeviceInfo> {
    // (On the web this only reports a device that `init_async` created.)
    current().info()
}

/// The adapter and limits of the current device (opens it if needed; panics with advice if
/// there is none).
///
/// ```
/// println!("{}", wgrad::device_info());
/// ```
pub fn device_info() -> DeviceInfo {
    crate::base::error::or_panic(current().info())
}

/// Frees every idle buffer in the pools of the default device and of the current one (their
/// memory goes back to the driver).
///
/// ```
/// wgrad::trim_pool();
/// assert_eq!(wgrad::counters().pooled_bytes, 0);
/// ```
pub fn trim_pool() {
    for d in [Device::default(), current()] {
        if let Some(g) = d.opened() {
            g.pool.trim();
        }
    }
}
