//! Control flow and functions with rules of their own: the higher-order primitives, whose
//! rules call the transforms, so they sit above them (as JAX's `lax/control_flow` sits above
//! `interpreters/ad`). Their data (`Op::Loop`, `Op::Custom`) is in `crate::ir::control`.
//!
//! `flow` is the public API (`scan`, `fori_loop`, `while_loop`, `cond`), `build` traces a body
//! into a loop node, `loops` holds its rules and `lower_loop` its lowering; `custom` is `custom_vjp`,
//! `custom_jvp` and `checkpoint` with their primitive.

pub(crate) mod build;
pub(crate) mod custom;
pub(crate) mod flow;
pub(crate) mod loops;
pub(crate) mod lower_loop;
pub(crate) mod while_node;
