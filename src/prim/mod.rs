//! The primitives. One file per family: shape rule, kernel code generation, JVP, VJP and
//! batching rule side by side. [`Op`] names every primitive; the exhaustive `match`es below
//! make a family that lacks a rule a compile error.

pub(crate) mod binary;
pub(crate) mod identity;
pub(crate) mod logic;
pub(crate) mod matmul;
pub(crate) mod movement;
pub(crate) mod reduce;
pub(crate) mod source;
pub(crate) mod unary;

use crate::runtime::codegen::Emitter;
use crate::tensor::Tensor;

/// What a family of primitives must provide. Rules are written with tensor operations, so the
/// derivatives they build are lazy graph nodes that can be differentiated and batched again.
pub(crate) trait Primitive {
    /// The op's name in messages and printouts.
    fn name(&self) -> &'static str;
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
    /// carries one too.
    fn batch(&self, inputs: &[Tensor], out: &Tensor, batched: &[bool], size: usize) -> Tensor;
    /// The WGSL body of `fn vN(i: u32) -> T` that computes the node at flat index `i`, given the
    /// functions that compute its inputs. Kernel-root families (reductions, matmul) emit whole
    /// kernels elsewhere and never reach this.
    fn emit(&self, node: &Tensor, args: &[String], e: &mut Emitter) -> String;
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
        }
    }
    pub(crate) fn name(&self) -> &'static str {
        self.prim().name()
    }
    /// Ops that always get a kernel of their own (their consumers read their buffer).
    pub(crate) fn is_kernel_root(&self) -> bool {
        matches!(self, Op::Reduce(_) | Op::Matmul(_))
    }
    /// Ops that only remap indices (cheap to recompute inside any consumer).
    pub(crate) fn is_index_map(&self) -> bool {
        matches!(self, Op::Movement(m) if !matches!(m, movement::Movement::Concat(_)))
            || matches!(self, Op::Identity(_))
    }
    /// A short description with the op's parameters, for the graph printout.
    pub(crate) fn describe(&self) -> String {
        match self {
            Op::Source(s) => s.describe(),
            Op::Reduce(r) => format!("{}[axes={:?}]", r.name(), r.axes),
            Op::Movement(m) => m.describe(),
            Op::Logic(l) => l.describe(),
            other => other.name().to_string(),
        }
    }
}
