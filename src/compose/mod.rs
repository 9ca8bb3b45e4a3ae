//! Composite operations, written on the public tensor API: their derivatives, batching rules
//! and kernels come from the primitives they are made of (and fusion makes them one kernel).

use crate::error::{Result, or_panic};
use crate::prim::reduce::Axes;
use crate::tensor::Tensor;

/// `where(cond, a, b)`: elements of `a` where `cond` holds, else of `b` (broadcasting all three).
///
/// ```
/// use wgrad::prelude::*;
/// let x = Tensor::from_vec(vec![-1.0f32, 2.0], [2]);
/// let y = where_(&x.greater(&Tensor::scalar(0.0)), &x, &Tensor::scalar(0.0));
/// assert_eq!(y.to_vec::<f32>(), vec![0.0, 2.0]);
/// ```
#[track_caller]
pub fn where_(cond: &Tensor, a: &Tensor, b: &Tensor) -> Tensor {
    or_panic(try_where(cond, a, b))
}

/// Fallible [`where_`]: the condition must be bool and the shapes must broadcast.
///
/// ```
/// use wgrad::prelude::*;
/// assert!(try_where(&Tensor::zeros([2]), &Tensor::zeros([2]), &Tensor::zeros([2])).is_err());
/// ```
pub fn try_where(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    crate::prim::logic::select(cond, a, b)
}

impl Tensor {
    /// Elementwise `x²`.
    ///
    /// ```
    /// assert_eq!(wgrad::Tensor::scalar(3.0).square().item(), 9.0);
    /// ```
    pub fn square(&self) -> Tensor {
        self * self
    }
    /// Elementwise `1 / x`.
    ///
    /// ```
    /// assert_eq!(wgrad::Tensor::scalar(4.0).reciprocal().item(), 0.25);
    /// ```
    pub fn reciprocal(&self) -> Tensor {
        1.0 / self
    }
    /// Elementwise `max(x, 0)`, with derivative 0 at 0 (as JAX).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert_eq!(Tensor::from_vec(vec![-1.0f32, 2.0], [2]).relu().to_vec::<f32>(), vec![0.0, 2.0]);
    /// ```
    pub fn relu(&self) -> Tensor {
        let zero = Tensor::scalar(0.0);
        where_(&self.greater(&zero), self, &zero)
    }
    /// Elementwise `log(1 + e^x)`, stable for large |x|.
    ///
    /// ```
    /// assert!((wgrad::Tensor::scalar(0.0).softplus().item() - 2f32.ln()).abs() < 1e-6);
    /// ```
    pub fn softplus(&self) -> Tensor {
        self.relu() + (-self.abs()).exp().add(&Tensor::scalar(1.0)).log()
    }
    /// Mean over `axes` (`None`: all).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert_eq!(Tensor::from_vec(vec![1.0f32, 3.0], [2]).mean(None, false).item(), 2.0);
    /// ```
    #[track_caller]
    pub fn mean(&self, axes: impl Into<Axes>, keepdims: bool) -> Tensor {
        or_panic(self.try_mean(axes, keepdims))
    }
    /// Fallible [`Tensor::mean`].
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([2]).try_mean(1, false).is_err());
    /// ```
    pub fn try_mean(&self, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
        let axes = axes.into();
        let resolved = axes.resolve("mean", self.shape())?;
        let count: usize = resolved.iter().map(|&a| self.shape()[a]).product();
        Ok(self.try_sum(axes, keepdims)? / count as f32)
    }
    /// `log(sum(exp(x)))` along `axis`, computed stably (the max is subtracted first); the axis
    /// is dropped, as in JAX.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::from_vec(vec![1000.0f32, 1000.0], [2]);
    /// assert!((x.logsumexp(0).item() - (1000.0 + 2f32.ln())).abs() < 1e-3);
    /// ```
    #[track_caller]
    pub fn logsumexp(&self, axis: isize) -> Tensor {
        or_panic(self.try_logsumexp(axis))
    }
    /// Fallible [`Tensor::logsumexp`].
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([2]).try_logsumexp(2).is_err());
    /// ```
    pub fn try_logsumexp(&self, axis: isize) -> Result<Tensor> {
        let m = self.try_max(axis, true)?.stop_gradient();
        let s = (self - &m).exp().try_sum(axis, true)?.log() + m;
        s.try_sum(axis, false) // drops the size-1 axis
    }
    /// Softmax along `axis` (stable).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let p = Tensor::from_vec(vec![1.0f32, 1.0], [2]).softmax(-1);
    /// assert_eq!(p.to_vec::<f32>(), vec![0.5, 0.5]);
    /// ```
    #[track_caller]
    pub fn softmax(&self, axis: isize) -> Tensor {
        or_panic(self.try_softmax(axis))
    }
    /// Fallible [`Tensor::softmax`].
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([2]).try_softmax(1).is_err());
    /// ```
    pub fn try_softmax(&self, axis: isize) -> Result<Tensor> {
        self.try_log_softmax(axis).map(|l| l.exp())
    }
    /// `x - logsumexp(x)` along `axis` (stable).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let l = Tensor::from_vec(vec![0.0f32, 0.0], [2]).log_softmax(0);
    /// assert!((l.to_vec::<f32>()[0] + 2f32.ln()).abs() < 1e-6);
    /// ```
    #[track_caller]
    pub fn log_softmax(&self, axis: isize) -> Tensor {
        or_panic(self.try_log_softmax(axis))
    }
    /// Fallible [`Tensor::log_softmax`].
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([2]).try_log_softmax(-2).is_err());
    /// ```
    pub fn try_log_softmax(&self, axis: isize) -> Result<Tensor> {
        let m = self.try_max(axis, true)?.stop_gradient();
        let shifted = self - &m;
        let lse = shifted.exp().try_sum(axis, true)?.log();
        Ok(shifted - lse)
    }
}
