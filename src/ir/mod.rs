//! The graph, device-free: the node and its [`Tensor`](tensor::Tensor) handle (a realized
//! node holds its buffer as an opaque handle), the [`Op`](op::Op) of a node and how it fuses,
//! graph walks and printing, and the trace state of the transforms. Building a graph, any
//! transform of it and any shape error never touches a device.

pub(crate) mod control;
pub(crate) mod display;
pub(crate) mod graph;
pub(crate) mod op;
pub(crate) mod tensor;
pub(crate) mod trace;
