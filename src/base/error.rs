//! The one error type of wgrad. Every variant names the operation and, where it applies, the shapes.

use std::fmt;

/// Everything that can go wrong in wgrad.
///
/// Operations that build graph nodes panic with this error's message by default; their `try_`
/// twins (e.g. [`crate::Tensor::try_add`]) return it instead.
///
/// ```
/// use wgrad::prelude::*;
/// let a = Tensor::zeros([2, 3]);
/// let b = Tensor::zeros([4]);
/// let err = a.try_add(&b).unwrap_err();
/// assert!(err.to_string().contains("add"));
/// assert!(err.to_string().contains("[2, 3]"));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// Shapes that do not fit the operation.
    Shape {
        /// The operation (`add`, `matmul`, …).
        op: &'static str,
        /// What is wrong, with the shapes involved.
        msg: String,
    },
    /// An axis that is out of range or repeated.
    Axis {
        /// The operation.
        op: &'static str,
        /// What is wrong, with the axis and the shape.
        msg: String,
    },
    /// A dtype the operation does not accept.
    DType {
        /// The operation.
        op: &'static str,
        /// What is wrong, with the dtypes involved.
        msg: String,
    },
    /// A transform (grad, vjp, vmap, …) was called in a way it cannot serve.
    Transform {
        /// The transform.
        transform: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// No usable GPU adapter, the device could not be created, or it refused work.
    Device(String),
    /// An operation on tensors of two devices.
    DeviceMismatch {
        /// The operation.
        op: &'static str,
        /// One device, as its `Debug` form names it.
        first: String,
        /// The other device.
        second: String,
    },
    /// An application's buffer that cannot hold a tensor as asked (usages, size, alignment).
    Buffer {
        /// What was asked, and what is wrong.
        msg: String,
    },
    /// A bug in wgrad (an invariant that does not hold): please report it.
    Internal(String),
    /// The tensor or the work does not fit the device's limits.
    TooLarge {
        /// The operation.
        op: &'static str,
        /// What is too large, and the limit.
        msg: String,
    },
    /// A checkpoint that cannot be written or read: I/O, a malformed file, a missing tensor or
    /// one whose shape or dtype does not match.
    Checkpoint {
        /// The file (or `bytes` when there is none).
        source: String,
        /// What is wrong, naming the tensor.
        msg: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Shape { op, msg } => write!(f, "{op}: shape error: {msg}"),
            Error::Axis { op, msg } => write!(f, "{op}: axis error: {msg}"),
            Error::DType { op, msg } => write!(f, "{op}: dtype error: {msg}"),
            Error::Transform { transform, msg } => write!(f, "{transform}: {msg}"),
            Error::Device(msg) => write!(f, "device: {msg}"),
            Error::DeviceMismatch { op, first, second } => write!(
                f,
                "{op}: operands on two devices, {first} and {second}; move one with `Tensor::to_device`"
            ),
            Error::Buffer { msg } => write!(f, "from_wgpu_buffer: {msg}"),
            Error::Internal(msg) => write!(f, "internal error in wgrad (please report): {msg}"),
            Error::TooLarge { op, msg } => write!(f, "{op}: too large for the device: {msg}"),
            Error::Checkpoint { source, msg } => write!(f, "checkpoint {source}: {msg}"),
        }
    }
}

impl std::error::Error for Error {}

/// `Result` with wgrad's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn shape_err<T>(op: &'static str, msg: impl Into<String>) -> Result<T> {
    Err(Error::Shape {
        op,
        msg: msg.into(),
    })
}

pub(crate) fn axis_err<T>(op: &'static str, msg: impl Into<String>) -> Result<T> {
    Err(Error::Axis {
        op,
        msg: msg.into(),
    })
}

pub(crate) fn dtype_err<T>(op: &'static str, msg: impl Into<String>) -> Result<T> {
    Err(Error::DType {
        op,
        msg: msg.into(),
    })
}

pub(crate) fn transform_err<T>(transform: &'static str, msg: impl Into<String>) -> Result<T> {
    Err(Error::Transform {
        transform,
        msg: msg.into(),
    })
}

/// Unwraps a result or panics with the error's message (the panicking form of every `try_` op).
#[track_caller]
pub(crate) fn or_panic<T>(r: Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

/// An internal error: a bug in wgrad, reported instead of a panic.
pub(crate) fn internal(msg: String) -> Error {
    Error::Internal(msg)
}
