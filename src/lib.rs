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
//! let f = |x: &Tensor| (x.sin() * x).sum(None, false);
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

mod compose;
mod display;
mod dtype;
mod error;
mod prim;
mod runtime;
mod tensor;
pub mod transforms;

pub use compose::{try_where, where_};
pub use dtype::DType;
pub use error::{Error, Result};
pub use prim::matmul::{MatmulKernel, set_matmul_kernel};
pub use prim::movement::{concat, try_concat};
pub use prim::reduce::Axes;
pub use runtime::counters::{Counters, counters, reset_counters};
pub use runtime::device::{DeviceInfo, device_info, init, init_async};
pub use runtime::pipelines::validate_wgsl;
pub use runtime::pool::trim_pool;
pub use runtime::scheduler::synchronize;
pub use tensor::{Element, Tensor, realize};
pub use transforms::api::{
    AdOptions, GradOptions, InAxes, Pullback, VmapOptions, grad, grad_aux, grad_with, jvp, jvp_aux,
    try_jvp, try_jvp_aux, try_value_and_grad_aux, try_vmap, value_and_grad, value_and_grad_aux,
    value_and_grad_with, vjp, vjp_aux, vjp_with, vmap, vmap_with,
};
pub use transforms::check::{GradCheck, Mode, check_grads};
pub use transforms::graph::graph_string;
pub use transforms::jac::{
    hessian, jacfwd, jacfwd_aux, jacrev, jacrev_aux, set_jacobian_chunk_bytes,
};
pub use transforms::positional::{
    Argnums, grad_argnums, jacfwd_argnums, jacrev_argnums, try_value_and_grad_argnums,
    value_and_grad_argnums,
};
pub use transforms::tree::Tree;

/// The WGSL kernel templates of every primitive family, and instances of them for validation
/// (`cargo xtask shaders`).
pub mod shaders {
    /// `shaders/elementwise.wgsl`: fused elementwise, movement, comparison, select and cast nodes.
    pub const ELEMENTWISE: &str = include_str!("../shaders/elementwise.wgsl");
    /// `shaders/reduce.wgsl`: sum and max (one invocation per output, or a workgroup tree).
    pub const REDUCE: &str = include_str!("../shaders/reduce.wgsl");
    /// `shaders/matmul.wgsl`: tiled, register-blocked batched matmul.
    pub const MATMUL: &str = include_str!("../shaders/matmul.wgsl");
    /// `shaders/common.wgsl`: helpers included in every kernel.
    pub const COMMON: &str = include_str!("../shaders/common.wgsl");

    /// Every template with its slots filled by small stand-ins: `(name, WGSL)`.
    ///
    /// ```
    /// for (name, src) in wgrad::shaders::instances() {
    ///     wgrad::validate_wgsl(&src, name).unwrap();
    /// }
    /// ```
    pub fn instances() -> Vec<(&'static str, String)> {
        let fill = |t: &str, funcs: &str| {
            t.replace("{{ENABLE}}", "")
                .replace(
                    "{{BINDINGS}}",
                    "@group(0) @binding(0) var<storage, read> b0: array<f32>;\n\
                     @group(0) @binding(1) var<storage, read_write> out: array<f32>;",
                )
                .replace("{{HELPERS}}", COMMON)
                .replace("{{FUNCTIONS}}", funcs)
        };
        let src = "fn src(o: u32, r: u32) -> f32 { return b0[o * 7u + r]; }";
        let reduce = |t: &str| {
            fill(t, src)
                .replace("{{ACC}}", "f32")
                .replace("{{IDENTITY}}", "0.0")
                .replace("{{COMBINE}}", "max")
                .replace("{{OUTPUTS}}", "3")
                .replace("{{R}}", "7")
                .replace("{{CHUNKS}}", "2")
                .replace("{{CHUNK}}", "4")
                .replace("{{STORE}}", "acc")
                .replace("{{STORE_PARTIAL}}", "partial[0]")
        };
        let mut mm = MATMUL.split("//--- direct ---");
        let (tiled, direct) = (mm.next().unwrap_or(""), mm.next().unwrap_or(""));
        let loads = "fn load_a(b: u32, m: u32, k: u32) -> f32 { return b0[m * 5u + k]; }\n\
                     fn load_b(b: u32, k: u32, n: u32) -> f32 { return b0[k * 6u + n]; }\n\
                     fn load_a4(b: u32, m: u32, k: u32) -> vec4<f32> { return vec4<f32>(b0[m * 5u + k]); }\n\
                     fn load_b4(b: u32, k: u32, n: u32) -> vec4<f32> { return vec4<f32>(b0[k * 6u + n]); }";
        let matmul = |t: &str| {
            fill(t, loads)
                .replace("{{M}}", "4")
                .replace("{{N}}", "6")
                .replace("{{K}}", "5")
                .replace("{{STORE}}", "v[c]")
                .replace("{{WG}}", "8, 8")
                .replace("{{ROWS}}", "1")
                .replace("{{ROW_DECLS}}", "    let r0 = row0;\n    var acc0 = vec4<f32>(0.0);")
                .replace(
                    "{{STEP4}}",
                    "        let a0 = load_a4(batch, r0, k);\n        acc0 = fma(vec4<f32>(a0.x), b0, acc0);",
                )
                .replace("{{STEP1}}", "        acc0 = fma(vec4<f32>(load_a(batch, r0, k)), b, acc0);")
                .replace("{{STORES}}", "    store_row(batch, row0, col0, acc0);")
        };
        let mut parts = REDUCE.split("//--- group ---");
        let (thread, group) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        vec![
            (
                "elementwise",
                fill(ELEMENTWISE, "fn root(i: u32) -> f32 { return wg_tanh(b0[i]) * wg_pow(wg_sigmoid(b0[i]), wg_uniform(1u, i)); }")
                    .replace("{{N}}", "1000")
                    .replace("{{STORE}}", "root(i)"),
            ),
            ("reduce_thread", reduce(thread)),
            ("reduce_group", reduce(group)),
            ("matmul_tiled", matmul(tiled)),
            ("matmul_direct", matmul(direct)),
        ]
    }
}

/// Everything a user needs: `use wgrad::prelude::*;`.
pub mod prelude {
    pub use crate::{
        AdOptions, Argnums, Axes, DType, GradOptions, InAxes, Mode, Tensor, Tree, VmapOptions,
        check_grads, concat, grad, grad_argnums, grad_aux, grad_with, hessian, jacfwd,
        jacfwd_argnums, jacfwd_aux, jacrev, jacrev_argnums, jacrev_aux, jvp, jvp_aux, try_concat,
        try_jvp, try_jvp_aux, try_value_and_grad_argnums, try_value_and_grad_aux, try_vmap,
        try_where, value_and_grad, value_and_grad_argnums, value_and_grad_aux, value_and_grad_with,
        vjp, vjp_aux, vjp_with, vmap, vmap_with, where_,
    };
}
