//! The suite's tests that share nothing process-wide (no counters, no global policy, no
//! environment), in one binary so that the suite links fewer programs. Each module is one
//! topic; `cargo test --test suite rules::` runs one of them. Tests that read counters, set
//! process-wide knobs or need a process of their own stay binaries of their own in `tests/`.

#[path = "../common/mod.rs"]
mod common;

mod checkpoint;
mod conformance;
mod control;
mod conv;
mod conveniences;
mod custom;
mod einsum;
mod errors;
mod fourier;
mod indexing;
mod jit;
mod linalg;
mod nn;
mod numerics;
mod optim;
mod random;
mod reference;
#[macro_use]
mod rules;
mod rules3;
mod scans;
mod scatter;
mod shaders;
mod sorting;
mod special;
mod transforms;
mod trees;
mod while_loops;
