//! Tensors and devices: where a tensor lives, moving it, and sharing buffers with an
//! application's own wgpu code (no copies).

use crate::base::dtype::DType;
use crate::base::error::{Error, Result, or_panic};
use crate::device::{Device, with_device};
use crate::ir::op::Op;
use crate::ir::tensor::Tensor;
use crate::memory::pool::GpuBuffer;
use crate::prim::source::Source;
use std::sync::Arc;

/// The storage buffer of a realized tensor, for an application's own passes: the tensor's
/// `size` bytes start at `offset` in `buffer` (row-major, the dtype's layout: 4 bytes an
/// element, 2 for `f16`, booleans as `u32` 0/1).
///
/// The buffer belongs to wgrad: read it (bind it read-only, copy from it) in passes
/// submitted to the tensor's device's queue after the tensor was realized — the queue runs
/// them after wgrad's work — and only while the application holds the tensor (or a clone):
/// once its last handle drops, wgrad reuses the buffer for other tensors. Never write it; other
/// tensors (views of the same values) may share it.
///
/// ```
/// use wgrad::prelude::*;
/// let y = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [3]).exp();
/// let b = y.wgpu_buffer().unwrap();
/// assert_eq!(b.size, 12);
/// assert!(b.buffer.usage().contains(wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC));
/// ```
#[derive(Clone, Debug)]
pub struct TensorBuffer {
    /// The buffer (a handle: clones name the same buffer).
    pub buffer: wgpu::Buffer,
    /// Where the tensor's bytes start.
    pub offset: u64,
    /// The tensor's bytes.
    pub size: u64,
}

impl Tensor {
    /// The device the tensor is on: the one its values or operands are placed on, else (for a
    /// constant or host data made outside every [`with_device`]) the current device, where it
    /// will be computed.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert_eq!(Tensor::ones([2]).device(), wgrad::Device::default());
    /// ```
    pub fn device(&self) -> Device {
        self.placed()
            .cloned()
            .unwrap_or_else(crate::device::current)
    }

    /// The tensor's values on `device` (the tensor itself when it is there already): read
    /// back from its own device and uploaded to the other (blocking).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let other = wgrad::Device::open().unwrap();
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0], [2]).exp();
    /// let y = x.to_device(&other);
    /// assert_eq!(y.device(), other);
    /// assert_eq!(y.to_vec::<f32>(), x.to_vec::<f32>());
    /// ```
    #[track_caller]
    pub fn to_device(&self, device: &Device) -> Tensor {
        or_panic(self.try_to_device(device))
    }

    /// Fallible [`Tensor::to_device`].
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::ones([2]);
    /// assert!(x.try_to_device(&wgrad::Device::default()).is_ok());
    /// ```
    pub fn try_to_device(&self, device: &Device) -> Result<Tensor> {
        if self.placed() == Some(device) {
            return Ok(self.clone());
        }
        let bytes = crate::runtime::realize::read_bytes(self)?;
        with_device(device, || {
            Tensor::from_host_bytes(bytes, self.shape().to_vec(), self.dtype())
        })
    }

    /// A tensor whose values are an application's buffer: `shape` elements of `dtype` from
    /// `offset` in `buffer`, which must be a buffer of `device` with `STORAGE` and `COPY_SRC`
    /// usages; `offset` a multiple of the device's storage offset alignment (256 on most).
    /// No copy is made.
    ///
    /// wgrad reads the buffer in each realize that computes something from the tensor (work
    /// is lazy: the values read are those the buffer holds then) and never writes it. So the
    /// application may change the buffer only when no result derived from the tensor is
    /// waiting to be computed — realize them first; its later writes and submits on the same
    /// queue run after wgrad's work. Dropping the tensor leaves the buffer to the application.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let dev = wgrad::Device::default();
    /// let (device, queue) = dev.wgpu().unwrap();
    /// let buffer = device.create_buffer(&wgpu::BufferDescriptor {
    ///     label: None,
    ///     size: 16,
    ///     usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
    ///     mapped_at_creation: false,
    /// });
    /// queue.write_buffer(&buffer, 0, bytemuck::cast_slice(&[1.0f32, 2.0, 3.0, 4.0]));
    /// let x = Tensor::from_wgpu_buffer(&dev, &buffer, 0, [2, 2], DType::F32).unwrap();
    /// assert_eq!((&x * 2.0).to_vec::<f32>(), vec![2.0, 4.0, 6.0, 8.0]);
    /// ```
    pub fn from_wgpu_buffer(
        device: &Device,
        buffer: &wgpu::Buffer,
        offset: u64,
        shape: impl AsRef<[usize]>,
        dtype: DType,
    ) -> Result<Tensor> {
        let shape = shape.as_ref().to_vec();
        let g = device.gpu()?;
        let n = crate::base::dtype::checked_numel("from_wgpu_buffer", &shape)?;
        crate::ir::tensor::check_fits_limits("from_wgpu_buffer", &shape, dtype, &g.limits)?;
        let bad = |msg: String| -> Result<Tensor> { Err(Error::Buffer { msg }) };
        let needed = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        if !buffer.usage().contains(needed) {
            return bad(format!(
                "the buffer's usages {:?} lack {:?} (wgrad binds it as storage and copies from it)",
                buffer.usage(),
                needed - buffer.usage()
            ));
        }
        let align = g.device.limits().min_storage_buffer_offset_alignment as u64;
        if offset % align != 0 {
            return bad(format!(
                "offset {offset} is not a multiple of the device's storage offset alignment {align}"
            ));
        }
        // Bound in whole 4-byte words (an odd count of f16 values reads a padding half).
        let bytes = ((n * dtype.size()) as u64).div_ceil(4).max(1) * 4;
        if offset + bytes > buffer.size() {
            return bad(format!(
                "a {dtype} tensor of shape {shape:?} needs {bytes} bytes from offset {offset}; the buffer has {}",
                buffer.size()
            ));
        }
        let t = with_device(device, || {
            Tensor::from_op(Op::Source(Source::Data), vec![], shape, dtype)
        })?;
        let storage = GpuBuffer::external(buffer.clone(), offset, bytes);
        t.set_storage(Arc::new(storage), device);
        Ok(t)
    }

    /// The tensor's storage buffer, realizing it first (see [`TensorBuffer`] for what the
    /// application may do with it, and until when).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let b = Tensor::zeros([4]).wgpu_buffer().unwrap();
    /// assert_eq!(b.size, 16);
    /// ```
    pub fn wgpu_buffer(&self) -> Result<TensorBuffer> {
        self.try_realize()?;
        let s = self.storage().ok_or_else(|| {
            Error::Internal(format!(
                "a realized tensor of shape {:?} has no buffer",
                self.shape()
            ))
        })?;
        Ok(TensorBuffer {
            buffer: s.raw().clone(),
            offset: s.offset,
            size: (self.numel() * self.dtype().size()) as u64,
        })
    }
}
