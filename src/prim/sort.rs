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
use crate::ir::op::{Fusion, Op};
use crate::ir::tensor::Tensor;
use crate::prim::Primitive;
use crate::prim::lower::{LowerCx, Lowered};

/// One compare-exchange step of the bitonic network over rows of `len` pairs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BitonicStep {
    /// The size of the blocks sorted in alternating directions.
    pub k: usize,
    /// The distance to the partner.
    pub j: usize,
    /// The row length (a power of two).
    pub len: usize,
}

impl BitonicStep {
    fn body(&self, x: &str) -> String {
        let (k, j, l) = (self.k, self.j, self.len);
        format!(
            "    let c = i % 2u;\n    let e = i / 2u;\n    let pos = e % {l}u;\n    \
             let row = e - pos;\n    let q = pos ^ {j}u;\n    \
             let av = {x}((row + pos) * 2u);\n    let ai = {x}((row + pos) * 2u + 1u);\n    \
             let bv = {x}((row + q) * 2u);\n    let bi = {x}((row + q) * 2u + 1u);\n    \
             let an = wg_isnan(av);\n    let bn = wg_isnan(bv);\n    \
             var lt = ai < bi;\n    \
             if (!an && !bn && av != bv) {{\n        lt = av < bv;\n    }}\n    \
             if (an != bn) {{\n        lt = bn;\n    }}\n    \
             let up = (pos & {k}u) == 0u;\n    let keep = lt == ((pos < q) == up);\n    \
             return {x}((row + select(q, pos, keep)) * 2u + c);"
        )
    }
}

impl Primitive for BitonicStep {
    fn name(&self) -> &'static str {
        "bitonic_step"
    }
    fn fusion(&self) -> Fusion {
        // Each step reads its input four times: fused into the next step, the network would
        // recompute itself exponentially.
        Fusion::KernelRoot { epilogue: false }
    }
    fn lower(&self, node: &Tensor, cx: &mut LowerCx) -> Result<Lowered> {
        Ok(Lowered::Kernels(vec![
            cx.pointwise_kernel(node, |a, _| self.body(&a[0]))?,
        ]))
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
    let mut packed = packed.stop_gradient();
    let mut k = 2;
    while k <= len {
        let mut j = k / 2;
        while j >= 1 {
            packed = step_p(BitonicStep { k, j, len }, &packed)?;
            j /= 2;
        }
        k *= 2;
    }
    Ok(packed)
}
