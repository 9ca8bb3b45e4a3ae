//! The primitives. One file per family: shape rule, kernel code generation, JVP, VJP and
//! batching rule side by side. [`Op`] names every primitive; the exhaustive `match`es below
//! make a family that lacks a rule a compile error.

pub(crate) mod binary;
pub(crate) mod custom;
pub(crate) mod identity;
pub(crate) mod index;
pub(crate) mod logic;
pub(crate) mod loops;
pub(crate) mod matmul;
pub(crate) mod movement;
pub(crate) mod reduce;
pub(crate) mod scan;
pub(crate) mod source;
pub(crate) mod unary;
pub(crate) mod window;

use crate::error::Result;
use crate::runtime::codegen::{LowerCx, Lowered};
use crate::tensor::Tensor;

/// How a primitive takes part in fusion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fusion {
    /// Computed per element inside whichever kernel reads it (elementwise ops, sources).
    Inline,
    /// Only remaps indices (transposes, slices, broadcasts): recomputed in every consumer,
    /// since that costs no more than reading a buffer.
    IndexMap,
    /// The operand's values unchanged, in the same order (alias, stop_gradient, reshape): a
    /// target shares its operand's buffer, no kernel runs.
    View,
    /// Always gets kernels of its own (reductions, matmul, scans); consumers read its buffer,
    /// and its elementwise producers are fused into its loads. With `epilogue`, its lowering
    /// can also compute an elementwise consumer of it in its store (see `LowerCx::epilogue`),
    /// when the planner finds the root's value needed nowhere else.
    KernelRoot { epilogue: bool },
}

/// What every primitive must provide: how it fuses, how it lowers to WGSL, and its JVP, VJP
/// and batching rules. No method has a default, so a primitive that lacks one does not
/// compile. Rules are written with tensor operations, so the derivatives they build are lazy
/// graph nodes that can be differentiated and batched again.
pub(crate) trait Primitive {
    /// The op's name in messages and printouts.
    fn name(&self) -> &'static str;
    /// How the scheduler may fuse the op.
    fn fusion(&self) -> Fusion;
    /// The op in WGSL: for [`Fusion::KernelRoot`] the kernels that write its buffer
    /// ([`Lowered::Kernels`]); for the others the body of `fn vN(i: u32) -> T` computing the
    /// node at flat index `i` from its inputs' functions ([`Lowered::Body`]).
    fn lower(&self, node: &Tensor, cx: &mut LowerCx) -> Result<Lowered>;
    /// Forward mode: the output tangent from the input tangents (`None` = zero).
    fn jvp(&self, inputs: &[Tensor], out: &Tensor, tangents: &[Option<Tensor>]) -> Option<Tensor>;
    /// Reverse mode: one cotangent per input (`None` = zero or not needed).
    fn vjp(
        &self,
        inputs: &[Tensor],
        out: &Tensor,
        ct: &Tensor,
        needs: &[bool],
    ) -> Vec<Option<Tensor>>;
    /// vmap: `inputs[i]` carries a leading batch axis of `size` when `batched[i]`; the result
    /// carries one too. An error (a batched tensor too large for the device, say) comes back
    /// from `try_vmap` as an error.
    fn batch(
        &self,
        inputs: &[Tensor],
        out: &Tensor,
        batched: &[bool],
        size: usize,
    ) -> Result<Tensor>;
}

/// Every primitive.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Op {
    Source(source::Source),
    Unary(unary::UnaryOp),
    Binary(binary::BinaryOp),
    Logic(logic::Logic),
    Reduce(reduce::Reduce),
    Movement(movement::Movement),
    Matmul(matmul::Matmul),
    Identity(identity::Identity),
    Index(index::Index),
    Cumsum(scan::Cumsum),
    Patches(window::Patches),
    Custom(custom::Custom),
    Loop(loops::Loop),
}

impl Op {
    pub(crate) fn prim(&self) -> &dyn Primitive {
        match self {
            Op::Source(p) => p,
            Op::Unary(p) => p,
            Op::Binary(p) => p,
            Op::Logic(p) => p,
            Op::Reduce(p) => p,
            Op::Movement(p) => p,
            Op::Matmul(p) => p,
            Op::Identity(p) => p,
            Op::Index(p) => p,
            Op::Cumsum(p) => p,
            Op::Patches(p) => p,
            Op::Custom(p) => p,
            Op::Loop(p) => p,
        }
    }
    pub(crate) fn name(&self) -> &'static str {
        self.prim().name()
    }
    pub(crate) fn fusion(&self) -> Fusion {
        self.prim().fusion()
    }
    /// Appends what a cached plan depends on: the op and every parameter, except the run-time
    /// values that lowering passes as data (a constant's value, a random key), which
    /// [`Op::value_word`] reads for each new graph.
    pub(crate) fn write_structure(&self, out: &mut String) {
        use std::fmt::Write;
        match self {
            Op::Source(source::Source::Full(_)) => out.push_str("full"),
            Op::Source(source::Source::Uniform(_)) => out.push_str("uniform"),
            op => {
                let _ = write!(out, "{op:?}");
            }
        }
    }
    /// Word `word` of the run-time value a node of this op passes to its kernel (see
    /// `LowerCx::value_param`), for a node of `dtype`.
    pub(crate) fn value_word(&self, dtype: crate::dtype::DType, word: u8) -> Option<u32> {
        match (self, word) {
            (Op::Source(source::Source::Full(v)), 0) => {
                Some(crate::runtime::codegen::scalar_bits(*v, dtype))
            }
            (Op::Source(source::Source::Uniform(seed)), 0) => Some((*seed >> 32) as u32),
            (Op::Source(source::Source::Uniform(seed)), 1) => Some(*seed as u32),
            _ => None,
        }
    }
    /// Whether `node` (of this op) holds the first elements of `other`'s value, computed from
    /// the same inputs: a loop whose results another loop also computes, with more after
    /// them (the loop a VJP runs to save each step's carry). The scheduler then computes
    /// only `other` and lets `node` share its buffer.
    pub(crate) fn prefix_of(&self, node: &Tensor, other: &Tensor) -> bool {
        match (self, other.op()) {
            (Op::Loop(a), Op::Loop(b)) => {
                a.prefix_of(b) && node.dtype() == other.dtype() && {
                    let (x, y) = (node.inputs(), other.inputs());
                    // Through aliases and other views that keep the shape (same values).
                    let base = |t: &Tensor| {
                        let mut cur = t.clone();
                        while cur.op().fusion() == Fusion::View && !cur.has_value() {
                            match cur.inputs().first() {
                                Some(x) if x.shape() == cur.shape() => cur = x.clone(),
                                _ => break,
                            }
                        }
                        cur
                    };
                    x.len() == y.len() && x.iter().zip(&y).all(|(p, q)| base(p).same(&base(q)))
                }
            }
            _ => false,
        }
    }
    /// A short description with the op's parameters, for the graph printout.
    pub(crate) fn describe(&self) -> String {
        match self {
            Op::Source(s) => s.describe(),
            Op::Reduce(r) => format!("{}[axes={:?}]", r.name(), r.axes),
            Op::Movement(m) => m.describe(),
            Op::Logic(l) => l.describe(),
            Op::Index(i) => i.describe(),
            Op::Patches(p) => p.describe(),
            Op::Loop(l) => l.describe(),
            other => other.name().to_string(),
        }
    }
}
