//! Scheduling, pure and device-free: what a realize runs, as passes over the pending graph.
//!
//! **collect** the unrealized subgraph in the order its kernels run (`collect`); **group** it:
//! which nodes get kernels of their own, which roots compute a consumer in their store, which
//! elementwise roots share one kernel (`group`); **lower** each root through its primitive into
//! kernels over virtual buffers, repairing kernels that would bind too many buffers (`lower`);
//! **assign buffers** by liveness (`buffers`); and key a graph's structure so that its plan is
//! reused by the next graph of the same structure (`plan`). No pass names a primitive family:
//! each primitive states how it fuses and how it lowers. The device side (checks against the
//! device, uploads, encoding, the submit) is `crate::runtime`.

pub(crate) mod buffers;
pub(crate) mod collect;
pub(crate) mod group;
pub(crate) mod lower;
pub(crate) mod plan;
