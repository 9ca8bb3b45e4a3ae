//! The bottom layer: dtypes and shapes, errors, the policy knobs, counters and device limits
//! as plain data. It imports nothing else of wgrad.

pub(crate) mod counters;
pub(crate) mod dense;
pub(crate) mod dtype;
pub(crate) mod error;
pub(crate) mod host;
pub(crate) mod limits;
pub(crate) mod policy;
pub(crate) mod scope;
pub(crate) mod special;
