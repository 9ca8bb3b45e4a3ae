//! Sorting: a bitonic network along the last axis, one kernel per step. Each element carries
//! its original index (`(..., L, 2)` pairs of value and index, `L` a power of two), so the
//! order is total — ascending values, NaN last, ties by index — and the sort is stable. A step
//! `(k, j)` compares every element with the one `j` away and keeps the smaller or the larger
//! by the block of `k` it lies in: `log2(L)·(log2(L)+1)/2` steps, each one launch over the
//! whole tensor, no loops (so no driver loop cap, whatever the row length). `argsort`, `sort`
//! and `top_k` are built on it (`compose/sort.rs`); `sort`'s derivative is that of the gather
//! by the permutation.

use crate::base::dtype::DType;
use crate::base::error::Result;
use crate::base::host::Host;
use crate::ir::op::{Fusion, Op};
use crate::ir::tensor::Tensor;
use crate::kernel::templates;
use crate::prim::Primitive;
use crate::prim::lower::{LowerCx, Lowered};

/// Steps of the bitonic network over rows of `len` pairs (`len` a power of two).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum BitonicStep {
    /// One compare-exchange step over the whole tensor: partners `j` apart, blocks of `k`
    /// sorted in alternating directions.
    Step { k: usize, j: usize, len: usize },
    /// The steps whose partners lie within blocks of `block` pairs, in workgroup memory
    /// (`shaders/bitonic_local.wgsl`): every step of every `k <= block` when `k` is 0, else
    /// those of `k` with `j < block`.
    Local { k: usize, block: usize, len: usize },
}

/// The largest block sorted in workgroup memory (two f32 arrays of it fit the 16 KiB that
/// WebGPU guarantees).
pub(crate) const LOCAL_BLOCK: usize = 1024;

impl Primitive for BitonicStep {
    fn name(&self) -> &'static str {
        "bitonic_step"
    }
    fn fusion(&self) -> Fusion {
        // Each step reads its input twice: fused into the next step, the network would
        // recompute itself exponentially.
        Fusion::KernelRoot { epilogue: false }
    }
    fn lower(&self, node: &Tensor, cx: &mut LowerCx) -> Result<Lowered> {
        let pairs = crate::base::dtype::numel(node.shape()) / 2;
        let mut e = cx.kernel();
        let v = e.value_fn(&node.inputs()[0])?;
        e.push_fn(format!("fn src(i: u32) -> f32 {{\n    return {v}(i);\n}}"));
        e.const_u32("TOTAL", pairs)?;
        let (template, groups) = match *self {
            BitonicStep::Step { k, j, len } => {
                e.const_u32("K", k)?;
                e.const_u32("J", j)?;
                e.const_u32("LEN", len)?;
                (&templates::BITONIC_STEP, cx.grid(pairs / 2, 256)?)
            }
            BitonicStep::Local { k, block, len } => {
                e.const_u32("B", block)?;
                e.const_u32("K", k)?;
                e.const_u32("LEN", len)?;
                (
                    &templates::BITONIC_LOCAL,
                    cx.grid((pairs / block) * 256, 256)?,
                )
            }
        };
        e.note_inlined(node);
        Ok(Lowered::Kernels(vec![e.finish(
            template,
            "bitonic",
            cx.out(),
            DType::F32,
            pairs * 2,
            groups,
        )?]))
    }
    fn reference(&self, node: &Tensor, x: &[Host]) -> Result<Host> {
        let mut data = x[0].data.clone();
        match *self {
            BitonicStep::Step { k, j, len } => compare_exchange(&mut data, k, j, len),
            BitonicStep::Local { k: 0, block, len } => {
                let mut k = 2;
                while k <= block {
                    let mut j = k / 2;
                    while j >= 1 {
                        compare_exchange(&mut data, k, j, len);
                        j /= 2;
                    }
                    k *= 2;
                }
            }
            BitonicStep::Local { k, block, len } => {
                let mut j = k / 2;
                while j >= 1 {
                    if j < block {
                        compare_exchange(&mut data, k, j, len);
                    }
                    j /= 2;
                }
            }
        }
        Ok(Host::new(node.shape(), node.dtype(), data))
    }
    // The only constructor (`bitonic_network`) stops the gradient of its input, so the network
    // always runs on constants: its tangent is zero and no cotangent reaches it.
    fn jvp(&self, _: &[Tensor], _: &Tensor, _: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        Ok(None)
    }
    fn vjp(&self, _: &[Tensor], _: &Tensor, _: &Tensor, _: &[bool]) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![None])
    }
    fn batch(&self, x: &[Tensor], _: &Tensor, _: &[bool], _: usize) -> Result<Tensor> {
        // Elementwise over the rows: a leading batch axis is more rows.
        step_p(self.clone(), &x[0])
    }
}

fn step_p(step: BitonicStep, x: &Tensor) -> Result<Tensor> {
    Tensor::from_op(
        Op::Sort(step),
        vec![x.clone()],
        x.shape().to_vec(),
        DType::F32,
    )
}

/// The bitonic network over `packed` (`(..., len, 2)` value/index pairs, `len` a power of
/// two): every row sorted by (value, index), NaN last. The input's gradient is stopped.
pub(crate) fn bitonic_network(packed: &Tensor, len: usize) -> Result<Tensor> {
    let cpu = crate::device::opened().is_none_or(|g| g.limits.cpu);
    let local = crate::base::policy::policy()
        .sort_in_workgroups
        .unwrap_or(!cpu);
    if !local {
        let mut packed = packed.stop_gradient();
        let mut k = 2;
        while k <= len {
            let mut j = k / 2;
            while j >= 1 {
                packed = step_p(BitonicStep::Step { k, j, len }, &packed)?;
                j /= 2;
            }
            k *= 2;
        }
        return Ok(packed);
    }
    let block = len.min(LOCAL_BLOCK);
    // Blocks sorted in workgroup memory, then each larger k: its long-range steps one launch
    // each, its steps within a block in one local launch.
    let mut packed = step_p(
        BitonicStep::Local { k: 0, block, len },
        &packed.stop_gradient(),
    )?;
    let mut k = 2 * block;
    while k <= len {
        let mut j = k / 2;
        while j >= block {
            packed = step_p(BitonicStep::Step { k, j, len }, &packed)?;
            j /= 2;
        }
        packed = step_p(BitonicStep::Local { k, block, len }, &packed)?;
        k *= 2;
    }
    Ok(packed)
}

/// Sort's total order on (value, index) pairs: values ascending, NaN last, ties by index.
fn sort_before(a: (f64, f64), b: (f64, f64)) -> bool {
    match (a.0.is_nan(), b.0.is_nan()) {
        (false, true) => true,
        (true, false) => false,
        _ if !a.0.is_nan() && a.0 != b.0 => a.0 < b.0,
        _ => a.1 < b.1,
    }
}

/// One step of the network on packed (value, index) pairs, as `shaders/bitonic_step.wgsl`.
fn compare_exchange(data: &mut [f64], k: usize, j: usize, len: usize) {
    let pairs = data.len() / 2;
    for p in 0..pairs {
        if p % (2 * j) >= j {
            continue;
        }
        let q = p + j;
        let (a, b) = (
            (data[2 * p], data[2 * p + 1]),
            (data[2 * q], data[2 * q + 1]),
        );
        let up = (p % len) & k == 0;
        if if up {
            sort_before(b, a)
        } else {
            sort_before(a, b)
        } {
            data.swap(2 * p, 2 * q);
            data.swap(2 * p + 1, 2 * q + 1);
        }
    }
}
