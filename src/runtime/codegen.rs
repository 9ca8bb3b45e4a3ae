//! WGSL generation. Every kernel is one template (a file in `shaders/`, holding only the entry
//! point and its fixed helpers) after a generated prelude: the `enable`s, the bindings, the
//! constants and type aliases the template names, the shared helpers of `common.wgsl`, and
//! the node functions. A node inside a kernel is a function `fn vN(i: u32) -> T` computing the
//! node at flat index `i`; a node computed by an earlier kernel (or realized before) is a load
//! from its buffer.
//!
//! Primitives lower through [`LowerCx`]: an inline node returns the body of its node function,
//! a kernel root returns whole kernels built with an [`Emitter`].

use super::device::Limits;
use super::policy::Policy;
use super::pool::Storage;
use crate::dtype::{DType, numel, strides};
use crate::error::{Error, Result};
use crate::prim::Fusion;
use crate::tensor::Tensor;
use std::collections::HashMap;
use std::sync::Arc;

/// The kernel templates, each included once.
pub(crate) mod templates {
    /// Helpers every kernel may call (`wg_sin`, `wg_pow`, …).
    pub const COMMON: &str = include_str!("../../shaders/common.wgsl");
    /// One invocation per output element of a fused elementwise group.
    pub const ELEMENTWISE: &str = include_str!("../../shaders/elementwise.wgsl");
    /// A reduction, one invocation per output.
    pub const REDUCE_THREAD: &str = include_str!("../../shaders/reduce_thread.wgsl");
    /// A reduction, one workgroup tree per (output, chunk).
    pub const REDUCE_GROUP: &str = include_str!("../../shaders/reduce_group.wgsl");
    /// Matmul through workgroup memory (GPUs).
    pub const MATMUL_TILED: &str = include_str!("../../shaders/matmul_tiled.wgsl");
    /// Barrier-free matmul from vec4 reads (CPU adapters).
    pub const MATMUL_DIRECT: &str = include_str!("../../shaders/matmul_direct.wgsl");
    /// Inclusive scan along the last axis, one invocation per row.
    pub const SCAN: &str = include_str!("../../shaders/scan.wgsl");
}

/// A buffer of the schedule: one that exists, or one to be allocated when the kernels run.
#[derive(Clone)]
pub(crate) enum BufRef {
    Real(Storage),
    Virtual(usize),
}

impl BufRef {
    /// The virtual buffer's number (`None` for a buffer that exists).
    pub(crate) fn virtual_id(&self) -> Option<usize> {
        match self {
            BufRef::Virtual(v) => Some(*v),
            BufRef::Real(_) => None,
        }
    }
}

impl PartialEq for BufRef {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (BufRef::Real(a), BufRef::Real(b)) => Arc::ptr_eq(a, b),
            (BufRef::Virtual(a), BufRef::Virtual(b)) => a == b,
            _ => false,
        }
    }
}

/// One compute dispatch: its source, the buffers it reads (bindings 0..n) and the one it
/// writes (binding n), and its workgroup grid.
#[derive(Clone)]
pub(crate) struct Kernel {
    pub source: String,
    pub inputs: Vec<BufRef>,
    pub out: BufRef,
    pub out_bytes: u64,
    pub groups: [u32; 3],
    pub label: String,
    /// Graph nodes computed inside this kernel (inputs first).
    pub inlined: Vec<Tensor>,
    /// The kernel's scalars (bit patterns), bound as a uniform block after the output: values
    /// are data, so a changed scalar reuses the pipeline, and the compiler cannot fold them.
    pub params: Vec<u32>,
    /// Which params hold a node's run-time value (a constant's, a random key's word):
    /// `(param index, node id, word)`. A cached plan refreshes them from the next graph.
    pub origins: Vec<(usize, u64, u8)>,
    /// Further outputs of a multi-output elementwise kernel (same element count as `out`,
    /// one binding each, after `out`'s): the buffer and its bytes.
    pub extra_outs: Vec<(BufRef, u64)>,
    /// Bindings per input: a tensor larger than one storage binding is bound as several
    /// windows of its buffer, `window_bytes` each.
    pub windows: Vec<usize>,
    /// Bindings of the output (windows, as for inputs).
    pub out_windows: usize,
    /// The size of a window, in bytes.
    pub window_bytes: u64,
    /// What the step does: a dispatch (all of the above), or a copy or loop marker.
    pub step: Step,
}

/// What a [`Kernel`] entry of a schedule does when it is recorded.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Step {
    /// A compute dispatch.
    Dispatch,
    /// `bytes` copied from `inputs[0]` at byte `src` to `out` at byte `dst` (`out_bytes` is
    /// the whole of `out`'s size, for buffer assignment), plus `src_step` and `dst_step` bytes
    /// per step index `t = stride * j + phase`, `j` the iteration of the innermost repeat (0
    /// outside one); `t` counts down from `reverse_of - 1` instead when that is set.
    Copy {
        src: u64,
        dst: u64,
        bytes: u64,
        src_step: u64,
        dst_step: u64,
        stride: u64,
        phase: u64,
        reverse_of: Option<u64>,
    },
    /// The entries up to the matching [`Step::EndRepeat`] are recorded `times` times.
    Repeat { times: usize },
    /// The end of a repeated block.
    EndRepeat,
}

impl Kernel {
    /// A schedule entry that is not a dispatch: a copy (from `src` into `out`) or a marker.
    pub(crate) fn marker(step: Step, src: Option<BufRef>, out: BufRef, out_bytes: u64) -> Kernel {
        let inputs: Vec<BufRef> = src.into_iter().collect();
        Kernel {
            source: String::new(),
            windows: vec![1; inputs.len()],
            inputs,
            out,
            out_bytes,
            out_windows: 1,
            window_bytes: 0,
            groups: [0; 3],
            label: format!("{step:?}"),
            inlined: vec![],
            params: vec![],
            origins: vec![],
            extra_outs: vec![],
            step,
        }
    }
}

/// A buffer a kernel reads: the buffer, its dtype, whether read as `vec4<f32>`, and the number
/// of windows it is bound as.
struct Binding {
    buf: BufRef,
    dtype: DType,
    vec4: bool,
    windows: usize,
}

/// Builds one kernel: its bindings, prelude declarations and node functions.
pub(crate) struct Emitter<'a> {
    computed: &'a HashMap<u64, BufRef>,
    /// Buffers this kernel's lowering provided for nodes (operands it materialized itself).
    provided: HashMap<u64, BufRef>,
    /// Nodes whose value at the index being computed is a private variable of the kernel (a
    /// matmul's accumulator, read by its fused epilogue).
    private: HashMap<u64, String>,
    pub limits: &'a Limits,
    pub policy: &'a Policy,
    /// Buffers read by the kernel.
    bindings: Vec<Binding>,
    consts: Vec<String>,
    aliases: Vec<String>,
    funcs: Vec<String>,
    names: HashMap<u64, String>,
    f16: bool,
    /// Nodes computed inline, in post-order (inputs first).
    inlined: Vec<Tensor>,
    /// Scalars read from the kernel's uniform block, by bit pattern.
    params: Vec<u32>,
    /// Params holding a node's value: `(param index, node id, word)`.
    origins: Vec<(usize, u64, u8)>,
    /// Dtypes of the further outputs (`out1`, `out2`, …) of a multi-output kernel.
    extra_dtypes: Vec<DType>,
    /// Element counts of the further outputs (at most the kernel's `N`; each is stored only
    /// below its own count).
    extra_elems: Vec<usize>,
}

/// Helpers cheap enough to recompute wherever they are needed.
const LIGHT_HELPERS: [&str; 5] = ["wg_isnan", "wg_max", "wg_min", "wg_inf", "wg_isinf"];

impl<'a> Emitter<'a> {
    pub fn new(computed: &'a HashMap<u64, BufRef>, limits: &'a Limits, policy: &'a Policy) -> Self {
        Emitter {
            computed,
            provided: HashMap::new(),
            private: HashMap::new(),
            limits,
            policy,
            bindings: vec![],
            consts: vec![],
            aliases: vec![],
            funcs: vec![],
            names: HashMap::new(),
            f16: false,
            inlined: vec![],
            params: vec![],
            origins: vec![],
            extra_dtypes: vec![],
            extra_elems: vec![],
        }
    }

    /// The buffer holding `t`'s values in its own flat order, if there is one: computed by an
    /// earlier kernel, realized before, or the buffer that a view (reshape, alias) shares.
    pub fn buffer_of(&self, t: &Tensor) -> Option<BufRef> {
        let mut cur = t.clone();
        loop {
            if let Some(b) = self
                .provided
                .get(&cur.id())
                .or_else(|| self.computed.get(&cur.id()))
            {
                return Some(b.clone());
            }
            if let Some(s) = cur.storage() {
                return Some(BufRef::Real(s));
            }
            if cur.op().fusion() != Fusion::View {
                return None;
            }
            cur = cur.inputs().into_iter().next()?;
        }
    }

    /// Reads `t` from `buf` in this kernel (an operand the lowering materialized itself).
    pub fn provide(&mut self, t: &Tensor, buf: BufRef) {
        self.provided.insert(t.id(), buf);
    }

    /// How heavy computing `t` inside this kernel would be: the nodes it inlines, and whether
    /// any calls a heavy helper (a transcendental: a polynomial, branches, perhaps a loop;
    /// NaN-aware max/min and the like are light).
    pub fn fused_cost(&self, t: &Tensor) -> (usize, bool) {
        let mut probe = Emitter::new(self.computed, self.limits, self.policy);
        probe.provided = self.provided.clone();
        if probe.value_fn(t).is_err() {
            return (usize::MAX, true);
        }
        let heavy = probe.funcs.iter().any(|f| {
            f.match_indices("wg_").any(|(at, _)| {
                let name: String = f[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                !LIGHT_HELPERS.contains(&name.as_str())
            })
        });
        (probe.inlined.len(), heavy)
    }

    /// Reads `t` from the private variable `var` (declared by the caller) wherever the kernel's
    /// fused code needs it: valid only for code that reads `t` at the index being computed.
    pub fn provide_private(&mut self, t: &Tensor, var: &str) {
        self.private.insert(t.id(), var.to_string());
    }

    /// Binds a buffer holding `elems` values of `dtype` (once) and returns its binding index;
    /// read it with [`Emitter::read`].
    pub fn bind(&mut self, buf: BufRef, dtype: DType, elems: usize) -> usize {
        if dtype == DType::F16 {
            self.f16 = true;
        }
        self.bind_as(buf, dtype, false, elems as u64 * dtype.size() as u64)
    }

    /// Binds an f32 buffer of `elems` values to be read four at a time (`array<vec4<f32>>`).
    pub fn bind_vec4(&mut self, buf: BufRef, elems: usize) -> usize {
        self.bind_as(buf, DType::F32, true, elems as u64 * 4)
    }

    fn bind_as(&mut self, buf: BufRef, dtype: DType, vec4: bool, bytes: u64) -> usize {
        if let Some(k) = self
            .bindings
            .iter()
            .position(|b| b.buf == buf && b.vec4 == vec4)
        {
            return k;
        }
        let windows = bytes.div_ceil(self.limits.window_bytes()).max(1) as usize;
        self.bindings.push(Binding {
            buf,
            dtype,
            vec4,
            windows,
        });
        self.bindings.len() - 1
    }

    /// Element `idx` of binding `k` (in its own units: a `vec4` for vec4 bindings). A binding
    /// of several windows reads through a function that picks the window.
    pub fn read(&mut self, k: usize, idx: &str) -> String {
        let b = &self.bindings[k];
        if b.windows == 1 {
            return format!("b{k}[{idx}]");
        }
        let unit = if b.vec4 { 16 } else { b.dtype.size() as u64 };
        let per = self.limits.window_bytes() / unit;
        let ty = if b.vec4 {
            "vec4<f32>"
        } else {
            b.dtype.wgsl_storage()
        };
        let mut body = format!(
            "fn wg_read{k}(i: u32) -> {ty} {{\n    let w = i / {per}u;\n    let j = i % {per}u;\n"
        );
        for w in 0..b.windows - 1 {
            body += &format!("    if (w == {w}u) {{\n        return b{k}_{w}[j];\n    }}\n");
        }
        body += &format!("    return b{k}_{}[j];\n}}", b.windows - 1);
        self.push_fn(body);
        format!("wg_read{k}({idx})")
    }

    /// The name of the function that computes `t` at a flat index: a load when `t` has a
    /// buffer, else the node computed inline (with its own inputs, recursively).
    pub fn value_fn(&mut self, t: &Tensor) -> Result<String> {
        if let Some(n) = self.names.get(&t.id()) {
            return Ok(n.clone());
        }
        let body = if let Some(var) = self.private.get(&t.id()) {
            format!("    return {var};")
        } else if let Some(buf) = self.buffer_of(t) {
            let k = self.bind(buf, t.dtype(), t.numel());
            let elem = self.read(k, "i");
            format!("    return {};", load_expr(&elem, t.dtype()))
        } else {
            if matches!(t.op().prim().fusion(), Fusion::KernelRoot { .. }) {
                return Err(internal(format!(
                    "{} was not given a kernel of its own",
                    t.op().name()
                )));
            }
            let args = t
                .inputs()
                .iter()
                .map(|x| self.value_fn(x))
                .collect::<Result<Vec<_>>>()?;
            let body = self.lower_inline(t, args)?;
            self.inlined.push(t.clone());
            body
        };
        // Names follow the visiting order (inputs first), so the same graph structure gives
        // the same source, and hits the pipeline cache, whatever the node ids.
        let name = format!("v{}", self.names.len());
        if t.dtype() == DType::F16 {
            self.f16 = true;
        }
        self.funcs.push(format!(
            "fn {name}(i: u32) -> {} {{\n{body}\n}}",
            t.dtype().wgsl()
        ));
        self.names.insert(t.id(), name.clone());
        Ok(name)
    }

    /// The body of `t`'s node function, from its primitive's lowering.
    fn lower_inline(&mut self, t: &Tensor, args: Vec<String>) -> Result<String> {
        let mut cx = LowerCx {
            limits: self.limits,
            policy: self.policy,
            computed: self.computed,
            args,
            helpers: vec![],
            params: std::mem::take(&mut self.params),
            origins: std::mem::take(&mut self.origins),
            out: None,
            next_virtual: 0,
            epilogue: None,
        };
        let lowered = t.op().prim().lower(t, &mut cx);
        self.params = std::mem::take(&mut cx.params);
        self.origins = std::mem::take(&mut cx.origins);
        let lowered = lowered?;
        for h in cx.helpers {
            if !self.funcs.contains(&h) {
                self.funcs.push(h);
            }
        }
        match lowered {
            Lowered::Body(b) => Ok(b),
            Lowered::Kernels(_) => Err(internal(format!(
                "{} lowered to kernels but fuses inline",
                t.op().name()
            ))),
        }
    }

    /// Adds a function to the prelude (once).
    pub fn push_fn(&mut self, src: String) {
        if !self.funcs.contains(&src) {
            self.funcs.push(src);
        }
    }

    /// Declares `const NAME: u32` in the prelude; an error when it does not fit 32 bits.
    pub fn const_u32(&mut self, name: &str, value: usize) -> Result<()> {
        let v = u32::try_from(value).map_err(|_| Error::TooLarge {
            op: "kernel",
            msg: format!("{name} = {value} does not fit a 32-bit index"),
        })?;
        self.consts.push(format!("const {name}: u32 = {v}u;"));
        Ok(())
    }

    /// A scalar of the kernel's uniform block (a new slot), as a `u32` expression.
    /// A scalar holding word `word` of `node`'s run-time value (see [`Kernel::origins`]).
    pub fn value_param(&mut self, node: &Tensor, word: u8, bits: u32) -> String {
        self.origins.push((self.params.len(), node.id(), word));
        param_expr(&mut self.params, bits)
    }

    /// Declares `alias NAME = TYPE;` in the prelude.
    pub fn alias(&mut self, name: &str, ty: &str) {
        self.aliases.push(format!("alias {name} = {ty};"));
    }

    /// The kernel: the prelude (for an output buffer of `out_dtype`) followed by `template`.
    pub fn finish(
        self,
        template: &str,
        label: impl Into<String>,
        out: BufRef,
        out_dtype: DType,
        out_elems: usize,
        groups: [u32; 3],
    ) -> Kernel {
        let out_bytes = (out_elems * out_dtype.size()) as u64;
        let window_bytes = self.limits.window_bytes();
        let out_windows = out_bytes.div_ceil(window_bytes).max(1) as usize;
        let source = self.render(template, out_dtype, out_windows);
        Kernel {
            source,
            inputs: self.bindings.iter().map(|b| b.buf.clone()).collect(),
            windows: self.bindings.iter().map(|b| b.windows).collect(),
            out,
            out_bytes,
            out_windows,
            window_bytes,
            groups,
            label: label.into(),
            inlined: self.inlined,
            params: self.params,
            origins: self.origins,
            extra_outs: vec![],
            step: Step::Dispatch,
        }
    }

    /// The nodes computed inside this kernel so far.
    pub fn inlined(&self) -> &[Tensor] {
        &self.inlined
    }

    /// Marks `t` as computed by this kernel (a kernel root's own node).
    pub fn note_inlined(&mut self, t: &Tensor) {
        self.inlined.push(t.clone());
    }

    fn render(&self, template: &str, out_dtype: DType, out_windows: usize) -> String {
        let mut s = String::new();
        if self.f16 || out_dtype == DType::F16 {
            s += "enable f16;\n\n";
        }
        // Bindings in order: every window of every input, the output's windows, the scalars.
        let mut slot = 0;
        for (k, b) in self.bindings.iter().enumerate() {
            let ty = if b.vec4 {
                "vec4<f32>"
            } else {
                b.dtype.wgsl_storage()
            };
            for w in 0..b.windows {
                let name = if b.windows == 1 {
                    format!("b{k}")
                } else {
                    format!("b{k}_{w}")
                };
                s += &format!(
                    "@group(0) @binding({slot}) var<storage, read> {name}: array<{ty}>;\n"
                );
                slot += 1;
            }
        }
        let st = out_dtype.wgsl_storage();
        for w in 0..out_windows {
            let name = if out_windows == 1 {
                "out".to_string()
            } else {
                format!("out_{w}")
            };
            s += &format!(
                "@group(0) @binding({slot}) var<storage, read_write> {name}: array<{st}>;\n"
            );
            slot += 1;
        }
        for (k, d) in self.extra_dtypes.iter().enumerate() {
            s += &format!(
                "@group(0) @binding({slot}) var<storage, read_write> out{}: array<{}>;\n",
                k + 1,
                d.wgsl_storage()
            );
            slot += 1;
        }
        if !self.params.is_empty() {
            s += &format!(
                "@group(0) @binding({slot}) var<uniform> params: array<vec4<u32>, {}>;\n",
                self.params.len().div_ceil(4)
            );
        }
        s.push('\n');
        // Every template stores through `wg_store(i, v)`.
        if out_windows == 1 {
            s += &format!("fn wg_store(i: u32, v: {st}) {{\n    out[i] = v;\n}}\n\n");
        } else {
            let per = self.limits.window_bytes() / out_dtype.size() as u64;
            s += &format!(
                "fn wg_store(i: u32, v: {st}) {{\n    let w = i / {per}u;\n    let j = i % {per}u;\n"
            );
            for w in 0..out_windows {
                s += &format!("    if (w == {w}u) {{\n        out_{w}[j] = v;\n    }}\n");
            }
            s += "}\n\n";
        }
        // The further outputs of a multi-output kernel (`wg_extra` does nothing in others).
        if template.contains("wg_extra(") {
            s += "fn wg_extra(i: u32) {\n";
            for (k, n) in self.extra_elems.iter().enumerate() {
                let k = k + 1;
                s += &format!("    if (i < {n}u) {{\n        out{k}[i] = result{k}(i);\n    }}\n");
            }
            s += "}\n\n";
        }
        for c in self.consts.iter().chain(&self.aliases) {
            s += c;
            s.push('\n');
        }
        s.push('\n');
        let funcs = self.funcs.join("\n\n");
        s += &helpers_called(&format!("{funcs}\n{template}"));
        s += &funcs;
        s += "\n\n";
        s += template;
        s
    }
}

/// The helpers of `common.wgsl` that `code` calls, directly or through each other (every
/// helper in every kernel would only lengthen shader compilation).
fn helpers_called(code: &str) -> String {
    static HELPERS: std::sync::LazyLock<Vec<(String, String)>> = std::sync::LazyLock::new(|| {
        // Top-level blocks: comment lines, then `fn name(...) { ... }` closed by `}` in column 0.
        let mut blocks = vec![];
        let mut text = String::new();
        for line in templates::COMMON.lines() {
            text.push_str(line);
            text.push('\n');
            if line == "}" {
                let name = text
                    .lines()
                    .find_map(|l| l.strip_prefix("fn "))
                    .and_then(|l| l.split('(').next())
                    .unwrap_or_default()
                    .to_string();
                blocks.push((format!("{name}("), std::mem::take(&mut text)));
            }
        }
        blocks
    });
    let mut used = vec![false; HELPERS.len()];
    let mut search = code.to_string();
    loop {
        let mut grew = false;
        for (k, (call, text)) in HELPERS.iter().enumerate() {
            if !used[k] && search.contains(call.as_str()) {
                used[k] = true;
                search.push_str(text);
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    HELPERS
        .iter()
        .zip(used)
        .filter(|(_, u)| *u)
        .map(|((_, text), _)| format!("{text}\n"))
        .collect()
}

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
    computed: &'a HashMap<u64, BufRef>,
    args: Vec<String>,
    helpers: Vec<String>,
    /// Inline nodes: the scalars of the kernel the node is computed in.
    params: Vec<u32>,
    origins: Vec<(usize, u64, u8)>,
    out: Option<BufRef>,
    next_virtual: usize,
    /// Kernel roots: a node the kernel computes instead of the root's own value (an
    /// elementwise consumer fused into its store), when the planner found one.
    epilogue: Option<Tensor>,
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
        self.out.clone().unwrap_or(BufRef::Virtual(usize::MAX))
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

/// The expression reading scalar `bits` from a new slot of a kernel's uniform block. Slots are
/// never shared by value: the kernel's text must depend on the graph only, so that changed
/// values reuse its pipeline.
fn param_expr(params: &mut Vec<u32>, bits: u32) -> String {
    params.push(bits);
    let k = params.len() - 1;
    format!("params[{}][{}]", k / 4, k % 4)
}

/// The bits a uniform slot holds for a scalar of `dtype` with value `v`.
pub(crate) fn scalar_bits(v: f64, dtype: DType) -> u32 {
    match dtype {
        DType::F32 | DType::F16 => (v as f32).to_bits(),
        DType::I32 => (v as i64 as i32) as u32,
        DType::U32 => v as u64 as u32,
        DType::Bool => (v != 0.0) as u32,
    }
}

/// The kernel value of `dtype` from a uniform slot's `u32` expression.
pub(crate) fn scalar_read(slot: &str, dtype: DType) -> String {
    match dtype {
        DType::F32 => format!("bitcast<f32>({slot})"),
        DType::F16 => format!("f16(bitcast<f32>({slot}))"),
        DType::I32 => format!("bitcast<i32>({slot})"),
        DType::U32 => slot.to_string(),
        DType::Bool => format!("({slot} != 0u)"),
    }
}

/// An internal error: a bug in wgrad, reported instead of a panic.
pub(crate) fn internal(msg: String) -> Error {
    Error::Internal(msg)
}

/// The value read from a buffer element, as the dtype's kernel type.
pub(crate) fn load_expr(elem: &str, dtype: DType) -> String {
    match dtype {
        DType::Bool => format!("({elem} != 0u)"),
        _ => elem.to_string(),
    }
}

/// A kernel value converted for storing into a buffer of `dtype`.
pub(crate) fn store_expr(value: &str, dtype: DType) -> String {
    match dtype {
        DType::Bool => format!("select(0u, 1u, {value})"),
        _ => value.to_string(),
    }
}

/// A WGSL literal of `dtype` holding `v` exactly (f32 through its bits).
pub(crate) fn literal(v: f64, dtype: DType) -> String {
    match dtype {
        DType::F32 => {
            let f = v as f32;
            if f.is_finite() {
                format!("bitcast<f32>({}u)", f.to_bits())
            } else {
                format!(
                    "bitcast<f32>(select({}u, 0u, i == 0xffffffffu))",
                    f.to_bits()
                )
            }
        }
        DType::F16 => format!("f16({})", literal(v, DType::F32)),
        DType::I32 => format!("i32({})", v as i64 as i32),
        DType::U32 => format!("{}u", v as u64 as u32),
        DType::Bool => (if v != 0.0 { "true" } else { "false" }).to_string(),
    }
}

/// Code that splits flat index `var` of `shape` into per-axis indices `{prefix}0..`. (An axis
/// of size 0 divides by 1: such code never runs, but must still be valid WGSL.)
pub(crate) fn decompose(shape: &[usize], var: &str, prefix: &str) -> String {
    let mut s = format!("    var {prefix}r = {var};\n");
    for k in (0..shape.len()).rev() {
        if k == 0 {
            s += &format!("    let {prefix}{k} = {prefix}r;\n");
        } else {
            let d = shape[k].max(1);
            s += &format!(
                "    let {prefix}{k} = {prefix}r % {d}u;\n    {prefix}r = {prefix}r / {d}u;\n"
            );
        }
    }
    s
}

/// The flat row-major index of per-axis index expressions in `shape`.
pub(crate) fn compose(idx: &[String], shape: &[usize]) -> String {
    let st = strides(shape);
    let terms: Vec<String> = idx
        .iter()
        .zip(&st)
        .zip(shape)
        .filter(|(_, d)| **d != 1)
        .map(|((e, s), _)| {
            if *s == 1 {
                format!("({e})")
            } else {
                format!("({e}) * {s}u")
            }
        })
        .collect();
    if terms.is_empty() {
        "0u".into()
    } else {
        terms.join(" + ")
    }
}

/// Workgroup grid for `threads` invocations of a `per_group`-wide kernel, folded into 2-D.
pub(crate) fn grid_1d(threads: usize, per_group: usize, limits: &Limits) -> Result<[u32; 3]> {
    let groups = threads.div_ceil(per_group).max(1);
    let max = limits.max_workgroups.max(1) as usize;
    let x = groups.min(max);
    let y = groups.div_ceil(x);
    if y > max {
        return Err(Error::TooLarge {
            op: "kernel",
            msg: format!("{threads} invocations need more than {max}×{max} workgroups"),
        });
    }
    Ok([x as u32, y as u32, 1])
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
    let args = node
        .inputs()
        .iter()
        .map(|x| e.value_fn(x))
        .collect::<Result<Vec<_>>>()?;
    let body = e.lower_inline(node, args)?;
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
    Ok(e.finish(templates::ELEMENTWISE, label, out, node.dtype(), n, groups))
}
