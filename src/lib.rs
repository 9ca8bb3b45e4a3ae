//! # wgrad
//!
//! JAX-style composable automatic differentiation on WebGPU: `grad`, `value_and_grad`, `vjp`,
//! `jvp`, `jacrev`, `jacfwd`, `hessian` and `vmap`, nested to any depth, on lazy tensors that
//! live in wgpu storage buffers and run as fused WGSL kernels (Vulkan, Metal, DX12, GL, and
//! software adapters such as lavapipe and llvmpipe).
//!
//! ```
//! use wgrad::prelude::*;
//!
//! let x = Tensor::from_vec(vec![0.5f32, -1.0, 2.0], [3]);
//! let f = |x: &Tensor| (x.sin() * x).sum_all();
//!
//! let g = grad(f)(&x);                  // one transform, one call
//! let h = jacfwd(jacrev(f))(&x);        // transforms compose like functions
//! let (y, pullback) = vjp(f, &x);       // the pullback may be called many times
//! assert_eq!(g.shape(), &[3]);
//! assert_eq!(h.shape(), &[3, 3]);
//! assert_eq!(pullback.call(&Tensor::scalar(1.0)).shape(), &[3]);
//! # let _ = y;
//! ```
//!
//! Operations panic on bad input with a message naming the op and the shapes; every op has a
//! `try_` twin returning [`Result`]. Nothing runs until a value is needed: [`Tensor::realize`]
//! (or [`realize`] for several tensors) schedules the pending graph, fuses what it can and
//! submits all kernels at once.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod base;
pub mod checkpoint;
mod compose;
mod control;
mod device;
mod ir;
mod kernel;
mod memory;
/// Fourier transforms along the last axis, as `jnp.fft`: complex values as `(re, im)` pairs,
/// any length (four-step splitting into DFTs of at most 64 as matmuls, Bluestein for large
/// prime factors), differentiable and batched like any composite.
///
/// ```
/// use wgrad::prelude::*;
/// let x = Tensor::from_vec(vec![0.0f32, 1.0, 0.0, -1.0], [4]);
/// let (re, im) = wgrad::fft::rfft(&x);
/// assert!(re.to_vec::<f32>().iter().all(|v| v.abs() < 1e-6));
/// assert!((im.to_vec::<f32>()[1] + 2.0).abs() < 1e-6);
/// ```
pub mod fft {
    pub use crate::compose::fft::{fft, ifft, irfft, rfft, try_fft, try_ifft, try_irfft, try_rfft};
}
/// Linear algebra on the last two axes (leading axes batch), as `jnp.linalg` and
/// `jax.scipy.linalg`: Cholesky and LU factorizations, triangular, Cholesky and general
/// solves, inverses, determinants and log-determinants. Differentiable to any order and batched under `vmap`.
///
/// ```
/// use wgrad::prelude::*;
/// // Solve a small SPD system and differentiate through it.
/// let a = Tensor::from_vec(vec![4.0f32, 1.0, 1.0, 3.0], [2, 2]);
/// let b = Tensor::from_vec(vec![1.0f32, 2.0], [2]);
/// let f = |b: &Tensor| wgrad::linalg::cho_solve(&wgrad::linalg::cholesky(&a), b).sum_all();
/// let g = grad(f)(&b).to_vec::<f32>(); // A⁻¹·1
/// assert!((g[0] - 2.0 / 11.0).abs() < 1e-5 && (g[1] - 3.0 / 11.0).abs() < 1e-5);
/// ```
pub mod linalg {
    pub use crate::compose::linalg::{
        cho_solve, cholesky, cholesky_logdet, det, eigh, eigvalsh, inv, lu_factor, qr, slogdet,
        solve, svd, svdvals, triangular_solve, try_cho_solve, try_cholesky, try_cholesky_logdet,
        try_det, try_eigh, try_eigvalsh, try_inv, try_lu_factor, try_qr, try_slogdet, try_solve,
        try_svd, try_svdvals, try_triangular_solve,
    };
}
pub mod nn;
pub mod optim;
#[cfg(not(target_arch = "wasm32"))]
pub mod parallel;
mod prim;
pub mod random;
mod runtime;
mod schedule;
pub mod transforms;
pub mod tree;

/// The reference interpreter: a graph's values computed on the host in float64, node by node,
/// independently of the kernels — for checking what a device computes.
pub mod reference {
    pub use crate::runtime::reference::{
        values, values_of, values_of_perturbed, values_of_rounded, values_rounded,
    };
}

pub use base::counters::{Counters, counters, reset_counters};
pub use base::dtype::DType;
pub use base::error::{Cause, Error, Result};
pub use base::policy::{
    DebugOutput, MatmulKernel, Policy, policy, set_jacobian_chunk_bytes, set_matmul_kernel,
    set_policy, with_policy,
};
pub use compose::conv::{Conv1dOptions, Conv2dOptions, Pair};

/// The old name of [`Conv2dOptions`], easy to confuse with the layer [`nn::Conv2d`].
///
/// ```
/// #[allow(deprecated)]
/// let o = wgrad::Conv2d::default().stride(2);
/// assert_eq!(o, wgrad::Conv2dOptions::default().stride(2));
/// ```
#[deprecated(note = "renamed `Conv2dOptions` (the layer is `nn::Conv2d`)")]
pub type Conv2d = Conv2dOptions;
pub use compose::einsum::{einsum, try_einsum};
pub use compose::indexing::{Indices, one_hot, try_one_hot};
pub use compose::scatter::{segment_max, segment_sum, try_segment_max, try_segment_sum};
pub use compose::shape::{concat, stack, try_concat, try_stack};
pub use control::custom::{checkpoint, custom_jvp, custom_vjp};
pub use control::flow::{
    WhileOptions, cond, fori_loop, scan, try_cond, try_scan, while_loop, while_loop_with,
};
pub use device::{Device, DeviceInfo, device_info, init, init_async, trim_pool, with_device};
pub use ir::graph::graph_string;
pub use ir::tensor::{Element, Tensor};
pub use prim::binary::Operand;
pub use prim::logic::{try_where, where_};
pub use prim::reduce::Axes;
pub use runtime::interop::TensorBuffer;
pub use runtime::read::{realize, try_realize};
pub use runtime::realize::synchronize;
pub use transforms::api::{
    AdOptions, GradOptions, Pullback, grad, grad_aux, grad_with, jvp, jvp_aux, try_jvp,
    try_jvp_aux, try_value_and_grad_aux, value_and_grad, value_and_grad_aux, value_and_grad_with,
    vjp, vjp_aux, vjp_with,
};
pub use transforms::check::{GradCheck, Mode, check_grads};
pub use transforms::jac::{
    hessian, jacfwd, jacfwd_aux, jacrev, jacrev_aux, try_hessian, try_jacfwd, try_jacrev,
};
pub use transforms::jit::jit;
pub use transforms::positional::{
    Argnums, grad_argnums, jacfwd_argnums, jacrev_argnums, try_value_and_grad_argnums,
    value_and_grad_argnums,
};
pub use transforms::vectorize::{InAxes, VmapOptions, try_vmap, try_vmap2, vmap, vmap_with, vmap2};
pub use tree::Tree;

/// Everything a user needs: `use wgrad::prelude::*;`.
pub mod prelude {
    #[allow(deprecated)]
    pub use crate::Conv2d;
    pub use crate::tree::{global_norm, tree_leaves, tree_map, tree_map2, tree_reduce};
    pub use crate::{
        AdOptions, Argnums, Axes, Conv1dOptions, Conv2dOptions, DType, Device, GradOptions, InAxes,
        Indices, Mode, Tensor, Tree, VmapOptions, WhileOptions, check_grads, checkpoint, concat,
        cond, custom_jvp, custom_vjp, einsum, fori_loop, grad, grad_argnums, grad_aux, grad_with,
        hessian, jacfwd, jacfwd_argnums, jacfwd_aux, jacrev, jacrev_argnums, jacrev_aux, jit, jvp,
        jvp_aux, one_hot, scan, segment_max, segment_sum, stack, try_concat, try_cond, try_einsum,
        try_jvp, try_jvp_aux, try_one_hot, try_scan, try_segment_max, try_segment_sum, try_stack,
        try_value_and_grad_argnums, try_value_and_grad_aux, try_vmap, try_vmap2, try_where,
        value_and_grad, value_and_grad_argnums, value_and_grad_aux, value_and_grad_with, vjp,
        vjp_aux, vjp_with, vmap, vmap_with, vmap2, where_, while_loop, while_loop_with,
    };
}

/// The README's Rust examples, compiled and run as doctests (`cargo test --doc`).
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
