//! WGSL generation: every fused group of graph nodes becomes one kernel. A node inside a
//! kernel is a function `fn vN(i: u32) -> T` computing the node at flat index `i`; a node
//! computed by an earlier kernel (or realized before) is a load from its buffer.

use super::pool::Storage;
use crate::dtype::{DType, numel, strides};
use crate::tensor::Tensor;
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) const ELEMENTWISE_WGSL: &str = include_str!("../../shaders/elementwise.wgsl");
pub(crate) const COMMON_WGSL: &str = include_str!("../../shaders/common.wgsl");

/// A buffer of the schedule: one that exists, or one to be allocated when the kernels run.
#[derive(Clone)]
pub(crate) enum BufRef {
    Real(Storage),
    Virtual(usize),
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
pub(crate) struct Kernel {
    pub source: String,
    pub inputs: Vec<BufRef>,
    pub out: BufRef,
    pub out_bytes: u64,
    pub groups: [u32; 3],
    pub label: String,
}

/// Builds the functions of one kernel.
pub(crate) struct Emitter<'a> {
    computed: &'a HashMap<u64, BufRef>,
    /// Buffers read by the kernel: buffer, dtype, and whether it is read as `vec4<f32>`.
    pub bindings: Vec<(BufRef, DType, bool)>,
    funcs: Vec<String>,
    names: HashMap<u64, String>,
    pub f16: bool,
    /// Nodes computed inline, in post-order (inputs first).
    pub inlined: Vec<Tensor>,
}

impl<'a> Emitter<'a> {
    pub fn new(computed: &'a HashMap<u64, BufRef>) -> Self {
        Emitter {
            computed,
            bindings: vec![],
            funcs: vec![],
            names: HashMap::new(),
            f16: false,
            inlined: vec![],
        }
    }

    pub fn buffer_of(&self, t: &Tensor) -> Option<BufRef> {
        if let Some(b) = self.computed.get(&t.id()) {
            return Some(b.clone());
        }
        t.storage().map(BufRef::Real)
    }

    /// Binds a buffer (once) and returns its binding index.
    pub fn bind(&mut self, buf: BufRef, dtype: DType) -> usize {
        if dtype == DType::F16 {
            self.f16 = true;
        }
        self.bind_as(buf, dtype, false)
    }

    /// Binds an f32 buffer to be read four elements at a time (`array<vec4<f32>>`).
    pub fn bind_vec4(&mut self, buf: BufRef) -> usize {
        self.bind_as(buf, DType::F32, true)
    }

    fn bind_as(&mut self, buf: BufRef, dtype: DType, vec4: bool) -> usize {
        if let Some(k) = self
            .bindings
            .iter()
            .position(|(b, _, v)| *b == buf && *v == vec4)
        {
            return k;
        }
        self.bindings.push((buf, dtype, vec4));
        self.bindings.len() - 1
    }

    /// The name of the function that computes `t` at a flat index.
    pub fn value_fn(&mut self, t: &Tensor) -> String {
        if let Some(n) = self.names.get(&t.id()) {
            return n.clone();
        }
        let body = if let Some(buf) = self.buffer_of(t) {
            let k = self.bind(buf, t.dtype());
            format!("    return {};", load_expr(&format!("b{k}[i]"), t.dtype()))
        } else {
            assert!(
                !t.op().is_kernel_root(),
                "scheduler bug: {} not materialized",
                t.op().name()
            );
            let args: Vec<String> = t.inputs().iter().map(|x| self.value_fn(x)).collect();
            self.inlined.push(t.clone());
            t.op().prim().emit(t, &args, self)
        };
        // Names follow the visiting order (inputs first), so the same graph structure gives
        // the same source, and hits the pipeline cache, whatever the node ids.
        let name = format!("v{}", self.names.len());
        let ty = t.dtype().wgsl();
        if t.dtype() == DType::F16 {
            self.f16 = true;
        }
        self.funcs
            .push(format!("fn {name}(i: u32) -> {ty} {{\n{body}\n}}"));
        self.names.insert(t.id(), name.clone());
        name
    }

    /// Adds a helper function to the kernel.
    pub fn push_fn(&mut self, src: String) {
        self.funcs.push(src);
    }

    pub fn enable(&self) -> &'static str {
        if self.f16 { "enable f16;" } else { "" }
    }

    /// Binding declarations: inputs read-only, then the output as `out`.
    pub fn binding_decls(&self, out_dtype: DType) -> String {
        let mut s = String::new();
        for (k, (_, d, vec4)) in self.bindings.iter().enumerate() {
            let ty = if *vec4 { "vec4<f32>" } else { d.wgsl_storage() };
            s += &format!("@group(0) @binding({k}) var<storage, read> b{k}: array<{ty}>;\n");
        }
        s += &format!(
            "@group(0) @binding({}) var<storage, read_write> out: array<{}>;\n",
            self.bindings.len(),
            out_dtype.wgsl_storage()
        );
        s
    }

    pub fn functions(&self) -> String {
        self.funcs.join("\n\n")
    }

    /// Fills a kernel template's shared slots: enables, bindings, helpers and functions.
    pub fn fill(&self, template: &str, out_dtype: DType) -> String {
        template
            .replace("{{ENABLE}}", self.enable())
            .replace("{{BINDINGS}}", &self.binding_decls(out_dtype))
            .replace("{{HELPERS}}", COMMON_WGSL)
            .replace("{{FUNCTIONS}}", &self.functions())
    }

    pub fn inputs(&self) -> Vec<BufRef> {
        self.bindings.iter().map(|(b, _, _)| b.clone()).collect()
    }
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

/// Code that splits flat index `var` of `shape` into per-axis indices `{prefix}0..`.
pub(crate) fn decompose(shape: &[usize], var: &str, prefix: &str) -> String {
    let mut s = format!("    var {prefix}r = {var};\n");
    for k in (0..shape.len()).rev() {
        if k == 0 {
            s += &format!("    let {prefix}{k} = {prefix}r;\n");
        } else {
            s += &format!(
                "    let {prefix}{k} = {prefix}r % {}u;\n    {prefix}r = {prefix}r / {}u;\n",
                shape[k], shape[k]
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

/// Workgroup grid for `threads` invocations of a 256-wide kernel, folded into 2-D.
pub(crate) fn grid_1d(threads: usize, per_group: usize) -> [u32; 3] {
    let groups = threads.div_ceil(per_group).max(1);
    let max = super::device::gpu_or_panic()
        .info
        .max_compute_workgroups_per_dimension as usize;
    let x = groups.min(max);
    let y = groups.div_ceil(x);
    [x as u32, y as u32, 1]
}

/// The kernel that computes an elementwise-fused node.
pub(crate) fn elementwise_kernel(
    node: &Tensor,
    computed: &HashMap<u64, BufRef>,
    out: BufRef,
) -> (Kernel, Vec<Tensor>) {
    let mut e = Emitter::new(computed);
    // The root itself is computed inline even when it is a target.
    let args: Vec<String> = node.inputs().iter().map(|x| e.value_fn(x)).collect();
    let body = node.op().prim().emit(node, &args, &mut e);
    let root = format!("fn root(i: u32) -> {} {{\n{body}\n}}", node.dtype().wgsl());
    e.push_fn(root);
    e.inlined.push(node.clone());
    let n = numel(node.shape());
    let source = e
        .fill(ELEMENTWISE_WGSL, node.dtype())
        .replace("{{N}}", &n.to_string())
        .replace("{{STORE}}", &store_expr("root(i)", node.dtype()));
    let kernel = Kernel {
        source,
        inputs: e.inputs(),
        out,
        out_bytes: (n * node.dtype().size()) as u64,
        groups: grid_1d(n, 256),
        label: format!("{}+{}", node.op().name(), e.inlined.len() - 1),
    };
    (kernel, e.inlined)
}
