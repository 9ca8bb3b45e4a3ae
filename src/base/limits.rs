//! Device limits as plain data: what size checks and lowering need to know of a device.

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
