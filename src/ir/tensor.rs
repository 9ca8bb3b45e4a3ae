//! The tensor handle: a cheap-to-clone reference to a node of the lazy graph.

use crate::base::dtype::{DType, numel};
use crate::base::error::{Error, Result, or_panic};
use crate::device::Device;
use crate::ir::op::Op;
use crate::memory::pool::Storage;
use crate::prim::source::Source;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) struct Node {
    pub id: u64,
    pub op: Op,
    pub shape: Vec<usize>,
    pub dtype: DType,
    /// The node's operands; emptied when the node is realized outside every transform, so a
    /// training loop does not keep the history of all its steps alive.
    pub inputs: RwLock<Vec<Tensor>>,
    pub storage: Mutex<Option<Storage>>,
    /// The device the node is placed on: its operands', its `with_device` scope's, or the one
    /// that first computed it; unset while nothing places it.
    pub device: OnceLock<Device>,
    /// Data from the host not yet on the device (uploaded by the first realize that needs it).
    pub host: Mutex<Option<Vec<u8>>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        // Drop long chains iteratively instead of recursively (no stack overflow on deep graphs).
        let mut stack: Vec<Tensor> = std::mem::take(self.inputs.get_mut().unwrap());
        while let Some(t) = stack.pop() {
            if let Some(mut node) = Arc::into_inner(t.0) {
                stack.append(node.inputs.get_mut().unwrap());
            }
        }
    }
}

/// An n-dimensional array on the GPU: a handle to a node of the lazy graph.
///
/// Cloning is cheap (a reference count). Operations only record graph nodes; the work runs
/// when a result is needed ([`Tensor::realize`], [`Tensor::to_vec`], printing). Shapes and
/// dtypes are checked when a node is built.
///
/// Operations panic on bad input with a message that names the op and the shapes; each has
/// a `try_` twin that returns [`crate::Result`] instead (e.g. [`Tensor::try_add`]).
///
/// ```
/// use wgrad::prelude::*;
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [3]);
/// let y = (&x * 2.0 + 1.0).sum_all();
/// assert_eq!(y.item(), 15.0);
/// ```
#[derive(Clone)]
pub struct Tensor(pub(crate) Arc<Node>);

/// A Rust type that can fill a tensor: `f32`, `half::f16`, `i32`, `u32`, `bool`.
pub trait Element: Copy + Send + Sync + 'static + std::fmt::Debug {
    /// The matching dtype.
    const DTYPE: DType;
    /// Appends the buffer bytes of `xs`.
    fn write_bytes(xs: &[Self], out: &mut Vec<u8>);
    /// Reads `n` values from buffer bytes.
    fn read_bytes(bytes: &[u8], n: usize) -> Vec<Self>;
}

macro_rules! pod_element {
    ($t:ty, $d:expr) => {
        impl Element for $t {
            const DTYPE: DType = $d;
            fn write_bytes(xs: &[Self], out: &mut Vec<u8>) {
                out.extend_from_slice(bytemuck::cast_slice(xs));
            }
            fn read_bytes(bytes: &[u8], n: usize) -> Vec<Self> {
                bytemuck::pod_collect_to_vec(&bytes[..n * std::mem::size_of::<$t>()])
            }
        }
    };
}
pod_element!(f32, DType::F32);
pod_element!(half::f16, DType::F16);
pod_element!(i32, DType::I32);
pod_element!(u32, DType::U32);

impl Element for bool {
    const DTYPE: DType = DType::Bool;
    fn write_bytes(xs: &[Self], out: &mut Vec<u8>) {
        for &x in xs {
            out.extend_from_slice(&(x as u32).to_le_bytes());
        }
    }
    fn read_bytes(bytes: &[u8], n: usize) -> Vec<Self> {
        let words: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes[..n * 4]);
        words.into_iter().map(|w| w != 0).collect()
    }
}

/// Checks what a node needs of the device: against its limits when a device is open, else
/// only what needs none (the rest is checked when the graph is realized).
pub(crate) fn check_fits(op: &'static str, shape: &[usize], dtype: DType) -> Result<()> {
    check_fits_on(op, shape, dtype, None)
}

fn check_fits_on(
    op: &'static str,
    shape: &[usize],
    dtype: DType,
    device: Option<&Device>,
) -> Result<()> {
    let n = crate::base::dtype::checked_numel(op, shape)?;
    let opened = match device {
        Some(d) => d.opened(),
        None => crate::device::opened(),
    };
    match opened {
        Some(g) => check_fits_limits(op, shape, dtype, &g.limits),
        None if n >= u32::MAX as usize => too_large(op, shape, dtype, u32::MAX as u128),
        None => Ok(()),
    }
}

fn too_large(op: &'static str, shape: &[usize], dtype: DType, limit: u128) -> Result<()> {
    let bytes = (numel(shape) as u128) * dtype.size() as u128;
    Err(Error::TooLarge {
        op,
        msg: format!(
            "a {dtype} tensor of shape {shape:?} needs {bytes} bytes; this device binds at most {limit}"
        ),
    })
}

/// Checks a node against the device's limits: its size, and f16 support.
pub(crate) fn check_fits_limits(
    op: &'static str,
    shape: &[usize],
    dtype: DType,
    limits: &crate::base::limits::Limits,
) -> Result<()> {
    let n = crate::base::dtype::checked_numel(op, shape)?;
    let bytes = (n as u128) * dtype.size() as u128;
    let limit = limits.max_tensor_bytes() as u128;
    if bytes > limit || n as u128 >= u32::MAX as u128 {
        return too_large(op, shape, dtype, limit);
    }
    if dtype == DType::F16 && !limits.shader_f16 {
        return crate::base::error::dtype_err(
            op,
            "f16 needs the adapter feature `shader-f16`, which this adapter lacks; use f32",
        );
    }
    Ok(())
}

impl Tensor {
    /// Records a node. Callers have checked shapes and dtypes.
    pub(crate) fn from_op(
        op: Op,
        inputs: Vec<Tensor>,
        shape: Vec<usize>,
        dtype: DType,
    ) -> Result<Tensor> {
        let device = device_of(op.name(), &inputs)?;
        check_fits_on(op.name(), &shape, dtype, device.as_ref())?;
        let placed = OnceLock::new();
        if let Some(d) = device {
            let _ = placed.set(d);
        }
        Ok(Tensor(Arc::new(Node {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            op,
            shape,
            dtype,
            inputs: RwLock::new(inputs),
            storage: Mutex::new(None),
            device: placed,
            host: Mutex::new(None),
        })))
    }

    /// The device the tensor is placed on, if anything places it yet (see [`Tensor::device`]).
    pub(crate) fn placed(&self) -> Option<&Device> {
        self.0.device.get()
    }

    /// Uploads host data still waiting for the device (once; the host copy is released).
    pub(crate) fn upload_pending(&self, device: &Device, g: &crate::device::Gpu) -> Result<()> {
        let mut storage = self.0.storage.lock().unwrap();
        if storage.is_some() {
            return Ok(());
        }
        let Some(bytes) = self.0.host.lock().unwrap().take() else {
            return Ok(());
        };
        let s = g.pool.alloc(bytes.len() as u64);
        g.queue.write_buffer(s.raw(), 0, &bytes);
        let _ = self.0.device.set(device.clone());
        *storage = Some(s);
        Ok(())
    }

    /// Gives the node its value, on `device`.
    pub(crate) fn set_storage(&self, s: Storage, device: &Device) {
        let _ = self.0.device.set(device.clone());
        *self.0.storage.lock().unwrap() = Some(s);
    }

    /// Drops the node's operands (its history), keeping its value.
    /// A new node with this node's op, shape and dtype over `inputs` (of the same shapes).
    pub(crate) fn with_inputs(&self, inputs: Vec<Tensor>) -> Tensor {
        crate::base::error::or_panic(Tensor::from_op(
            self.op().clone(),
            inputs,
            self.shape().to_vec(),
            self.dtype(),
        ))
    }

    pub(crate) fn forget_inputs(&self) {
        let old = std::mem::take(&mut *self.0.inputs.write().unwrap());
        drop(old);
    }

    /// The shape.
    ///
    /// ```
    /// assert_eq!(wgrad::Tensor::zeros([2, 3]).shape(), &[2, 3]);
    /// ```
    pub fn shape(&self) -> &[usize] {
        &self.0.shape
    }
    /// The element type.
    ///
    /// ```
    /// assert_eq!(wgrad::Tensor::zeros([2]).dtype(), wgrad::DType::F32);
    /// ```
    pub fn dtype(&self) -> DType {
        self.0.dtype
    }
    /// Number of axes.
    ///
    /// ```
    /// assert_eq!(wgrad::Tensor::zeros([2, 3]).rank(), 2);
    /// ```
    pub fn rank(&self) -> usize {
        self.0.shape.len()
    }
    /// Number of elements.
    ///
    /// ```
    /// assert_eq!(wgrad::Tensor::zeros([2, 3]).numel(), 6);
    /// ```
    pub fn numel(&self) -> usize {
        numel(&self.0.shape)
    }
    /// A process-unique id of the graph node (for printouts and debugging).
    ///
    /// ```
    /// let a = wgrad::Tensor::zeros([1]);
    /// assert_eq!(a.id(), a.clone().id());
    /// ```
    pub fn id(&self) -> u64 {
        self.0.id
    }
    pub(crate) fn op(&self) -> &Op {
        &self.0.op
    }
    pub(crate) fn inputs(&self) -> Vec<Tensor> {
        self.0.inputs.read().unwrap().clone()
    }
    pub(crate) fn storage(&self) -> Option<Storage> {
        self.0.storage.lock().unwrap().clone()
    }
    /// Whether the tensor's value is on the device (no pending work).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let y = Tensor::ones([2]).exp();
    /// assert!(!y.is_realized());
    /// y.realize();
    /// assert!(y.is_realized());
    /// ```
    pub fn is_realized(&self) -> bool {
        self.0.storage.lock().unwrap().is_some()
    }
    /// Whether the tensor holds its values already (on the device, or on the host waiting
    /// for upload): it has no operands to compute.
    pub(crate) fn has_value(&self) -> bool {
        self.is_realized() || self.0.host.lock().unwrap().is_some()
    }
    pub(crate) fn same(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// A tensor from a `Vec` and a shape (row-major).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let t = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]);
    /// assert_eq!(t.shape(), &[2, 2]);
    /// ```
    #[track_caller]
    pub fn from_vec<T: Element>(data: Vec<T>, shape: impl AsRef<[usize]>) -> Tensor {
        or_panic(Self::try_from_slice(&data, shape))
    }
    /// A tensor from a slice and a shape (row-major).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let t = Tensor::from_slice(&[1i32, 2, 3], [3]);
    /// assert_eq!(t.dtype(), DType::I32);
    /// ```
    #[track_caller]
    pub fn from_slice<T: Element>(data: &[T], shape: impl AsRef<[usize]>) -> Tensor {
        or_panic(Self::try_from_slice(data, shape))
    }
    /// Fallible [`Tensor::from_slice`]: the data length must match the shape.
    ///
    /// The values stay on the host until the first realize that needs them uploads them (in
    /// the same submit), so building a graph never waits for a device.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert!(Tensor::try_from_slice(&[1.0f32, 2.0], [3]).is_err());
    /// ```
    pub fn try_from_slice<T: Element>(data: &[T], shape: impl AsRef<[usize]>) -> Result<Tensor> {
        let shape = shape.as_ref().to_vec();
        let n = crate::base::dtype::checked_numel("from_slice", &shape)?;
        if n != data.len() {
            return crate::base::error::shape_err(
                "from_slice",
                format!(
                    "{} values do not fill shape {shape:?} ({} elements)",
                    data.len(),
                    numel(&shape)
                ),
            );
        }
        check_fits("from_slice", &shape, T::DTYPE)?;
        let mut bytes = Vec::with_capacity(data.len() * T::DTYPE.size() + 4);
        T::write_bytes(data, &mut bytes);
        Tensor::from_host_bytes(bytes, shape, T::DTYPE)
    }

    /// A data node whose values wait on the host (padded to whole words, at least one) for
    /// the first realize that needs them.
    pub(crate) fn from_host_bytes(
        mut bytes: Vec<u8>,
        shape: Vec<usize>,
        dtype: DType,
    ) -> Result<Tensor> {
        while bytes.len() % 4 != 0 || bytes.is_empty() {
            bytes.push(0);
        }
        let t = Tensor::from_op(Op::Source(Source::Data), vec![], shape, dtype)?;
        *t.0.host.lock().unwrap() = Some(bytes);
        Ok(t)
    }
}

/// The one device that a set of tensors is placed on, gathered tensor by tensor: two devices
/// are an error naming both.
#[derive(Default)]
pub(crate) struct Placement(Option<Device>);

impl Placement {
    /// Takes `t`'s device into account (`op` names the operation in the error).
    pub(crate) fn see(&mut self, op: &'static str, t: &Tensor) -> Result<()> {
        match (t.placed(), &self.0) {
            (Some(d), Some(f)) if d != f => Err(Error::DeviceMismatch {
                op,
                first: format!("{f:?}"),
                second: format!("{d:?}"),
            }),
            (Some(d), None) => {
                self.0 = Some(d.clone());
                Ok(())
            }
            _ => Ok(()),
        }
    }
    /// The device found, if any.
    pub(crate) fn device(self) -> Option<Device> {
        self.0
    }
}

/// The one device among `inputs`' (an error naming both when there are two), else the device of
/// the enclosing `with_device`, else none.
fn device_of(op: &'static str, inputs: &[Tensor]) -> Result<Option<Device>> {
    let mut placement = Placement::default();
    for x in inputs {
        placement.see(op, x)?;
    }
    Ok(placement.device().or_else(crate::device::scoped))
}
