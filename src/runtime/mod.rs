//! What runs a graph on a device (the device itself is `crate::device`): the scheduler's
//! planning passes (`scheduler`: collect, group, lower; `buffers`: assignment; `plans`:
//! structure keys and the plan cache), encoding (`encode`), `realize` and reading values back
//! (`realize`), and sharing buffers with applications (`interop`).

pub(crate) mod buffers;
pub(crate) mod encode;
pub(crate) mod interop;
pub(crate) mod plans;
pub(crate) mod read;
pub(crate) mod realize;
pub(crate) mod scheduler;
#[cfg(test)]
mod validation;
