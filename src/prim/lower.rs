//! Lowering: primitives lower through [`LowerCx`]. An inline node returns the body of its
//! node function, a kernel root returns whole kernels built with an [`Emitter`].

use crate::base::dtype::numel;
use crate::base::error::Result;
use crate::base::limits::Limits;
use crate::base::policy::Policy;
use crate::ir::tensor::Tensor;
use crate::kernel::wgsl::{grid_1d, param_expr, store_expr};
use crate::kernel::{BufRef, Kernel, templates};
use crate::prim::emit::Emitter;
use std::collections::HashMap;

/// What a primitive's lowering gives back.
pub(crate) enum Lowered {
    /// The WGSL body of the node function `fn vN(i: u32) -> T` (inline, index-map and view
    /// nodes, which are computed inside whichever kernel reads them).
    Body(String),
    /// Kernels that write the node's buffer (kernel roots).
    Kernels(Vec<Kernel>),
}

/// What lowering a node has to work with: the device limits and the policy, the names of its
/// inputs' node functions (inline nodes), and a way to build kernels with buffers for their
/// outputs (kernel roots).
pub(crate) struct LowerCx<'a> {
    pub limits: &'a Limits,
    pub policy: &'a Policy,
    pub(super) computed: &'a HashMap<u64, BufRef>,
    pub(super) args: Vec<String>,
    pub(super) helpers: Vec<String>,
    /// Inline nodes: the scalars of the kernel the node is computed in.
    pub(super) params: Vec<u32>,
    pub(super) origins: Vec<(usize, u64, u8)>,
    pub(super) out: Option<BufRef>,
    pub(super) next_virtual: usize,
    /// Kernel roots: a node the kernel computes instead of the root's own value (an
    /// elementwise consumer fused into its store), when the planner found one.
    pub(super) epilogue: Option<Tensor>,
}

impl<'a> LowerCx<'a> {
    /// The context for lowering a kernel root into `out`; `next_virtual` numbers scratch buffers.
    pub fn root(
        limits: &'a Limits,
        policy: &'a Policy,
        computed: &'a HashMap<u64, BufRef>,
        out: BufRef,
        next_virtual: usize,
    ) -> Self {
        LowerCx {
            limits,
            policy,
            computed,
            args: vec![],
            helpers: vec![],
            params: vec![],
            origins: vec![],
            out: Some(out),
            next_virtual,
            epilogue: None,
        }
    }
    /// The same context, asked to compute `epilogue` (an elementwise consumer of the root, at
    /// the same index) into the output instead of the root's own value.
    pub fn with_epilogue(self, epilogue: Tensor) -> Self {
        LowerCx {
            epilogue: Some(epilogue),
            ..self
        }
    }
    /// Kernel roots: the fused consumer to compute instead of the node's value, if any.
    pub fn epilogue(&self) -> Option<&Tensor> {
        self.epilogue.as_ref()
    }
    /// Inline nodes: a scalar of the kernel the node is computed in (as data, not a literal:
    /// changing it compiles nothing, and no compiler can fold it), as a `u32` expression.
    pub fn param(&mut self, bits: u32) -> String {
        param_expr(&mut self.params, bits)
    }
    /// Inline nodes: a scalar holding word `word` of `node`'s run-time value (a constant's),
    /// so that a cached plan can refresh it.
    pub fn value_param(&mut self, node: &Tensor, word: u8, bits: u32) -> String {
        self.origins.push((self.params.len(), node.id(), word));
        param_expr(&mut self.params, bits)
    }
    /// Inline nodes: the name of the function that computes input `k` at a flat index.
    pub fn arg(&self, k: usize) -> &str {
        &self.args[k]
    }
    /// Kernel roots: a builder for one kernel, fusing producers through [`Emitter::value_fn`].
    pub fn kernel(&self) -> Emitter<'a> {
        Emitter::new(self.computed, self.limits, self.policy)
    }
    /// Kernel roots: the buffer the node's value goes to.
    pub fn out(&self) -> BufRef {
        self.out.clone().unwrap_or(BufRef::None)
    }
    /// Kernel roots: a fresh buffer for an intermediate result.
    pub fn scratch(&mut self) -> BufRef {
        self.next_virtual += 1;
        BufRef::Virtual(self.next_virtual - 1)
    }
    /// Kernel roots: a kernel that computes `t` (an operand, with its producers fused) into a
    /// fresh buffer, for lowerings that want an operand in a buffer of its own.
    pub fn materialize(&mut self, t: &Tensor) -> Result<(BufRef, Kernel)> {
        let buf = self.scratch();
        let k = elementwise_kernel(t, self.computed, self.limits, self.policy, buf.clone())?;
        Ok((buf, k))
    }
    /// Kernel roots computed per element (their body loops, so they must not be fused into a
    /// consumer's loop): the node's own elementwise kernel, with `body` (the node function's
    /// body, given its inputs' function names) and the node's producers fused in.
    pub fn pointwise_kernel(
        &self,
        node: &Tensor,
        body: impl FnOnce(&[String], &mut Emitter) -> String,
    ) -> Result<Kernel> {
        let mut e = self.kernel();
        let args = node
            .inputs()
            .iter()
            .map(|x| e.value_fn(x))
            .collect::<Result<Vec<_>>>()?;
        let body = body(&args, &mut e);
        finish_pointwise(e, node, self.out(), body)
    }
    /// The next unused scratch number (the scheduler continues from it).
    pub fn next_virtual(&self) -> usize {
        self.next_virtual
    }
    /// Kernel roots: scratch numbers below `v` are taken (by a nested schedule).
    pub fn skip_to(&mut self, v: usize) {
        self.next_virtual = self.next_virtual.max(v);
    }
    /// Kernel roots: the buffer holding `t`'s values, if one does (computed, realized, or
    /// shared by a view).
    pub fn buffer_of(&self, t: &Tensor) -> Option<BufRef> {
        self.kernel().buffer_of(t)
    }
    /// Kernel roots: a kernel computing `t` (its producers fused) into `buf`.
    pub fn kernel_into(&self, t: &Tensor, buf: BufRef) -> Result<Kernel> {
        elementwise_kernel(t, self.computed, self.limits, self.policy, buf)
    }
    /// A 1-D grid of `threads` invocations in workgroups of `per_group`, folded into 2-D
    /// when it needs more workgroups than one dimension allows.
    pub fn grid(&self, threads: usize, per_group: usize) -> Result<[u32; 3]> {
        grid_1d(threads, per_group, self.limits)
    }
}

/// The kernel that computes an inline-fused node (and everything fused into it) into `out`.
pub(crate) fn elementwise_kernel(
    node: &Tensor,
    computed: &HashMap<u64, BufRef>,
    limits: &Limits,
    policy: &Policy,
    out: BufRef,
) -> Result<Kernel> {
    elementwise_multi_kernel(
        std::slice::from_ref(node),
        computed,
        limits,
        policy,
        out,
        vec![],
    )
}

/// One elementwise kernel computing `nodes[0]` into `out` and each further node into its own
/// buffer of `extra` (at most as many elements as `nodes[0]`; a single binding each):
/// siblings that share inputs and intermediate values (an optimizer's moments and parameter)
/// are computed together, their shared work once, and small independent results of other
/// shapes share the launch (horizontal fusion).
pub(crate) fn elementwise_multi_kernel(
    nodes: &[Tensor],
    computed: &HashMap<u64, BufRef>,
    limits: &Limits,
    policy: &Policy,
    out: BufRef,
    extra: Vec<BufRef>,
) -> Result<Kernel> {
    let node = &nodes[0];
    let mut e = Emitter::new(computed, limits, policy);
    // The root itself is computed inline even when it is a target.
    let body = e.lower_inline(node)?;
    let mut extra_outs = vec![];
    for (k, (n, buf)) in nodes[1..].iter().zip(extra).enumerate() {
        let f = e.value_fn(n)?;
        e.push_fn(format!(
            "fn result{}(i: u32) -> {} {{\n    return {};\n}}",
            k + 1,
            n.dtype().wgsl_storage(),
            store_expr(&format!("{f}(i)"), n.dtype())
        ));
        e.extra_dtypes.push(n.dtype());
        e.extra_elems.push(numel(n.shape()));
        e.note_inlined(n);
        extra_outs.push((buf, (numel(n.shape()) * n.dtype().size()) as u64));
    }
    let mut k = finish_pointwise(e, node, out, body)?;
    k.extra_outs = extra_outs;
    Ok(k)
}

/// The elementwise kernel whose root computes `node` by `body`.
fn finish_pointwise(mut e: Emitter, node: &Tensor, out: BufRef, body: String) -> Result<Kernel> {
    let limits = e.limits;
    let ty = node.dtype().wgsl();
    e.push_fn(format!("fn root(i: u32) -> {ty} {{\n{body}\n}}"));
    e.push_fn(format!(
        "fn result(i: u32) -> {} {{\n    return {};\n}}",
        node.dtype().wgsl_storage(),
        store_expr("root(i)", node.dtype())
    ));
    e.note_inlined(node);
    let n = numel(node.shape());
    e.const_u32("N", n)?;
    let groups = grid_1d(n, 256, limits)?;
    let label = format!("{}+{}", node.op().name(), e.inlined().len() - 1);
    e.finish(&templates::ELEMENTWISE, label, out, node.dtype(), n, groups)
}
