//! The transforms: graph → graph. `jvp` pushes tangents forward, `vjp` pulls cotangents back,
//! `vmap` rebuilds a graph with a batch axis; grad, Jacobians and Hessians are compositions.

pub(crate) mod api;
pub(crate) mod check;
pub(crate) mod jac;
pub(crate) mod jit;
pub(crate) mod jvp;
pub mod positional;
pub(crate) mod vectorize;
pub(crate) mod vjp;
pub(crate) mod vmap;
