//! Identity-valued primitives: `alias` (a fresh node for a transform's argument) and
//! `stop_gradient` (blocks derivatives, passes vmap through). Both are free: they compute
//! nothing and share their operand's buffer.

use crate::base::error::{Result, or_panic};
use crate::base::host::Host;
use crate::ir::op::{Fusion, Op};
use crate::ir::tensor::Tensor;
use crate::prim::Primitive;
use crate::prim::lower::{LowerCx, Lowered};

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Identity {
    Alias,
    StopGradient,
}

impl Primitive for Identity {
    fn name(&self) -> &'static str {
        match self {
            Identity::Alias => "alias",
            Identity::StopGradient => "stop_gradient",
        }
    }
    fn jvp(&self, _: &[Tensor], _: &Tensor, t: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        Ok(match self {
            Identity::Alias => t[0].clone(),
            Identity::StopGradient => None,
        })
    }
    fn vjp(
        &self,
        _: &[Tensor],
        _: &Tensor,
        ct: &Tensor,
        _: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        Ok(match self {
            Identity::Alias => vec![Some(ct.clone())],
            Identity::StopGradient => vec![None],
        })
    }
    fn batch(&self, x: &[Tensor], _: &Tensor, _: &[bool], _: usize) -> Result<Tensor> {
        Ok(identity(self.clone(), &x[0]))
    }
    fn fusion(&self) -> Fusion {
        Fusion::View
    }
    fn lower(&self, _: &Tensor, cx: &mut LowerCx) -> Result<Lowered> {
        Ok(Lowered::Body(format!("    return {}(i);", cx.arg(0))))
    }
    fn reference(&self, _: &Tensor, x: &[Host]) -> Result<Host> {
        Ok(x[0].clone())
    }
}

pub(crate) fn identity(kind: Identity, x: &Tensor) -> Tensor {
    or_panic(Tensor::from_op(
        Op::Identity(kind),
        vec![x.clone()],
        x.shape().to_vec(),
        x.dtype(),
    ))
}

impl Tensor {
    /// The same values, with no derivative flowing through (as `jax.lax.stop_gradient`).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let g = grad(|x: &Tensor| (x * x.stop_gradient()).sum_all())(&Tensor::from_vec(vec![3.0f32], [1]));
    /// assert_eq!(g.to_vec::<f32>(), vec![3.0]);
    /// ```
    pub fn stop_gradient(&self) -> Tensor {
        identity(Identity::StopGradient, self)
    }
    /// A fresh node with the same value: what a transform differentiates with respect to.
    pub(crate) fn alias(&self) -> Tensor {
        identity(Identity::Alias, self)
    }
}
