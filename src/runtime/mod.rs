//! Devices and what runs on them: device handles and their locks (`device`, `access`), the
//! buffer pool, code generation, the scheduler's planning passes (`scheduler`: collect, group,
//! lower; `buffers`: assignment; `plans`: structure keys and the plan cache), encoding
//! (`encode`) and `realize` itself (`realize`), and sharing buffers with applications
//! (`interop`).

pub(crate) mod access;
pub(crate) mod buffers;
pub(crate) mod codegen;
pub(crate) mod counters;
pub(crate) mod device;
pub(crate) mod encode;
pub(crate) mod interop;
pub(crate) mod pipelines;
pub(crate) mod plans;
pub(crate) mod policy;
pub(crate) mod pool;
pub(crate) mod realize;
pub(crate) mod scheduler;
pub(crate) mod scope;
#[cfg(test)]
mod validation;
