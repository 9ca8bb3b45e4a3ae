//! Devices and what runs on them: device handles (`device`), compiled kernels (`pipelines`),
//! the scheduler's planning passes (`scheduler`: collect, group, lower; `buffers`: assignment;
//! `plans`: structure keys and the plan cache), encoding (`encode`) and `realize` itself
//! (`realize`), and sharing buffers with applications (`interop`).

pub(crate) mod buffers;
pub(crate) mod device;
pub(crate) mod encode;
pub(crate) mod interop;
pub(crate) mod pipelines;
pub(crate) mod plans;
pub(crate) mod realize;
pub(crate) mod scheduler;
#[cfg(test)]
mod validation;
