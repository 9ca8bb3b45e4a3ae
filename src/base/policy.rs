//! The process-wide knobs in one place: which matmul kernel to generate, how large a chunk of
//! Jacobian rows may be, how long a fused chain may grow, and what to print while realizing.
//! The environment (`WGRAD_MATMUL`, `WGRAD_DEBUG`) is read once, when the policy is first
//! used; [`set_policy`] replaces it for the process, [`with_policy`] for one closure on one
//! thread; the scheduler and the transforms take one snapshot per call.

use std::sync::{LazyLock, RwLock};

/// The matmul kernel to generate (see [`Policy::matmul`]).
///
/// ```
/// assert_eq!(wgrad::MatmulKernel::Auto, wgrad::MatmulKernel::default());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatmulKernel {
    /// Tiled with workgroup memory on GPUs, barrier-free vec4 on CPU adapters (the default;
    /// `WGRAD_MATMUL=tiled|direct` in the environment overrides it).
    #[default]
    Auto,
    /// 64×64 tiles through workgroup memory, 4×4 register blocks.
    Tiled,
    /// No workgroup memory: blocks of rows × 4 columns from vec4 reads (fast on CPU adapters).
    Direct,
}

/// What `realize` prints (`WGRAD_DEBUG=kernels|profile`).
///
/// ```
/// assert_eq!(wgrad::DebugOutput::default(), wgrad::DebugOutput::Off);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub enum DebugOutput {
    /// Nothing.
    #[default]
    Off,
    /// Each realize's kernels, with how many graph nodes each one fused.
    Kernels,
    /// Also runs and times every kernel on its own (slow; for finding where time goes).
    Profile,
}

/// wgrad's tunable behaviour, read by every realize and transform.
///
/// ```
/// let mut p = wgrad::policy();
/// p.jacobian_chunk_bytes = 1 << 20;
/// wgrad::set_policy(p.clone());
/// assert_eq!(wgrad::policy().jacobian_chunk_bytes, 1 << 20);
/// p.jacobian_chunk_bytes = 0;
/// wgrad::set_policy(p);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The matmul kernel generated from now on.
    pub matmul: MatmulKernel,
    /// Largest chunk of Jacobian rows computed at once, in bytes (0: half the device's
    /// largest binding).
    pub jacobian_chunk_bytes: usize,
    /// Longest chain of graph nodes fused into one kernel (long unrealized loops are cut into
    /// kernels of at most this depth, so code generation stays small).
    pub max_fused_depth: usize,
    /// What realize prints.
    pub debug: DebugOutput,
    /// Compiled pipelines kept (least recently used ones are dropped past this; a software
    /// adapter holds about half a megabyte per pipeline).
    pub pipeline_cache: usize,
    /// Idle pool memory kept beyond what tensors in use hold, in bytes: buffers returned past
    /// `max(pool_idle_bytes, bytes in use)` are freed at once, so memory goes back to the
    /// driver on its own when tensors are dropped.
    pub pool_idle_bytes: u64,
    /// Fill every buffer a realize writes with a NaN sentinel first (debugging: proves that
    /// no kernel leaves an output element unwritten; `WGRAD_DEBUG=sentinel`).
    pub sentinel: bool,
    /// Compute an elementwise consumer of a matmul (a bias, an activation, an update) in the
    /// matmul's store instead of a kernel of its own. `None`: on GPUs, where a launch is
    /// expensive; not on CPU adapters, where it saves no measurable time and lengthens shader
    /// compilation (the CPU kernel unrolls its stores).
    pub epilogues: Option<bool>,
    /// Wait for the device at the end of every `realize` (reads always wait). `None`: wait on
    /// CPU adapters, where the device's threads share the host's cores and tracing the next
    /// step meanwhile only competes with them (a PINN loop on lavapipe ran 8–10 % slower
    /// without the wait); on GPUs `realize` returns once submitted, so the host traces the
    /// next step while the device runs this one.
    pub wait_after_realize: Option<bool>,
    /// Plans kept for reuse (0: none). A realize whose pending graph has the structure of a
    /// cached plan (the same ops, shapes, dtypes and wiring, whatever the values of its
    /// constants, random keys and input buffers) skips planning, code generation and buffer
    /// assignment: it refreshes the values and binds the new inputs. Least recently used
    /// plans are dropped past this many.
    pub plan_cache: usize,
    /// Compute sibling elementwise results of the same shape whose inputs are ready (an
    /// optimizer's moments and parameter) in one kernel with several outputs.
    pub multi_output: bool,
    /// With `multi_output`, also compute small independent elementwise results of other
    /// shapes (every parameter's update, say) in one kernel, as far as the device's binding
    /// limit allows (`WGRAD_HORIZONTAL=0`: off).
    pub horizontal: bool,
    /// Run `scan` and `fori_loop` as loop nodes: the body is scheduled once and its kernels
    /// are recorded once per step into the same submit (carries in buffers of their own,
    /// `ys` copied into one stacked buffer). Off (`WGRAD_LOOPS=unroll`): the body's graph is
    /// copied once per step instead. Loops whose results mix dtypes are always unrolled.
    pub loops: bool,
    /// Sort's bitonic network runs its short-range steps in workgroup memory, a block of
    /// 1,024 per workgroup in one launch. `None`: on GPUs; not on CPU adapters, whose
    /// workgroup barriers cost more than the launches they save (a 1M sort on lavapipe took
    /// 1.25 s with them, 0.6 s without).
    pub sort_in_workgroups: Option<bool>,
}

impl Policy {
    /// The defaults, with the environment's overrides (`WGRAD_MATMUL`, `WGRAD_DEBUG`,
    /// `WGRAD_PLAN_CACHE`).
    ///
    /// ```
    /// assert_eq!(wgrad::Policy::from_env().max_fused_depth, 48);
    /// ```
    pub fn from_env() -> Policy {
        let matmul = match std::env::var("WGRAD_MATMUL").as_deref() {
            Ok("direct") => MatmulKernel::Direct,
            Ok("tiled") => MatmulKernel::Tiled,
            _ => MatmulKernel::Auto,
        };
        let env = std::env::var("WGRAD_DEBUG").unwrap_or_default();
        let debug = match env.as_str() {
            "kernels" => DebugOutput::Kernels,
            "profile" => DebugOutput::Profile,
            _ => DebugOutput::Off,
        };
        Policy {
            matmul,
            jacobian_chunk_bytes: 0,
            max_fused_depth: 48,
            debug,
            pipeline_cache: 512,
            pool_idle_bytes: 128 << 20,
            sentinel: env == "sentinel",
            epilogues: None,
            wait_after_realize: None,
            plan_cache: std::env::var("WGRAD_PLAN_CACHE")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(32),
            multi_output: std::env::var("WGRAD_MULTI_OUTPUT").map_or(true, |v| v != "0"),
            horizontal: std::env::var("WGRAD_HORIZONTAL").map_or(true, |v| v != "0"),
            loops: std::env::var("WGRAD_LOOPS").map_or(true, |v| v != "unroll"),
            sort_in_workgroups: None,
        }
    }

    /// Whether matmuls use the barrier-free direct kernel on an adapter (`cpu`: a software
    /// adapter such as lavapipe).
    pub(crate) fn direct_matmul(&self, cpu: bool) -> bool {
        match self.matmul {
            MatmulKernel::Auto => cpu,
            MatmulKernel::Tiled => false,
            MatmulKernel::Direct => true,
        }
    }
}

static POLICY: LazyLock<RwLock<Policy>> = LazyLock::new(|| RwLock::new(Policy::from_env()));

thread_local! {
    /// The policies of the enclosing [`with_policy`] calls, innermost last.
    static SCOPED: std::cell::RefCell<Vec<Policy>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The policy in force on this thread (a snapshot): the innermost [`with_policy`]'s, else the
/// process-wide one.
///
/// ```
/// assert!(wgrad::policy().max_fused_depth > 0);
/// ```
pub fn policy() -> Policy {
    crate::base::scope::innermost(&SCOPED)
        .unwrap_or_else(|| POLICY.read().unwrap_or_else(|e| e.into_inner()).clone())
}

/// Runs `f` under the policy `p` on this thread only (the process-wide policy and other
/// threads are unaffected; calls nest). Graphs are lazy: the policy applies to what `f`
/// realizes and transforms, not to work realized after it returns.
///
/// ```
/// use wgrad::prelude::*;
/// let p = wgrad::Policy { matmul: wgrad::MatmulKernel::Tiled, ..wgrad::policy() };
/// let c = wgrad::with_policy(p, || {
///     assert_eq!(wgrad::policy().matmul, wgrad::MatmulKernel::Tiled);
///     Tensor::eye(3).matmul(&Tensor::ones([3, 2])).to_vec::<f32>()
/// });
/// assert_eq!(c, vec![1.0; 6]);
/// ```
pub fn with_policy<R>(p: Policy, f: impl FnOnce() -> R) -> R {
    crate::base::scope::with_pushed(&SCOPED, p, f)
}

/// Replaces the policy for every later realize and transform (kernels already compiled stay
/// cached).
///
/// ```
/// let p = wgrad::policy();
/// wgrad::set_policy(wgrad::Policy { matmul: wgrad::MatmulKernel::Tiled, ..p.clone() });
/// let c = wgrad::Tensor::eye(3).matmul(&wgrad::Tensor::ones([3, 2]));
/// assert_eq!(c.to_vec::<f32>(), vec![1.0; 6]);
/// wgrad::set_policy(p);
/// ```
pub fn set_policy(p: Policy) {
    *POLICY.write().unwrap_or_else(|e| e.into_inner()) = p;
}

/// Chooses the matmul kernel for the kernels generated from now on (a test hook: a shortcut
/// for [`set_policy`]; [`with_policy`] is the way for programs).
///
/// ```
/// wgrad::set_matmul_kernel(wgrad::MatmulKernel::Tiled);
/// let c = wgrad::Tensor::eye(3).matmul(&wgrad::Tensor::ones([3, 2]));
/// assert_eq!(c.to_vec::<f32>(), vec![1.0; 6]);
/// wgrad::set_matmul_kernel(wgrad::MatmulKernel::Auto);
/// ```
#[doc(hidden)]
pub fn set_matmul_kernel(k: MatmulKernel) {
    let mut p = POLICY.write().unwrap_or_else(|e| e.into_inner());
    p.matmul = k;
}

/// Caps the bytes of one chunk of Jacobian rows (0: half the device's largest binding, the
/// default; a test hook: a shortcut for [`set_policy`]; [`with_policy`] is the way for
/// programs). Tests use a small cap to exercise the chunking.
///
/// ```
/// use wgrad::prelude::*;
/// wgrad::set_jacobian_chunk_bytes(64);
/// let j = jacrev(|x: &Tensor| x.square())(&Tensor::ones([40]));
/// wgrad::set_jacobian_chunk_bytes(0);
/// assert_eq!(j.sum_all().item(), 80.0);
/// ```
#[doc(hidden)]
pub fn set_jacobian_chunk_bytes(bytes: usize) {
    let mut p = POLICY.write().unwrap_or_else(|e| e.into_inner());
    p.jacobian_chunk_bytes = bytes;
}
