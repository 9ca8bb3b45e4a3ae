//! Composite operations, written on the public tensor API: their derivatives, batching rules
//! and kernels come from the primitives they are made of (and fusion makes them one kernel).

pub(crate) mod conv;
mod conveniences;
pub(crate) mod einsum;
pub(crate) mod fft;
pub(crate) mod indexing;
pub(crate) mod linalg;
pub(crate) mod reductions;
pub(crate) mod scatter;
pub(crate) mod shape;
pub(crate) mod sort;

use crate::base::dtype::DType;
use crate::base::error::{Result, or_panic, shape_err};
use crate::ir::tensor::Tensor;
use crate::prim::logic::{try_where, where_};
use crate::prim::reduce::Axes;

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
    /// Elementwise `max(x, 0)`, with derivative 0 at 0 and NaN kept NaN (as JAX).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert_eq!(Tensor::from_vec(vec![-1.0f32, 2.0], [2]).relu().to_vec::<f32>(), vec![0.0, 2.0]);
    /// assert!(Tensor::scalar(f32::NAN).relu().item().is_nan());
    /// ```
    pub fn relu(&self) -> Tensor {
        // As JAX: the value is maximum(x, 0) (NaN passes through), the derivative x > 0 (so 0
        // at 0). One comparison, shared by the forward and the backward pass.
        let zero = Tensor::scalar(0.0);
        let rest = self.maximum(&zero).stop_gradient();
        where_(&self.greater(&zero), self, &rest)
    }
    /// Elementwise `log(1 + e^x)` (`jax.nn.softplus`), stable for large |x|; its derivative
    /// is `sigmoid(x)` everywhere (0.5 at 0).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert!((Tensor::scalar(0.0).softplus().item() - 2f32.ln()).abs() < 1e-6);
    /// assert_eq!(Tensor::scalar(100.0).softplus().item(), 100.0);
    /// assert_eq!(grad(|x: &Tensor| x.softplus())(&Tensor::scalar(0.0)).item(), 0.5);
    /// ```
    pub fn softplus(&self) -> Tensor {
        // log1p(e^x) below 20, x above (where they agree to f32); the second `where` keeps
        // e^x finite in the branch not taken, so its derivative stays finite too.
        let big = self.greater(&Tensor::scalar(20.0));
        let safe = where_(&big, &self.zeros_like(), self);
        where_(&big, self, &safe.exp().log1p())
    }
    /// Elementwise `1 / sqrt(x)`.
    ///
    /// ```
    /// assert_eq!(wgrad::Tensor::scalar(4.0).rsqrt().item(), 0.5);
    /// ```
    pub fn rsqrt(&self) -> Tensor {
        self.sqrt().reciprocal()
    }
    /// Elementwise `x · sigmoid(x)` (`jax.nn.silu`, also called swish).
    ///
    /// ```
    /// assert_eq!(wgrad::Tensor::scalar(0.0).silu().item(), 0.0);
    /// ```
    pub fn silu(&self) -> Tensor {
        self * self.sigmoid()
    }
    /// The exact GELU, `x/2 · erfc(-x/√2)` = `x/2 · (1 + erf(x/√2))`
    /// (`jax.nn.gelu(x, approximate=False)`, PyTorch's default), accurate in the negative
    /// tail. JAX's default is the tanh form, [`Tensor::gelu_tanh`].
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert!((Tensor::scalar(1.0).gelu().item() - 0.841_344_7).abs() < 1e-6);
    /// assert!((Tensor::scalar(-6.0).gelu().item() / -5.919_526e-9 - 1.0).abs() < 1e-5);
    /// ```
    pub fn gelu(&self) -> Tensor {
        self * 0.5 * (self * -std::f32::consts::FRAC_1_SQRT_2).erfc()
    }
    /// GELU in its tanh form, `x/2 · (1 + tanh(√(2/π) (x + 0.044715 x³)))`
    /// (`jax.nn.gelu(x, approximate=True)`).
    ///
    /// ```
    /// assert!((wgrad::Tensor::scalar(1.0).gelu_tanh().item() - 0.841_192).abs() < 1e-5);
    /// ```
    pub fn gelu_tanh(&self) -> Tensor {
        let c = (2.0 / std::f64::consts::PI).sqrt() as f32;
        let inner = (self + self * self.square() * 0.044715) * c;
        self * 0.5 * (inner.tanh() + 1.0)
    }
    /// `jnp.clip(x, min, max)`: `min(max(x, min), max)`; the derivative is 1 strictly inside
    /// and 0 outside.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::from_vec(vec![-2.0f32, 0.5, 3.0], [3]);
    /// assert_eq!(x.clip(-1.0, 1.0).to_vec::<f32>(), vec![-1.0, 0.5, 1.0]);
    /// ```
    #[track_caller]
    pub fn clip(&self, min: f32, max: f32) -> Tensor {
        or_panic(self.try_clip(min, max))
    }
    /// Fallible [`Tensor::clip`]: `min` must not exceed `max`.
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([2]).try_clip(1.0, -1.0).is_err());
    /// ```
    pub fn try_clip(&self, min: f32, max: f32) -> Result<Tensor> {
        if min > max {
            return shape_err(
                "clip",
                format!("min {min} exceeds max {max} (shape {:?})", self.shape()),
            );
        }
        self.try_maximum(Tensor::scalar(min))?
            .try_minimum(Tensor::scalar(max))
    }
    #[allow(deprecated)]
    #[deprecated(note = "use `var_all()`, `var_axes(axes)` or `var_keepdim(axes)`")]
    /// Variance over `axes` (`None`: all), the population version (`ddof = 0`, as
    /// `jnp.var`).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert_eq!(Tensor::from_vec(vec![1.0f32, 3.0], [2]).var_all().item(), 1.0);
    /// ```
    #[track_caller]
    pub fn var(&self, axes: impl Into<Axes>, keepdims: bool) -> Tensor {
        or_panic(self.try_var(axes, keepdims))
    }
    #[allow(deprecated)]
    #[deprecated(note = "use `try_var_all()`, `try_var_axes(axes)` or `try_var_keepdim(axes)`")]
    /// Fallible [`Tensor::var`].
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([2]).try_var_axes(1).is_err());
    /// ```
    pub fn try_var(&self, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
        let axes = axes.into();
        let centered = self - self.try_mean_keepdim(axes.clone())?;
        centered.square().try_mean(axes, keepdims)
    }
    #[allow(deprecated)]
    #[deprecated(note = "use `std_all()`, `std_axes(axes)` or `std_keepdim(axes)`")]
    /// Standard deviation over `axes` (`None`: all), population version (`ddof = 0`).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert_eq!(Tensor::from_vec(vec![1.0f32, 3.0], [2]).std_all().item(), 1.0);
    /// ```
    #[track_caller]
    pub fn std(&self, axes: impl Into<Axes>, keepdims: bool) -> Tensor {
        or_panic(self.try_std(axes, keepdims))
    }
    #[allow(deprecated)]
    #[deprecated(note = "use `try_std_all()`, `try_std_axes(axes)` or `try_std_keepdim(axes)`")]
    /// Fallible [`Tensor::std`].
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([2]).try_std_axes(-2).is_err());
    /// ```
    pub fn try_std(&self, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
        Ok(self.try_var(axes, keepdims)?.sqrt())
    }
    /// The lower triangle of the last two axes: entries `(i, j)` with `j <= i + k` are kept,
    /// the rest zeroed (`jnp.tril`).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let m = Tensor::ones([2, 2]).tril(0);
    /// assert_eq!(m.to_vec::<f32>(), vec![1.0, 0.0, 1.0, 1.0]);
    /// ```
    #[track_caller]
    pub fn tril(&self, k: isize) -> Tensor {
        or_panic(self.try_tril(k))
    }
    /// Fallible [`Tensor::tril`]: needs rank >= 2.
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([2]).try_tril(0).is_err());
    /// ```
    pub fn try_tril(&self, k: isize) -> Result<Tensor> {
        self.triangle("tril", k, true)
    }
    /// The upper triangle of the last two axes: entries `(i, j)` with `j >= i + k` are kept,
    /// the rest zeroed (`jnp.triu`).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let m = Tensor::ones([2, 3]).triu(1);
    /// assert_eq!(m.to_vec::<f32>(), vec![0.0, 1.0, 1.0, 0.0, 0.0, 1.0]);
    /// ```
    #[track_caller]
    pub fn triu(&self, k: isize) -> Tensor {
        or_panic(self.try_triu(k))
    }
    /// Fallible [`Tensor::triu`]: needs rank >= 2.
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([3]).try_triu(0).is_err());
    /// ```
    pub fn try_triu(&self, k: isize) -> Result<Tensor> {
        self.triangle("triu", k, false)
    }
    fn triangle(&self, op: &'static str, k: isize, lower: bool) -> Result<Tensor> {
        let r = self.rank();
        if r < 2 {
            return shape_err(op, format!("needs rank >= 2, got shape {:?}", self.shape()));
        }
        let rc = [self.shape()[r - 2], self.shape()[r - 1]];
        let i = Tensor::iota(rc, 0, DType::I32)? + Tensor::try_full([], k as f64, DType::I32)?;
        let j = Tensor::iota(rc, 1, DType::I32)?;
        // Keep j <= i + k (lower) or j >= i + k (upper).
        let drop = if lower { j.greater(&i) } else { j.less(&i) };
        try_where(&drop, &self.zeros_like(), self)
    }
    #[allow(deprecated)]
    #[deprecated(note = "use `mean_all()`, `mean_axes(axes)` or `mean_keepdim(axes)`")]
    /// Mean over `axes` (`None`: all).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert_eq!(Tensor::from_vec(vec![1.0f32, 3.0], [2]).mean_all().item(), 2.0);
    /// ```
    #[track_caller]
    pub fn mean(&self, axes: impl Into<Axes>, keepdims: bool) -> Tensor {
        or_panic(self.try_mean(axes, keepdims))
    }
    #[allow(deprecated)]
    #[deprecated(note = "use `try_mean_all()`, `try_mean_axes(axes)` or `try_mean_keepdim(axes)`")]
    /// Fallible [`Tensor::mean`].
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([2]).try_mean_axes(1).is_err());
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
        // The shift is the max where it is finite, else 0 (as JAX): all −inf gives
        // log(0) = −inf, not −inf − −inf = NaN; a +inf or a NaN passes through the sum.
        let m = self.try_max_keepdim(axis)?.stop_gradient();
        let finite = m.abs().less(&Tensor::scalar(f32::INFINITY));
        let m = try_where(&finite, &m, &m.zeros_like())?;
        let s = (self - &m).exp().try_sum_keepdim(axis)?.log() + m;
        s.try_sum_axes(axis) // drops the size-1 axis
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
        let m = self.try_max_keepdim(axis)?.stop_gradient();
        let shifted = self - &m;
        let lse = shifted.exp().try_sum_keepdim(axis)?.log();
        Ok(shifted - lse)
    }
}
