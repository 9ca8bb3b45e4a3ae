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
    /// The GPU (wgpu) reported an error: what wgrad was doing, and wgpu's error as the
    /// [`source`](std::error::Error::source).
    ///
    /// ```
    /// use std::error::Error as _;
    /// let e = wgrad::Error::wgpu("waiting for the GPU failed", &std::fmt::Error);
    /// assert_eq!(e.to_string(), "device: waiting for the GPU failed: an error occurred when formatting an argument");
    /// assert!(e.source().is_some());
    /// ```
    Wgpu {
        /// What wgrad was doing.
        msg: String,
        /// The error wgpu returned (its text and its own causes).
        cause: Cause,
    },
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
    /// A data-parallel operation that failed on one of its replicas or processes, or a
    /// collective between processes that failed.
    Parallel {
        /// The operation (`step`, `all_reduce`, `shard`, …).
        op: &'static str,
        /// Which replica or process failed, and why.
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
            Error::Wgpu { msg, cause } => write!(f, "device: {msg}: {cause}"),
            Error::DeviceMismatch { op, first, second } => write!(
                f,
                "{op}: operands on two devices, {first} and {second}; move one with `Tensor::to_device`"
            ),
            Error::Buffer { msg } => write!(f, "from_wgpu_buffer: {msg}"),
            Error::Internal(msg) => write!(f, "internal error in wgrad (please report): {msg}"),
            Error::TooLarge { op, msg } => write!(f, "{op}: too large for the device: {msg}"),
            Error::Checkpoint { source, msg } => write!(f, "checkpoint {source}: {msg}"),
            Error::Parallel { op, msg } => write!(f, "data-parallel {op}: {msg}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Wgpu { cause, .. } => Some(cause),
            _ => None,
        }
    }
}

impl Error {
    /// A [`Error::Wgpu`]: `msg` says what failed, `cause` is the error wgpu returned.
    pub fn wgpu(msg: impl Into<String>, cause: &dyn std::error::Error) -> Error {
        Error::Wgpu {
            msg: msg.into(),
            cause: Cause::of(cause),
        }
    }
}

/// The error that caused an [`Error::Wgpu`]: wgpu's error as its text and chain of causes, so
/// that [`Error`] stays `Clone`, `PartialEq`, `Send` and `Sync` (wgpu's errors are none of
/// them).
///
/// ```
/// use std::error::Error as _;
/// let e = wgrad::Error::wgpu("mapping failed", &std::fmt::Error);
/// let cause = e.source().unwrap();
/// assert!(cause.to_string().contains("formatting"));
/// assert!(cause.source().is_none());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    msg: String,
    source: Option<Box<Cause>>,
}

impl Cause {
    fn of(e: &dyn std::error::Error) -> Cause {
        Cause {
            msg: e.to_string(),
            source: e.source().map(|s| Box::new(Cause::of(s))),
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

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
