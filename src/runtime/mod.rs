//! What runs a schedule on a device (the device itself is `crate::device`, the pure
//! scheduling passes `crate::schedule`): `realize` checks the pending graph against the
//! device, uploads host data, takes a plan from the device's cache or makes one, encodes
//! (`encode`), submits once and commits the results (`realize`); reading values back (`read`);
//! sharing buffers with applications (`interop`).

pub(crate) mod encode;
pub(crate) mod interop;
pub(crate) mod read;
pub(crate) mod realize;
pub(crate) mod reference;
#[cfg(test)]
mod validation;
