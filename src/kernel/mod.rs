//! The kernel description, below the graph: a schedule is a list of [`Kernel`]s (dispatches,
//! copies and loop markers, [`Step`]) over [`BufRef`]s (buffers that exist, or virtual ones
//! the buffer assignment places), plus the WGSL templates and text helpers (`wgsl`). Nothing
//! here knows graph nodes or devices: lowering (in `prim`) builds kernels, the scheduler
//! places them, the runtime records them.

pub(crate) mod wgsl;

use crate::memory::pool::Storage;
use std::sync::Arc;

/// A kernel template and its contract with the generated prelude: the names (constants,
/// aliases, functions) it uses without defining them, declared once here. Rendering checks
/// that the lowering defined each (`wg_store` and `wg_extra` the emitter always can), and a
/// test checks that the list is complete for the template's text.
pub(crate) struct Template {
    /// For messages.
    pub name: &'static str,
    /// The WGSL text, from `shaders/`.
    pub source: &'static str,
    /// What the prelude must define.
    pub needs: &'static [&'static str],
}

/// The kernel templates, each included once.
pub(crate) mod templates {
    use super::Template;

    /// Helpers every kernel may call (`wg_sin`, `wg_pow`, …).
    pub const COMMON: &str = include_str!("../../shaders/common.wgsl");
    /// One invocation per output element of a fused elementwise group.
    pub const ELEMENTWISE: Template = Template {
        name: "elementwise",
        source: include_str!("../../shaders/elementwise.wgsl"),
        needs: &["N", "result", "wg_extra", "wg_store"],
    };
    /// A reduction, one invocation per output.
    pub const REDUCE_THREAD: Template = Template {
        name: "reduce_thread",
        source: include_str!("../../shaders/reduce_thread.wgsl"),
        needs: &[
            "OUTPUTS", "R", "combine", "finish", "identity", "src", "wg_store",
        ],
    };
    /// A reduction, one workgroup tree per (output, chunk).
    pub const REDUCE_GROUP: Template = Template {
        name: "reduce_group",
        source: include_str!("../../shaders/reduce_group.wgsl"),
        needs: &[
            "Acc", "CHUNK", "CHUNKS", "OUTPUTS", "R", "combine", "finish", "identity", "src",
            "wg_store",
        ],
    };
    /// Matmul through workgroup memory (GPUs).
    pub const MATMUL_TILED: Template = Template {
        name: "matmul_tiled",
        source: include_str!("../../shaders/matmul_tiled.wgsl"),
        needs: &[
            "CB",
            "GROUPS",
            "K",
            "M",
            "N",
            "RB",
            "load_a",
            "load_b",
            "store_value",
            "wg_store",
        ],
    };
    /// Barrier-free matmul from vec4 reads (CPU adapters).
    pub const MATMUL_DIRECT: Template = Template {
        name: "matmul_direct",
        source: include_str!("../../shaders/matmul_direct.wgsl"),
        needs: &[
            "CB",
            "GROUPS",
            "M",
            "N",
            "RB",
            "ROWS",
            "WG_X",
            "WG_Y",
            "mm_block",
            "store_value",
            "wg_store",
        ],
    };
    /// Inclusive scan along the last axis, one invocation per row.
    pub const SCAN: Template = Template {
        name: "scan",
        source: include_str!("../../shaders/scan.wgsl"),
        needs: &[
            "L", "ROWS", "combine", "finish", "identity", "src", "wg_store",
        ],
    };
    /// Cholesky factorization, one workgroup per matrix.
    pub const CHOLESKY: Template = Template {
        name: "cholesky",
        source: include_str!("../../shaders/cholesky.wgsl"),
        needs: &["J0", "J1", "MATS", "N", "load_out", "src", "wg_store"],
    };
    /// Cholesky factorization of small matrices, one invocation per matrix.
    pub const CHOLESKY_SMALL: Template = Template {
        name: "cholesky_small",
        source: include_str!("../../shaders/cholesky_small.wgsl"),
        needs: &["MATS", "N", "load_out", "src", "wg_store"],
    };
    /// Scatter-add by rows of updates (and groups of positions).
    pub const SCATTER_BINS: Template = Template {
        name: "scatter_bins",
        source: include_str!("../../shaders/scatter_bins.wgsl"),
        needs: &[
            "Acc", "GROUPS", "INNER", "M", "N", "OUTER", "load_out", "slot", "src", "wg_store",
        ],
    };
    /// One bitonic sorting step, one invocation per compare-exchange.
    pub const BITONIC_STEP: Template = Template {
        name: "bitonic_step",
        source: include_str!("../../shaders/bitonic_step.wgsl"),
        needs: &["J", "K", "LEN", "TOTAL", "src", "wg_store"],
    };
    /// Bitonic sorting steps within blocks, in workgroup memory.
    pub const BITONIC_LOCAL: Template = Template {
        name: "bitonic_local",
        source: include_str!("../../shaders/bitonic_local.wgsl"),
        needs: &["B", "K", "LEN", "TOTAL", "src", "wg_store"],
    };
    /// Triangular solve, one invocation per (matrix, right-hand side).
    pub const TRISOLVE: Template = Template {
        name: "trisolve",
        source: include_str!("../../shaders/trisolve.wgsl"),
        needs: &[
            "K", "LOWER", "MATS", "N", "S0", "S1", "load_out", "src_a", "src_b", "wg_store",
        ],
    };
    /// LU factorization with partial pivoting, one workgroup per matrix.
    pub const LU: Template = Template {
        name: "lu",
        source: include_str!("../../shaders/lu.wgsl"),
        needs: &["J0", "J1", "MATS", "N", "W", "load_out", "src", "wg_store"],
    };
    /// Symmetric eigendecomposition by Jacobi sweeps, one workgroup per matrix.
    pub const JACOBI: Template = Template {
        name: "jacobi",
        source: include_str!("../../shaders/jacobi.wgsl"),
        needs: &["MATS", "MODE", "N", "load_out", "src", "wg_store"],
    };

    /// Every template, for the contract's test.
    #[cfg(test)]
    pub const ALL: [&Template; 14] = [
        &ELEMENTWISE,
        &REDUCE_THREAD,
        &REDUCE_GROUP,
        &MATMUL_TILED,
        &MATMUL_DIRECT,
        &SCAN,
        &CHOLESKY,
        &TRISOLVE,
        &LU,
        &JACOBI,
        &CHOLESKY_SMALL,
        &BITONIC_LOCAL,
        &BITONIC_STEP,
        &SCATTER_BINS,
    ];
}

/// A buffer of the schedule: one that exists, or one to be allocated when the kernels run.
#[derive(Clone)]
pub(crate) enum BufRef {
    /// A buffer that exists (a realized tensor's storage), bound as it is.
    Real(Storage),
    /// A buffer of this schedule, given a slot by buffer assignment.
    Virtual(usize),
    /// The `k`-th external input of a plan (a tensor that already holds a value), bound per
    /// call: lowered kernels then depend on the graph's structure only.
    External(usize),
    /// No buffer: what a loop marker writes.
    None,
}

impl BufRef {
    /// The virtual buffer's number (`None` for a buffer that exists).
    pub(crate) fn virtual_id(&self) -> Option<usize> {
        match self {
            BufRef::Virtual(v) => Some(*v),
            BufRef::Real(_) | BufRef::External(_) | BufRef::None => None,
        }
    }
}

impl PartialEq for BufRef {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (BufRef::Real(a), BufRef::Real(b)) => Arc::ptr_eq(a, b),
            (BufRef::Virtual(a), BufRef::Virtual(b)) => a == b,
            (BufRef::External(a), BufRef::External(b)) => a == b,
            (BufRef::None, BufRef::None) => true,
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
    /// Ids of the graph nodes computed inside this kernel (inputs first).
    pub inlined: Vec<u64>,
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
    /// The storage buffers the kernel binds: every window of its inputs and of its output,
    /// and its further outputs (the scalars' uniform block is not one).
    pub(crate) fn storage_bindings(&self) -> usize {
        self.windows.iter().sum::<usize>() + self.out_windows + self.extra_outs.len()
    }

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

#[cfg(test)]
mod tests {
    use super::templates;
    use std::collections::BTreeSet;

    /// WGSL's keywords, types, attributes and built-in functions the templates use.
    const WGSL: &[&str] = &[
        "fn",
        "let",
        "var",
        "const",
        "if",
        "else",
        "for",
        "return",
        "loop",
        "break",
        "continue",
        "while",
        "struct",
        "alias",
        "true",
        "false",
        "u32",
        "i32",
        "f32",
        "f16",
        "bool",
        "vec2",
        "vec3",
        "vec4",
        "array",
        "workgroup",
        "private",
        "storage",
        "uniform",
        "read",
        "read_write",
        "select",
        "min",
        "max",
        "abs",
        "sqrt",
        "exp",
        "log",
        "floor",
        "ceil",
        "fma",
        "dot",
        "bitcast",
        "workgroupBarrier",
        "storageBarrier",
        "compute",
        "workgroup_size",
        "builtin",
        "global_invocation_id",
        "local_invocation_id",
        "workgroup_id",
        "num_workgroups",
        "local_invocation_index",
    ];

    /// The names `source` uses without defining them: identifiers that are not WGSL's, not
    /// declared in it (`fn`, `let`, `var`, `const`, `struct`, `alias`, parameters and fields),
    /// not members after a `.`, and not `common.wgsl`'s helpers.
    fn free_names(source: &str) -> BTreeSet<String> {
        let helpers: BTreeSet<String> = templates::COMMON
            .lines()
            .filter_map(|l| l.strip_prefix("fn "))
            .filter_map(|l| l.split('(').next())
            .map(str::to_string)
            .collect();
        let text: String = source
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        let chars: Vec<char> = text.chars().collect();
        let mut tokens: Vec<(String, char, char)> = vec![]; // (name, char before, char after)
        let mut k = 0;
        while k < chars.len() {
            if chars[k].is_ascii_alphabetic() || chars[k] == '_' {
                let start = k;
                while k < chars.len() && (chars[k].is_ascii_alphanumeric() || chars[k] == '_') {
                    k += 1;
                }
                let before = chars[..start].iter().rev().find(|c| !c.is_whitespace());
                let after = chars[k..].iter().find(|c| !c.is_whitespace());
                let name: String = chars[start..k].iter().collect();
                tokens.push((name, *before.unwrap_or(&' '), *after.unwrap_or(&' ')));
            } else if chars[k].is_ascii_digit() {
                while k < chars.len() && (chars[k].is_ascii_alphanumeric() || chars[k] == '.') {
                    k += 1;
                }
            } else {
                k += 1;
            }
        }
        let mut defined = BTreeSet::new();
        for (k, (name, _, after)) in tokens.iter().enumerate() {
            let declares = ["fn", "let", "var", "const", "struct", "alias"];
            if declares.contains(&name.as_str()) {
                // `var<workgroup> x`: the declared name follows the address space.
                let skip = if name == "var" && *after == '<' { 2 } else { 1 };
                if let Some((d, _, _)) = tokens.get(k + skip) {
                    defined.insert(d.clone());
                }
            }
            if *after == ':' {
                defined.insert(name.clone()); // a parameter, a field, a typed `let`
            }
        }
        tokens
            .into_iter()
            .filter(|(name, before, _)| {
                *before != '.' && *before != '@' && !WGSL.contains(&name.as_str())
            })
            .map(|(name, _, _)| name)
            .filter(|name| !defined.contains(name) && !helpers.contains(name))
            .collect()
    }

    #[test]
    fn every_template_declares_exactly_the_names_it_needs_from_the_prelude() {
        for t in templates::ALL {
            let declared: BTreeSet<String> = t.needs.iter().map(|s| s.to_string()).collect();
            assert_eq!(free_names(t.source), declared, "template {}", t.name);
        }
    }
}
