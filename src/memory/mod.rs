//! Device memory as the graph sees it: storage buffers and their per-device pool, and the
//! lock that serializes wgrad's calls into a GL device. Above `base`; it knows nothing of the
//! graph, kernels or devices' queues, so the graph can hold a buffer as an opaque handle.

pub(crate) mod access;
pub(crate) mod pool;
