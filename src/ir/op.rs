//! The op of a graph node: [`Op`] names every primitive (its variants hold each family's
//! parameters, defined beside the family's rules in `prim`), and [`Fusion`] says how it takes
//! part in fusion. The exhaustive `match` in [`Op::prim`] makes a family that lacks its rules
//! a compile error.

use crate::ir::tensor::Tensor;
use crate::prim::Primitive;

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

/// Every primitive.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Op {
    Source(crate::prim::source::Source),
    Unary(crate::prim::unary::UnaryOp),
    Binary(crate::prim::binary::BinaryOp),
    Logic(crate::prim::logic::Logic),
    Reduce(crate::prim::reduce::Reduce),
    Movement(crate::prim::movement::Movement),
    Matmul(crate::prim::matmul::Matmul),
    Identity(crate::prim::identity::Identity),
    Index(crate::prim::index::Index),
    Scan(crate::prim::scan::Scan),
    Linalg(crate::prim::linalg::Linalg),
    Eigh(crate::prim::eigh::Eigh),
    Sort(crate::prim::sort::BitonicStep),
    Patches(crate::prim::window::Patches),
    Custom(crate::ir::control::Custom),
    Loop(crate::ir::control::Loop),
    While(crate::ir::control::While),
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
            Op::Scan(p) => p,
            Op::Linalg(p) => p,
            Op::Eigh(p) => p,
            Op::Sort(p) => p,
            Op::Patches(p) => p,
            Op::Custom(p) => p,
            Op::Loop(p) => p,
            Op::While(p) => p,
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
            Op::Source(crate::prim::source::Source::Full(_)) => out.push_str("full"),
            Op::Source(crate::prim::source::Source::Uniform(_)) => out.push_str("uniform"),
            op => {
                let _ = write!(out, "{op:?}");
            }
        }
    }
    /// Word `word` of the run-time value a node of this op passes to its kernel (see
    /// `LowerCx::value_param`), for a node of `dtype`.
    pub(crate) fn value_word(&self, dtype: crate::base::dtype::DType, word: u8) -> Option<u32> {
        match (self, word) {
            (Op::Source(crate::prim::source::Source::Full(v)), 0) => {
                Some(crate::kernel::wgsl::scalar_bits(*v, dtype))
            }
            (Op::Source(crate::prim::source::Source::Uniform(seed)), 0) => {
                Some((*seed >> 32) as u32)
            }
            (Op::Source(crate::prim::source::Source::Uniform(seed)), 1) => Some(*seed as u32),
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
