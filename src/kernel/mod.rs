//! The kernel description, below the graph: a schedule is a list of [`Kernel`]s (dispatches,
//! copies and loop markers, [`Step`]) over [`BufRef`]s (buffers that exist, or virtual ones
//! the buffer assignment places), plus the WGSL templates and text helpers (`wgsl`). Nothing
//! here knows graph nodes or devices: lowering (in `prim`) builds kernels, the scheduler
//! places them, the runtime records them.

pub(crate) mod wgsl;

use crate::memory::pool::Storage;
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
