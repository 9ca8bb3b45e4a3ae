//! The names NumPy, JAX and Rust users reach for first, on the tensor API: `clamp` (Rust's name
//! of `clip`), `powf` and `powi` (as on `f32`), `linspace`, `dot` and `norm` (as `jnp`), and
//! arithmetic with integer literals (`x / 2`, `2 * x`: weakly typed, as Python integers in JAX).
//!
//! ```
//! use wgrad::prelude::*;
//! let x = Tensor::from_vec(vec![1.0f32, 3.0], [2]);
//! assert_eq!((2 * &x - 1).to_vec::<f32>(), vec![1.0, 5.0]);
//! let i = Tensor::from_slice(&[3i32, 4], [2]);
//! assert_eq!((&i * 2).dtype(), DType::I32);
//! assert_eq!((&i / 2).to_vec::<f32>(), vec![1.5, 2.0]); // true division, as JAX's `/`
//! ```

use crate::base::error::{Result, or_panic, shape_err};
use crate::ir::tensor::Tensor;
use crate::prim::binary::Operand;
use crate::prim::reduce::Axes;

impl Tensor {
    /// Each element limited to `[min, max]`, as `f32::clamp` (the same as [`Tensor::clip`],
    /// `jnp.clip`); the derivative is 1 strictly inside and 0 outside. An inherent method, so
    /// `x.clamp(0.0, 1.0)` never resolves to `Ord::clamp`.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::from_vec(vec![-2.0f32, 0.5, 3.0], [3]);
    /// assert_eq!(x.clamp(0.0, 1.0).to_vec::<f32>(), vec![0.0, 0.5, 1.0]);
    /// ```
    #[track_caller]
    pub fn clamp(&self, min: f32, max: f32) -> Tensor {
        or_panic(self.try_clamp(min, max))
    }
    /// Fallible [`Tensor::clamp`]: `min` must not exceed `max`.
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([2]).try_clamp(1.0, 0.0).is_err());
    /// ```
    pub fn try_clamp(&self, min: f32, max: f32) -> Result<Tensor> {
        self.try_clip(min, max)
    }

    /// Elementwise `xᵖ` for a float exponent, as `f32::powf` (`jnp.power(x, p)`): NaN for a
    /// negative base and a non-integer `p`.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::from_vec(vec![4.0f32, 9.0], [2]);
    /// assert_eq!(x.powf(0.5).to_vec::<f32>(), vec![2.0, 3.0]);
    /// ```
    #[track_caller]
    pub fn powf(&self, p: f32) -> Tensor {
        self.pow(Tensor::scalar(p))
    }

    /// Elementwise `xⁿ` for an integer exponent, as `f32::powi` and JAX's `integer_pow`: by
    /// repeated multiplication (squaring), so small powers are exact and negative bases keep
    /// their sign for odd `n`; `x⁻ⁿ = 1/xⁿ`, and `x⁰ = 1` (also for NaN and infinities). The
    /// derivative is `n·xⁿ⁻¹`.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::from_vec(vec![-2.0f32, 3.0], [2]);
    /// assert_eq!(x.powi(3).to_vec::<f32>(), vec![-8.0, 27.0]);
    /// assert_eq!(x.powi(-1).to_vec::<f32>(), vec![-0.5, 1.0 / 3.0]);
    /// ```
    #[track_caller]
    pub fn powi(&self, n: i32) -> Tensor {
        let mut k = n.unsigned_abs();
        if k == 0 {
            return self.ones_like();
        }
        // Binary exponentiation: x^k as a product of repeated squares.
        let mut base = self.clone();
        let mut out: Option<Tensor> = None;
        while k > 0 {
            if k & 1 == 1 {
                out = Some(match out {
                    None => base.clone(),
                    Some(o) => o * &base,
                });
            }
            k >>= 1;
            if k > 0 {
                base = &base * &base;
            }
        }
        let out = out.unwrap_or_else(|| self.ones_like());
        if n < 0 { out.reciprocal() } else { out }
    }

    /// `num` evenly spaced values from `start` to `stop`, both included (`jnp.linspace` with
    /// its defaults): `start + k·(stop − start)/(num − 1)`, computed in float64, the last value
    /// exactly `stop`. `num = 1` gives `[start]`, `num = 0` an empty tensor.
    ///
    /// ```
    /// let t = wgrad::Tensor::linspace(0.0, 1.0, 5);
    /// assert_eq!(t.to_vec::<f32>(), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    /// ```
    pub fn linspace(start: f32, stop: f32, num: usize) -> Tensor {
        let (a, b) = (f64::from(start), f64::from(stop));
        let step = if num > 1 {
            (b - a) / (num - 1) as f64
        } else {
            0.0
        };
        let mut values: Vec<f32> = (0..num).map(|k| (a + k as f64 * step) as f32).collect();
        if num > 1 {
            values[num - 1] = stop;
        }
        Tensor::from_vec(values, [num])
    }

    /// `jnp.dot`: the product of scalars, the inner product of two vectors, a matrix–vector
    /// or vector–matrix product, or a matrix product; an N-D tensor times a vector contracts
    /// the last axis. (Products whose right side has 3 or more axes: use
    /// [`einsum`](crate::einsum) or [`Tensor::matmul`], whose batching differs from `dot`'s.)
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let u = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [3]);
    /// let v = Tensor::from_vec(vec![4.0f32, 5.0, 6.0], [3]);
    /// assert_eq!(u.dot(&v).item(), 32.0);
    /// let m = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 0.0, 2.0, 0.0], [2, 3]);
    /// assert_eq!(m.dot(&v).to_vec::<f32>(), vec![4.0, 10.0]);
    /// ```
    #[track_caller]
    pub fn dot(&self, other: &Tensor) -> Tensor {
        or_panic(self.try_dot(other))
    }
    /// Fallible [`Tensor::dot`]: an error names both shapes.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let e = Tensor::zeros([3]).try_dot(&Tensor::zeros([4])).unwrap_err().to_string();
    /// assert!(e.contains("[3]") && e.contains("[4]"));
    /// ```
    pub fn try_dot(&self, other: &Tensor) -> Result<Tensor> {
        match (self.rank(), other.rank()) {
            (0, _) | (_, 0) => self.try_mul(other),
            (1, 1) => {
                if self.shape() != other.shape() {
                    return shape_err(
                        "dot",
                        format!(
                            "vectors of shapes {:?} and {:?} differ in length",
                            self.shape(),
                            other.shape()
                        ),
                    );
                }
                self.try_mul(other)?.try_sum_all()
            }
            (_, 1 | 2) => self.try_matmul(other).map_err(|e| rename(e, "dot")),
            _ => shape_err(
                "dot",
                format!(
                    "shapes {:?} and {:?}: a right side of 3 or more axes is not supported; \
                     use einsum or matmul",
                    self.shape(),
                    other.shape()
                ),
            ),
        }
    }

    /// The 2-norm of all elements, `√(Σ x²)`: a vector's Euclidean norm, a matrix's Frobenius
    /// norm (`jnp.linalg.norm` with its defaults). As in JAX, its gradient at zero is NaN.
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// assert_eq!(Tensor::from_vec(vec![3.0f32, 4.0], [2]).norm().item(), 5.0);
    /// ```
    pub fn norm(&self) -> Tensor {
        self.square().sum_all().sqrt()
    }

    /// The 2-norm along `axes` (`jnp.linalg.norm(x, axis=…)` for vectors along one axis).
    ///
    /// ```
    /// use wgrad::prelude::*;
    /// let x = Tensor::from_vec(vec![3.0f32, 4.0, 0.0, 1.0], [2, 2]);
    /// assert_eq!(x.norm_axes(-1).to_vec::<f32>(), vec![5.0, 1.0]);
    /// ```
    #[track_caller]
    pub fn norm_axes(&self, axes: impl Into<Axes>) -> Tensor {
        or_panic(self.try_norm_axes(axes))
    }
    /// Fallible [`Tensor::norm_axes`]: an error for an axis out of range.
    ///
    /// ```
    /// assert!(wgrad::Tensor::zeros([2]).try_norm_axes(3).is_err());
    /// ```
    pub fn try_norm_axes(&self, axes: impl Into<Axes>) -> Result<Tensor> {
        self.square().try_sum_axes(axes)?.try_sqrt()
    }
}

/// `e` as an error of `op` (a composite reports the op the user called).
fn rename(e: crate::Error, op: &'static str) -> crate::Error {
    match e {
        crate::Error::Shape { msg, .. } => crate::Error::Shape { op, msg },
        other => other,
    }
}

/// `x / n` divides truly, as JAX's `/`: an integer tensor is made float first.
fn true_div(x: &Tensor, n: &Tensor) -> Tensor {
    if x.dtype().is_float() {
        x / n
    } else {
        x.cast(crate::base::dtype::DType::F32) / n.cast(crate::base::dtype::DType::F32)
    }
}

// Operators between tensors and integer literals: `x * 2`, `2 * x`, `x / 2`, `1 - x`, … (a
// literal is a weak operand, as the binary methods take it).
macro_rules! int_operator {
    ($tr:ident $m:ident $f:expr) => {
        impl std::ops::$tr<i32> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $m(self, rhs: i32) -> Tensor {
                $f(self, &rhs.operand())
            }
        }
        impl std::ops::$tr<i32> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $m(self, rhs: i32) -> Tensor {
                $f(&self, &rhs.operand())
            }
        }
        impl std::ops::$tr<&Tensor> for i32 {
            type Output = Tensor;
            #[track_caller]
            fn $m(self, rhs: &Tensor) -> Tensor {
                $f(&self.operand(), rhs)
            }
        }
        impl std::ops::$tr<Tensor> for i32 {
            type Output = Tensor;
            #[track_caller]
            fn $m(self, rhs: Tensor) -> Tensor {
                $f(&self.operand(), &rhs)
            }
        }
    };
}
int_operator!(Add add |a: &Tensor, b: &Tensor| a + b);
int_operator!(Sub sub |a: &Tensor, b: &Tensor| a - b);
int_operator!(Mul mul |a: &Tensor, b: &Tensor| a * b);
int_operator!(Div div true_div);
