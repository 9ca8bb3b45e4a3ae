//! The transforms: graph → graph. `jvp` pushes tangents forward, `vjp` pulls cotangents back,
//! `vmap` rebuilds a graph with a batch axis; grad, Jacobians and Hessians are compositions.

pub(crate) mod api;
pub(crate) mod check;
pub(crate) mod jac;
pub(crate) mod jit;
pub(crate) mod jvp;
pub mod positional;
pub(crate) mod vectorize;
pub(crate) mod vjp;
pub(crate) mod vmap;

use crate::base::error::{Error, Result};
use crate::ir::tensor::Tensor;
use std::cell::RefCell;

/// Lets a fallible function of tensors run where the transforms take an infallible one (a
/// rule's pullback under `vmap`, a custom rule traced by `vjp`): the first error it returns
/// is kept (the function then returns no outputs), and [`Caught::check`] hands that error
/// back in place of whatever the transform made of the empty outputs.
#[derive(Default)]
pub(crate) struct Caught(RefCell<Option<Error>>);

impl Caught {
    /// `f` as an infallible function whose first error is kept here.
    pub(crate) fn wrap<'a>(
        &'a self,
        f: impl Fn(&[Tensor]) -> Result<Vec<Tensor>> + 'a,
    ) -> impl Fn(&[Tensor]) -> Vec<Tensor> + 'a {
        move |a: &[Tensor]| match f(a) {
            Ok(v) => v,
            Err(e) => {
                self.0.borrow_mut().get_or_insert(e);
                vec![]
            }
        }
    }
    /// The kept error if there is one, else `r`.
    pub(crate) fn check<T>(&self, r: Result<T>) -> Result<T> {
        match self.0.borrow_mut().take() {
            Some(e) => Err(e),
            None => r,
        }
    }
}
