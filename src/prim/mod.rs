//! The primitives. One file per family: shape rule, kernel code generation, JVP, VJP and
//! batching rule side by side. [`Op`] names every primitive; the exhaustive `match`es below
//! make a family that lacks a rule a compile error.

pub(crate) mod binary;
pub(crate) mod eigh;
pub(crate) mod emit;
pub(crate) mod identity;
pub(crate) mod index;
pub(crate) mod linalg;
pub(crate) mod logic;
pub(crate) mod lower;
pub(crate) mod matmul;
pub(crate) mod movement;
pub(crate) mod reduce;
pub(crate) mod scan;
pub(crate) mod sort;
pub(crate) mod source;
pub(crate) mod unary;
pub(crate) mod window;

use crate::base::error::Result;
use crate::base::host::Host;
use crate::ir::op::Fusion;
use crate::ir::tensor::Tensor;
use lower::{LowerCx, Lowered};

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
    /// Forward mode: the output tangent from the input tangents (`Ok(None)` = zero). An error
    /// (a tangent too large for the device, a rule that refuses) comes back from `try_jvp`.
    fn jvp(
        &self,
        inputs: &[Tensor],
        out: &Tensor,
        tangents: &[Option<Tensor>],
    ) -> Result<Option<Tensor>>;
    /// Reverse mode: one cotangent per input (`None` = zero or not needed). An error comes back
    /// from the pullback.
    fn vjp(
        &self,
        inputs: &[Tensor],
        out: &Tensor,
        ct: &Tensor,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>>;
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
    /// The reference interpreter's value of the node (`crate::reference`): computed on the
    /// host in float64 with plain loops from its inputs' values, independently of the WGSL.
    fn reference(&self, node: &Tensor, inputs: &[Host]) -> Result<Host>;
}

/// For batching rules: `x` with a leading batch axis of `size`: itself when batched, else broadcast.
pub(crate) fn with_batch(x: &Tensor, batched: bool, size: usize) -> Result<Tensor> {
    if batched {
        return Ok(x.clone());
    }
    let mut shape = vec![size];
    shape.extend_from_slice(x.shape());
    x.try_broadcast_to(shape)
}
