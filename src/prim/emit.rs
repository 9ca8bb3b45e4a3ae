//! The kernel emitter: the prelude every kernel starts with (the `enable`s, the bindings, the
//! constants and type aliases its template names, the shared helpers it calls) and the node
//! functions of the nodes fused into it. A node inside a kernel is a function
//! `fn vN(i: u32) -> T` computing the node at flat index `i`; a node computed by an earlier
//! kernel (or realized before) is a load from its buffer.

use crate::base::dtype::DType;
use crate::base::error::{Error, Result, internal};
use crate::base::limits::Limits;
use crate::base::policy::Policy;
use crate::ir::op::Fusion;
use crate::ir::tensor::Tensor;
use crate::kernel::wgsl::{helpers_called, load_expr, param_expr};
use crate::kernel::{BufRef, Kernel, Step, Template};
use crate::prim::lower::{LowerCx, Lowered};
use std::collections::HashMap;

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
    pub(super) extra_dtypes: Vec<DType>,
    /// Element counts of the further outputs (at most the kernel's `N`; each is stored only
    /// below its own count).
    pub(super) extra_elems: Vec<usize>,
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
        view_buffer(t, |id| {
            self.provided
                .get(&id)
                .or_else(|| self.computed.get(&id))
                .cloned()
        })
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
            let body = self.lower_inline(t)?;
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
    pub(super) fn lower_inline(&mut self, t: &Tensor) -> Result<String> {
        let args = t
            .inputs()
            .iter()
            .map(|x| self.value_fn(x))
            .collect::<Result<Vec<_>>>()?;
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

    /// Lets a kernel root's template read back what it wrote (`load_out(i)`, values of the
    /// node's dtype: factorizations in place, accumulations). The output must then be one
    /// binding: an error names `op` and the shape when the node is larger.
    pub fn read_back_output(&mut self, op: &'static str, node: &Tensor) -> Result<()> {
        let bytes = (crate::base::dtype::numel(node.shape()) * node.dtype().size()) as u64;
        if bytes > self.limits.window_bytes() {
            return Err(Error::TooLarge {
                op,
                msg: format!(
                    "the result of shape {:?} needs {bytes} bytes in one binding; this adapter binds at most {}",
                    node.shape(),
                    self.limits.window_bytes()
                ),
            });
        }
        self.push_fn(format!(
            "fn load_out(i: u32) -> {} {{\n    return out[i];\n}}",
            node.dtype().wgsl_storage()
        ));
        Ok(())
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

    /// Whether the prelude defines `name` (a constant, an alias or a function the lowering
    /// declared; the emitter's own `wg_store` and `wg_extra` always).
    fn defines(&self, name: &str) -> bool {
        let (c, a, f) = (
            format!("const {name}:"),
            format!("alias {name} ="),
            format!("fn {name}("),
        );
        let later_f = format!("\n{f}");
        matches!(name, "wg_store" | "wg_extra")
            || self.consts.iter().any(|d| d.starts_with(&c))
            || self.aliases.iter().any(|d| d.starts_with(&a))
            || self
                .funcs
                .iter()
                .any(|d| d.starts_with(&f) || d.contains(&later_f))
    }

    /// The kernel: the prelude (for an output buffer of `out_dtype`) followed by `template`;
    /// an internal error when the lowering did not define a name the template needs.
    pub fn finish(
        self,
        template: &Template,
        label: impl Into<String>,
        out: BufRef,
        out_dtype: DType,
        out_elems: usize,
        groups: [u32; 3],
    ) -> Result<Kernel> {
        let label = label.into();
        if let Some(missing) = template.needs.iter().find(|n| !self.defines(n)) {
            return Err(internal(format!(
                "kernel {label}: the {} template needs `{missing}`, which its lowering did not define",
                template.name
            )));
        }
        let out_bytes = (out_elems * out_dtype.size()) as u64;
        let window_bytes = self.limits.window_bytes();
        let out_windows = out_bytes.div_ceil(window_bytes).max(1) as usize;
        let source = self.render(template, out_dtype, out_windows);
        Ok(Kernel {
            source,
            inputs: self.bindings.iter().map(|b| b.buf.clone()).collect(),
            windows: self.bindings.iter().map(|b| b.windows).collect(),
            out,
            out_bytes,
            out_windows,
            window_bytes,
            groups,
            label,
            inlined: self.inlined.iter().map(Tensor::id).collect(),
            params: self.params,
            origins: self.origins,
            extra_outs: vec![],
            step: Step::Dispatch,
        })
    }

    /// The nodes computed inside this kernel so far.
    pub fn inlined(&self) -> &[Tensor] {
        &self.inlined
    }

    /// Marks `t` as computed by this kernel (a kernel root's own node).
    pub fn note_inlined(&mut self, t: &Tensor) {
        self.inlined.push(t.clone());
    }

    fn render(&self, template: &Template, out_dtype: DType, out_windows: usize) -> String {
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
        if template.needs.contains(&"wg_extra") {
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
        s += &helpers_called(&format!("{funcs}\n{}", template.source));
        s += &funcs;
        s += "\n\n";
        s += template.source;
        s
    }
}

/// The buffer holding `t`'s values in its own flat order, if there is one: the one `placed`
/// gives for it, its own storage, or the buffer that a chain of views (reshape, alias) shares.
pub(crate) fn view_buffer(t: &Tensor, placed: impl Fn(u64) -> Option<BufRef>) -> Option<BufRef> {
    let mut cur = t.clone();
    loop {
        if let Some(b) = placed(cur.id()) {
            return Some(b);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::templates;

    #[test]
    fn a_template_whose_prelude_lacks_a_name_it_needs_is_an_internal_error() {
        let (computed, limits, policy) =
            (HashMap::new(), Limits::webgpu_default(), Policy::from_env());
        let bare = Emitter::new(&computed, &limits, &policy);
        let Err(e) = bare.finish(
            &templates::ELEMENTWISE,
            "bare",
            BufRef::None,
            DType::F32,
            4,
            [1, 1, 1],
        ) else {
            panic!("an elementwise kernel without `N` or `result` rendered");
        };
        let msg = e.to_string();
        assert!(matches!(e, Error::Internal(_)), "{msg}");
        assert!(msg.contains("elementwise") && msg.contains("`N`"), "{msg}");
        // With what the template needs, it renders, and the prelude has both.
        let mut e = Emitter::new(&computed, &limits, &policy);
        e.const_u32("N", 4).unwrap();
        e.push_fn("fn result(i: u32) -> f32 {\n    return f32(i);\n}".into());
        let k = e
            .finish(
                &templates::ELEMENTWISE,
                "ok",
                BufRef::None,
                DType::F32,
                4,
                [1, 1, 1],
            )
            .unwrap();
        assert!(k.source.contains("const N: u32 = 4u;") && k.source.contains("fn result("));
    }
}
