//! Device, buffer pool, code generation, pipeline cache and the scheduler behind `realize`.

pub(crate) mod codegen;
pub(crate) mod counters;
pub(crate) mod device;
pub(crate) mod pipelines;
pub(crate) mod policy;
pub(crate) mod pool;
pub(crate) mod scheduler;
#[cfg(test)]
mod validation;
